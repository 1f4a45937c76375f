// The ARM-shaped routes: ACR's own paths (`/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ContainerRegistry/
// registries/{r}/…`) served by the short routes' handlers, so that an Azure SDK pointed at `<Refit URL>/api` works.
// Each ARM function checks the path's resource and the api-version, calls the short handler unchanged, and gives the
// resources it returns their ARM ids.
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { ArmSettings } from '../src/config';
import { RefitError } from '../src/errors';
import { refit } from '../src/refit';
import type { HttpFunction } from './definitions';
import { errorResponse } from './http';

/** The ARM resource every ARM route is under, relative to /api. */
export const ARM_REGISTRY_ROUTE =
  'subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}';

/** The api-versions of ACR Tasks whose bodies Refit serves (the SDKs' 2019-06-01-preview among them). */
export const ARM_API_VERSIONS = ['2019-04-01', '2019-06-01-preview', '2025-03-01-preview'] as const;

/** The short functions that have an ARM route: ACR's Tasks, Runs, scheduleRun and listBuildSourceUploadUrl. */
const ARM_OPERATIONS = new Set([
  'listBuildSourceUploadUrl',
  'scheduleRun',
  'runsList',
  'runsGet',
  'runsUpdate',
  'runsCancel',
  'runsGetLogSasUrl',
  'tasksList',
  'tasksCreate',
  'tasksGet',
  'tasksUpdate',
  'tasksDelete',
  'tasksGetDetails',
]);

const same = (a: string | undefined, b: string): boolean =>
  a !== undefined && a.toLowerCase() === b.toLowerCase();

/**
 * Checks an ARM request's api-version and resource as ARM does: 400 `MissingApiVersionParameter` or
 * `InvalidApiVersionParameter`; 404 `SubscriptionNotFound`, `ResourceGroupNotFound` (only when configured) or
 * `ResourceNotFound` for another registry than this deployment's. Names compare without case, as in ARM.
 */
export function checkArmRequest(request: HttpRequest, arm: ArmSettings): void {
  const version = request.query.get('api-version');
  if (version === null || version === '')
    throw new RefitError(
      'MissingApiVersionParameter',
      'The api-version query parameter (?api-version=) is required for all requests.',
      400,
      'api-version',
    );
  if (!(ARM_API_VERSIONS as readonly string[]).includes(version))
    throw new RefitError(
      'InvalidApiVersionParameter',
      `The api-version '${version}' is invalid. The supported versions are '${ARM_API_VERSIONS.join(',')}'.`,
      400,
      'api-version',
    );
  const { subscriptionId = '', resourceGroupName = '', registryName = '' } = request.params;
  if (arm.subscriptionId && !same(arm.subscriptionId, subscriptionId))
    throw new RefitError(
      'SubscriptionNotFound',
      `The subscription '${subscriptionId}' could not be found.`,
      404,
    );
  if (arm.resourceGroup && !same(arm.resourceGroup, resourceGroupName))
    throw new RefitError(
      'ResourceGroupNotFound',
      `Resource group '${resourceGroupName}' could not be found.`,
      404,
    );
  if (!same(registryName, arm.registryName))
    throw new RefitError(
      'ResourceNotFound',
      `The Resource 'Microsoft.ContainerRegistry/registries/${registryName}' under resource group '${resourceGroupName}' was not found: this Refit answers as registry '${arm.registryName}' (REFIT_ARM_REGISTRY_NAME).`,
      404,
    );
}

/** The ARM id of the registry a request names, as the client spelled it: the prefix of its resources' ids. */
export function armRegistryId(request: HttpRequest): string {
  const { subscriptionId = '', resourceGroupName = '', registryName = '' } = request.params;
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/${registryName}`;
}

const SHORT_ID = /^\/(runs|tasks)\/[^/]+$/;

function withArmId(resource: unknown, registryId: string): unknown {
  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) return resource;
  const id = (resource as { id?: unknown }).id;
  return typeof id === 'string' && SHORT_ID.test(id) ? { ...resource, id: `${registryId}${id}` } : resource;
}

/** A short handler's answer with ARM ids: on the resource it returns, or on each one of a list's `value`. */
export function withArmIds(init: HttpResponseInit, registryId: string): HttpResponseInit {
  const body = init.jsonBody as unknown;
  if (!body || typeof body !== 'object') return init;
  const value = (body as { value?: unknown }).value;
  const jsonBody = Array.isArray(value)
    ? { ...body, value: value.map((v) => withArmId(v, registryId)) }
    : withArmId(body, registryId);
  return { ...init, jsonBody };
}

/** Wraps a short handler for its ARM route: the checks of {@link checkArmRequest} first, ARM ids on the way out. */
export function armHandler(handler: HttpFunction['handler']): HttpFunction['handler'] {
  return async (request: HttpRequest, context: InvocationContext) => {
    try {
      checkArmRequest(request, (await refit()).config.arm);
    } catch (err) {
      return errorResponse(err, context);
    }
    return withArmIds(await handler(request, context), armRegistryId(request));
  };
}

/** Answers ACR's agentPools and taskRuns operations, which Refit does not have, with a 400 that says so. */
function unsupported(what: string, instead: string): HttpFunction['handler'] {
  return armHandler(() =>
    Promise.resolve(
      errorResponse(
        new RefitError('UnsupportedOperation', `Refit does not support ${what}: ${instead}`, 400, what),
      ),
    ),
  );
}

/**
 * The ARM functions for the short ones given: same methods and handlers, the route under {@link ARM_REGISTRY_ROUTE},
 * the name prefixed with `arm`; plus agentPools and taskRuns, which answer that Refit does not support them.
 */
export function armFunctions(short: readonly HttpFunction[]): HttpFunction[] {
  const mapped = short
    .filter((fn) => ARM_OPERATIONS.has(fn.name))
    .map((fn): HttpFunction => ({
      ...fn,
      name: `arm${fn.name[0]!.toUpperCase()}${fn.name.slice(1)}`,
      route: `${ARM_REGISTRY_ROUTE}/${fn.route}`,
      handler: armHandler(fn.handler),
    }));
  const all = ['GET', 'PUT', 'PATCH', 'DELETE', 'POST'] as const;
  const refused = (name: string, resource: string, handler: HttpFunction['handler']): HttpFunction => ({
    kind: 'http',
    name,
    methods: all,
    route: `${ARM_REGISTRY_ROUTE}/${resource}/{*rest}`,
    authLevel: 'function',
    handler,
  });
  return [
    ...mapped,
    refused(
      'armAgentPools',
      'agentPools',
      unsupported(
        'agentPools',
        'runs use the host it is deployed on (REFIT_LOCAL_CONCURRENCY, or ACI in Azure)',
      ),
    ),
    refused(
      'armTaskRuns',
      'taskRuns',
      unsupported(
        'taskRuns',
        'create a task (PUT tasks/{taskName}) and run it with scheduleRun (TaskRunRequest)',
      ),
    ),
  ];
}
