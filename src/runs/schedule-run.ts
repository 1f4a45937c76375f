import { z } from 'zod';
import { ValidationError } from '../errors';
import { acrRequest, AGENT_POOL_UNSUPPORTED, LOG_TEMPLATE_UNSUPPORTED, unsupported } from '../http/acr-body';
import { parseWith, shown } from '../http/validate';
import { formatImageReference, parseImageReference } from '../registry/image-reference';
import { sourceLocationMessage, sourceLocationProblem } from '../sources/source-path';
import { withoutUrlPassword } from '../sources/url-credentials';
import type { RegistryCredentials } from '../registry/auth';
import { seal } from '../storage/secret-box';
import { credentialsSchema } from '../tasks/credentials-schema';
import type { DockerBuildSpec, Platform, Run, RunSecrets } from './run';
import { renderRunTemplate, runDate } from './render';

/** The run request types ACR's scheduleRun takes. */
export const RUN_REQUEST_TYPES = [
  'DockerBuildRequest',
  'FileTaskRunRequest',
  'EncodedTaskRunRequest',
  'TaskRunRequest',
] as const;

const OS = { linux: 'Linux', windows: 'Windows' } as const;

const osSchema = z.string().transform((v, ctx) => {
  const os = OS[v.toLowerCase() as keyof typeof OS];
  if (!os)
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a valid value for os: use Linux or Windows` });
  return os ?? 'Linux';
});
const architectureSchema = z.enum(['amd64', 'x86', '386', 'arm', 'arm64'], {
  error: (i) => `'${shown(i.input)}' is not a valid architecture: use amd64, x86, 386, arm or arm64`,
});
const variantSchema = z.enum(['v6', 'v7', 'v8'], {
  error: (i) => `'${shown(i.input)}' is not a valid variant: use v6, v7 or v8`,
});

/**
 * ACR's Platform: os (any case, as the CLI sends it), architecture and variant, each checked by name. The spec
 * requires only `os`: an architecture left out is amd64, as in ACR.
 */
export const platformSchema = z
  .object({
    os: osSchema,
    architecture: architectureSchema.default('amd64'),
    variant: variantSchema.optional(),
  })
  .strict();

/** ACR's PlatformUpdateParameters: each property given replaces the stored one, the others are kept. */
export const platformUpdateSchema = z
  .object({
    os: osSchema.optional(),
    architecture: architectureSchema.optional(),
    variant: variantSchema.optional(),
  })
  .strict();

const argumentSchema = z
  .object({
    name: z
      .string()
      .min(1, 'an argument needs a name')
      .regex(/^[^=\s]+$/, 'an argument name cannot contain = or spaces'),
    value: z.string(),
    isSecret: z.boolean().default(false),
  })
  .strict();

/** The properties every run request shares (ACR's RunRequest). */
const common = {
  isArchiveEnabled: z.boolean().default(false),
  agentPoolName: unsupported(AGENT_POOL_UNSUPPORTED),
  logTemplate: unsupported(LOG_TEMPLATE_UNSUPPORTED),
};

/** A run or task timeout: whole seconds, 300 to 28800 (8 hours), 3600 by default, as in ACR. */
export const timeoutSchema = z
  .number()
  .int('timeout must be whole seconds')
  .min(300, 'timeout must be at least 300 seconds')
  .max(28800, 'timeout must be at most 28800 seconds (8 hours)')
  .default(3600);

const buildCommon = {
  ...common,
  timeout: timeoutSchema,
  platform: platformSchema,
  agentConfiguration: z
    .object({ cpu: z.number().int().min(1).max(64) })
    .strict()
    .default({ cpu: 2 }),
  sourceLocation: z.string().min(1, 'sourceLocation is required'),
  credentials: credentialsSchema.optional(),
};

const dockerBuildRequestSchema = acrRequest(
  z
    .object({
      type: z.literal('DockerBuildRequest'),
      ...buildCommon,
      imageNames: z.array(z.string()).max(64, 'at most 64 image names').default([]),
      isPushEnabled: z.boolean().default(true),
      noCache: z.boolean().default(false),
      dockerFilePath: z.string().min(1, 'dockerFilePath must not be empty'),
      target: z.string().min(1).optional(),
      arguments: z.array(argumentSchema).max(256).default([]),
    })
    .strict(),
);

/** A validated DockerBuildRequest. */
export type DockerBuildRequest = z.output<typeof dockerBuildRequestSchema>;

/** What tells each run request apart when a client leaves `type` out (ACR's own 2019 examples do). */
const TYPE_MARKERS: readonly (readonly [(typeof RUN_REQUEST_TYPES)[number], string])[] = [
  ['TaskRunRequest', 'taskId'],
  ['EncodedTaskRunRequest', 'encodedTaskContent'],
  ['FileTaskRunRequest', 'taskFilePath'],
  ['DockerBuildRequest', 'dockerFilePath'],
];

/**
 * A scheduleRun body with its `type`: as given, or, when it is left out, the one request type whose required
 * property the body has (a body with none, or with those of two types, is left as it is and refused by name).
 */
export function withRunRequestType(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const given = body as Record<string, unknown>;
  if (given.type !== undefined && given.type !== null) return body;
  const types = TYPE_MARKERS.filter(([, marker]) => Object.hasOwn(given, marker)).map(([type]) => type);
  return types.length === 1 ? { ...given, type: types[0] } : body;
}

/** Parses a scheduleRun body; the `type` decides the schema. */
export function parseRunRequest(body: unknown): DockerBuildRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('the run request must be a JSON object');
  }
  const type = (body as { type?: unknown }).type;
  if (type === undefined)
    throw new ValidationError(`type is required: one of ${RUN_REQUEST_TYPES.join(', ')}`, 'type');
  if (type === 'DockerBuildRequest') return parseWith(dockerBuildRequestSchema, body, 'DockerBuildRequest');
  if (type === 'FileTaskRunRequest' || type === 'EncodedTaskRunRequest' || type === 'TaskRunRequest') {
    throw new ValidationError(`a ${type} is not a DockerBuildRequest`, 'type');
  }
  throw new ValidationError(
    `type ${typeof type === 'string' ? `'${type}'` : JSON.stringify(type)} is not one of ${RUN_REQUEST_TYPES.join(', ')}`,
    'type',
  );
}

/** Where the git URL test lives now (re-exported for its callers). */
export { isGitSource } from '../sources/source-path';

/** Checks a run's source location: a 400 naming `field` when Refit would not fetch it (see sourceLocationProblem). */
export function checkSourceLocation(location: string, field = 'sourceLocation'): void {
  const problem = sourceLocationProblem(location);
  if (problem) throw new ValidationError(sourceLocationMessage(field, location, problem), field);
}

function checkDockerfilePath(path: string): void {
  if (path.startsWith('/') || path.split(/[\\/]/).includes('..')) {
    throw new ValidationError(
      `dockerFilePath '${path}' must be a relative path inside the source`,
      'dockerFilePath',
    );
  }
}

/** Everything needed to turn a validated request into a Queued run. */
export interface NewRunContext {
  readonly runId: string;
  readonly now: Date;
  readonly homeRegistry: string;
  readonly secretKey: Buffer;
  /** The request's registry logins, by login server (checked). */
  readonly registries?: Readonly<Record<string, RegistryCredentials>>;
}

/** Renders and checks the image names of a request: a name without a registry goes to the home registry. */
export function resolveImageNames(
  imageNames: readonly string[],
  runId: string,
  homeRegistry: string,
  now: Date,
): string[] {
  const data = { ID: runId, Registry: homeRegistry, Date: runDate(now) };
  return imageNames.map((name, i) =>
    formatImageReference(
      parseImageReference(renderRunTemplate(name, data), {
        defaultRegistry: homeRegistry,
        field: `imageNames[${i}]`,
      }),
    ),
  );
}

/** Checks what a request's schema cannot: image names, source location, Dockerfile path, platform support. */
export function checkDockerBuildRequest(request: DockerBuildRequest, homeRegistry: string): void {
  resolveImageNames(request.imageNames, 'aa1', homeRegistry, new Date());
  checkSourceLocation(request.sourceLocation);
  checkDockerfilePath(request.dockerFilePath);
  if (request.platform.os === 'Windows') {
    throw new ValidationError(
      "platform.os 'Windows' is not supported: Refit builds Linux images",
      'platform.os',
    );
  }
}

/** The Queued run a DockerBuildRequest becomes; secret argument values are sealed apart from the spec. */
export function newQuickBuildRun(
  request: DockerBuildRequest,
  ctx: NewRunContext,
): Run & { readonly spec: DockerBuildSpec } {
  // A password in the source URL is sealed with the run's secrets, never stored in its spec.
  const source = withoutUrlPassword(request.sourceLocation);
  const secrets: RunSecrets = {
    arguments: Object.fromEntries(request.arguments.filter((a) => a.isSecret).map((a) => [a.name, a.value])),
    ...(source.password ? { gitToken: source.password } : {}),
    ...(ctx.registries && Object.keys(ctx.registries).length ? { registries: ctx.registries } : {}),
  };
  const time = ctx.now.toISOString();
  const platform: Platform = {
    os: request.platform.os,
    architecture: request.platform.architecture,
    ...(request.platform.variant ? { variant: request.platform.variant } : {}),
  };
  return {
    runId: ctx.runId,
    status: 'Queued',
    runType: 'QuickBuild',
    taskName: undefined,
    createTime: time,
    startTime: undefined,
    finishTime: undefined,
    lastUpdatedTime: time,
    isArchiveEnabled: request.isArchiveEnabled,
    platform,
    agentConfiguration: request.agentConfiguration,
    timeout: request.timeout,
    outputImages: [],
    runErrorMessage: undefined,
    spec: {
      kind: 'DockerBuild',
      sourceLocation: source.location,
      dockerFilePath: request.dockerFilePath,
      imageNames: resolveImageNames(request.imageNames, ctx.runId, ctx.homeRegistry, ctx.now),
      isPushEnabled: request.isPushEnabled && request.imageNames.length > 0,
      noCache: request.noCache,
      target: request.target,
      arguments: request.arguments.map((a) =>
        a.isSecret ? { name: a.name, isSecret: true } : { name: a.name, isSecret: false, value: a.value },
      ),
    },
    sealedSecrets: sealRunSecrets(ctx.secretKey, secrets),
  };
}

/** Seals a run's secrets, or undefined when it has none. */
export function sealRunSecrets(key: Buffer, secrets: RunSecrets): string | undefined {
  const empty =
    Object.keys(secrets.arguments).length === 0 &&
    !secrets.gitToken &&
    Object.keys(secrets.values ?? {}).length === 0 &&
    Object.keys(secrets.registries ?? {}).length === 0;
  return empty ? undefined : seal(key, JSON.stringify(secrets));
}

/** The `--build-arg` values of a build: plain arguments as given, secret ones from the sealed values. */
export function buildArgValues(
  args: readonly { readonly name: string; readonly value?: string | undefined; readonly isSecret: boolean }[],
  secretValues: Readonly<Record<string, string>>,
): Record<string, string> {
  return Object.fromEntries(
    args.map((a) => [a.name, a.isSecret ? (secretValues[a.name] ?? '') : (a.value ?? '')]),
  );
}
