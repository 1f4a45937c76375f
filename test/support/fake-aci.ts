// An in-process fake of Azure Container Instances' ARM surface (container groups, their long-running operation, logs),
// handed to the real `@azure/arm-containerinstance` client as its HttpClient. It answers in the shapes of the official
// examples vendored in test/fixtures/aci/ (README there), and with `play` it runs a group's containers on this machine
// the way ACI would, so an executor's real scripts run. Only Azure is faked here; every answer is recorded for oav
// (test/support/aci-traffic.ts).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createHttpHeaders,
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { z } from 'zod';
import { childEnv } from '../../src/process/child-env';

/** Runs a container inside its image (see {@link FakeAciOptions}'s `play.inImage`). */
const IN_IMAGE = join(__dirname, 'in-image.sh');

const API_VERSION = '2023-05-01';
const ARM = 'https://management.azure.com';
/** ACI keeps 4 MB of a running container's log and 16 KB or 1,000 lines once it stopped (quota-limits doc). */
const RUNNING_LOG_BYTES = 4 * 1024 * 1024;
const STOPPED_LOG_BYTES = 16 * 1024;
const STOPPED_LOG_LINES = 1000;

const EnvironmentVariable = z.object({
  name: z.string(),
  value: z.string().optional(),
  secureValue: z.string().optional(),
});
const VolumeMount = z.object({ name: z.string(), mountPath: z.string(), readOnly: z.boolean().optional() });
// Permissive where the fake needs nothing (ports, resources, probes are echoed back as sent); strict on what it runs.
const ContainerSpec = z.object({
  name: z.string(),
  properties: z.looseObject({
    image: z.string().optional(),
    command: z.array(z.string()).optional(),
    environmentVariables: z.array(EnvironmentVariable).optional(),
    volumeMounts: z.array(VolumeMount).optional(),
  }),
});
const VolumeSpec = z.looseObject({
  name: z.string(),
  emptyDir: z.looseObject({}).optional(),
  secret: z.record(z.string(), z.string()).optional(),
});
const GroupSpec = z.looseObject({
  location: z.string(),
  properties: z.looseObject({
    containers: z.array(ContainerSpec).min(1),
    initContainers: z.array(ContainerSpec).optional(),
    volumes: z.array(VolumeSpec).optional(),
    imageRegistryCredentials: z.array(z.looseObject({ server: z.string() })).optional(),
    osType: z.string(),
    restartPolicy: z.string().optional(),
  }),
});
type GroupSpec = z.infer<typeof GroupSpec>;
type ContainerSpec = z.infer<typeof ContainerSpec>;

/** An ACI event, as in the instance views of ContainerGroupsGet_Failed.json. */
export interface AciEvent {
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  name: string;
  message: string;
  type: 'Normal' | 'Warning';
}

/** A container's state as ACI reports it (`currentState`, `previousState`). */
export interface AciContainerState {
  state: 'Waiting' | 'Running' | 'Terminated';
  startTime?: string;
  finishTime?: string;
  exitCode?: number;
  detailStatus: string;
}

/** One request the fake answered, with its answer: what aci-traffic.ts validates against the spec. */
export interface RecordedPair {
  readonly at: number;
  readonly request: {
    method: string;
    url: string;
    headers: Record<string, string>;
    body: unknown;
  };
  readonly response: { status: number; headers: Record<string, string>; body: unknown };
}

/** What a test reads of a group: its names and states, without going through the SDK. */
export interface FakeGroupSummary {
  readonly resourceGroup: string;
  readonly name: string;
  readonly provisioningState: string;
  readonly state: string;
  readonly events: readonly AciEvent[];
  readonly containers: readonly {
    name: string;
    init: boolean;
    state: AciContainerState['state'];
    exitCode: number | undefined;
    restartCount: number;
    log: string;
  }[];
}

/** Options of {@link FakeAci}. */
export interface FakeAciOptions {
  /** Groups per page of listByResourceGroup before a nextLink (default 100). */
  readonly pageSize?: number;
  /** How long provisioning takes after a PUT (default 10 ms): the operation answers Pending until then. */
  readonly provisionAfterMs?: number;
  /**
   * Run each provisioned group's containers as local processes; `programs` maps a command's first word to a local one.
   * A container whose image `inImage` accepts runs inside that image instead (buildah, test/support/in-image.sh), its
   * volumes bind-mounted: the player for images a run built or names itself (a multi-step task's cmd steps).
   */
  readonly play?: {
    readonly programs: Readonly<Record<string, string>>;
    readonly inImage?: (image: string) => boolean;
  };
}

interface ContainerRun {
  readonly spec: ContainerSpec;
  readonly init: boolean;
  restartCount: number;
  currentState: AciContainerState;
  previousState?: AciContainerState;
  events: AciEvent[];
  log: string;
  restartArmed: boolean;
  kill?: (exitCode: number) => void;
}

interface Group {
  readonly subscription: string;
  readonly resourceGroup: string;
  readonly name: string;
  spec: GroupSpec;
  provisioningState: 'Pending' | 'Succeeded' | 'Failed';
  state: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  events: AciEvent[];
  runs: ContainerRun[];
  failure?: string;
  dir?: string;
  /** Bumped by an update or a delete, so a process of an earlier incarnation cannot write into this one. */
  generation: number;
}

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const now = (): string => new Date().toISOString();
const event = (name: string, message: string, type: AciEvent['type'] = 'Normal'): AciEvent => {
  const at = now();
  return { count: 1, firstTimestamp: at, lastTimestamp: at, name, message, type };
};
const armError = (
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): Answer => ({
  status,
  body: { error: { code, message } },
  ...(headers ? { headers } : {}),
});

/**
 * The fake ACI control plane: an HttpClient for `new ContainerInstanceManagementClient(credential, subscription,
 * { httpClient })`, serving container groups in any subscription and resource group, with scenario controls.
 */
export class FakeAci implements HttpClient {
  /** Every request answered, in order. */
  readonly requests: RecordedPair[] = [];
  private readonly byKey = new Map<string, Group>();
  private readonly operations = new Map<string, { group: Group; startTime: string }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly playing = new Set<Promise<void>>();
  private readonly provisioningFailures = new Map<string, string>();
  private throttle = { times: 0, retryAfterSeconds: 0 };
  private quota = { times: 0, status: 409 };
  private operationCount = 0;

  constructor(private readonly options: FakeAciOptions = {}) {}

  /** The next provisioning of `name` (any name for 'next') fails with `message` as its event, like ContainerGroupsGet_Failed. */
  failProvisioning(name: string, message: string): void {
    const pending = name === 'next' ? undefined : this.find(name);
    if (pending?.provisioningState === 'Pending') {
      pending.failure = message;
      this.failed(pending);
    } else this.provisioningFailures.set(name.toLowerCase(), message);
  }

  /**
   * The next `times` PUTs answer 429 with Retry-After, as ARM's throttling does ("Number of write requests for
   * subscription … Please try again after … seconds", code SubscriptionRequestsThrottled: learn.microsoft.com
   * troubleshoot/azure/azure-kubernetes/error-code-toomanyrequestsreceived-subscriptionrequeststhrottled and
   * azure-resource-manager/management/request-limits-and-throttling).
   */
  throttleCreates(times: number, retryAfterSeconds: number): void {
    this.throttle = { times, retryAfterSeconds };
  }

  /**
   * The next `times` PUTs fail with ACI's container-group quota error: code `ServiceUnavailable`, "Resource type
   * 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' exceeded in region …"
   * (MicrosoftDocs/SupportArticles-docs: support/azure/azure-container-instances/configuration-setup/
   * service-unavailable-container-group-quota-exceeded.md; the 'StandardCores' variant in MicrosoftDocs/azure-docs#51738).
   * The documents give the code and message but not the HTTP status: 409 by default, as ARM answers other quota
   * refusals (OperationNotAllowed for regional cores). A test can pass 503 instead; the SDK's own retry policy then
   * sends the PUT again (3 times by default, with backoff), each resend taking one of the `times`.
   */
  quotaExceeded(times: number, status = 409): void {
    this.quota = { times, status };
  }

  /** Someone else deleted the group (the portal, a cleanup script): it vanishes without a recorded request. */
  deleteBehindTheBack(name: string): void {
    const group = this.find(name);
    if (group) this.remove(group);
  }

  /** The platform restarts `container` (default the first) once when it next ends, as ACI may even with restartPolicy Never. */
  restartOnce(name: string, container?: string): void {
    this.run(name, container).restartArmed = true;
  }

  /** `container` ends with `exitCode` (killing its process when playing). */
  terminate(name: string, container: string, exitCode: number): void {
    const group = this.mustFind(name);
    const run = this.run(name, container);
    if (run.kill) return run.kill(exitCode);
    if (run.currentState.state !== 'Running') throw new Error(`${name}/${container} is not running`);
    if (this.ended(run, exitCode)) this.settle(group);
  }

  /** Appends to a container's log (for groups that are not played). */
  appendLog(name: string, container: string, text: string): void {
    appendLog(this.run(name, container), text);
  }

  /** The groups that exist now, in creation order. */
  groups(): FakeGroupSummary[] {
    return [...this.byKey.values()].map((g) => ({
      resourceGroup: g.resourceGroup,
      name: g.name,
      provisioningState: g.provisioningState,
      state: g.state,
      events: [...g.events],
      containers: g.runs.map((r) => ({
        name: r.spec.name,
        init: r.init,
        state: r.currentState.state,
        exitCode: r.currentState.exitCode,
        restartCount: r.restartCount,
        log: r.log,
      })),
    }));
  }

  /** Ends every process and timer and removes the groups' folders. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const group of [...this.byKey.values()]) this.remove(group);
    await Promise.all([...this.playing]);
  }

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    const body =
      typeof request.body === 'string' && request.body !== ''
        ? (JSON.parse(request.body) as unknown)
        : undefined;
    const answer = this.answer(request, body);
    const headers: Record<string, string> = {
      'x-ms-request-id': `fake-${this.requests.length + 1}`,
      ...(answer.body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      ...answer.headers,
    };
    const requestHeaders = Object.fromEntries(
      [...request.headers].filter(([name]) => name.toLowerCase() !== 'authorization'),
    );
    this.requests.push({
      at: Date.now(),
      request: { method: request.method, url: request.url, headers: requestHeaders, body },
      response: { status: answer.status, headers, body: answer.body },
    });
    return {
      request,
      status: answer.status,
      headers: createHttpHeaders(headers),
      ...(answer.body === undefined ? {} : { bodyAsText: JSON.stringify(answer.body) }),
    };
  }

  private answer(request: PipelineRequest, body: unknown): Answer {
    const url = new URL(request.url);
    if (!request.headers.get('authorization')?.startsWith('Bearer '))
      return armError(
        401,
        'AuthenticationFailed',
        'Authentication failed. The Authorization header is missing.',
      );
    const path = decodeURIComponent(url.pathname);
    const operation =
      /^\/subscriptions\/[^/]+\/providers\/Microsoft\.ContainerInstance\/locations\/[^/]+\/operations\/([^/]+)$/i.exec(
        path,
      );
    if (operation && request.method === 'GET') return this.operationStatus(operation[1]!);
    const m =
      /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerInstance\/containerGroups(?:\/([^/]+)(?:\/containers\/([^/]+)\/logs)?)?$/i.exec(
        path,
      );
    if (!m) return armError(404, 'NotFound', `FakeAci serves no ${request.method} ${path}`);
    if (url.searchParams.get('api-version') !== API_VERSION)
      return armError(400, 'InvalidApiVersionParameter', `FakeAci speaks api-version ${API_VERSION} only`);
    const [, subscription, resourceGroup, name, container] = m as unknown as [
      string,
      string,
      string,
      string?,
      string?,
    ];
    if (name === undefined)
      return request.method === 'GET'
        ? this.list(subscription, resourceGroup, Number(url.searchParams.get('$skipToken') ?? '0'))
        : armError(405, 'MethodNotAllowed', request.method);
    const key = `${subscription}/${resourceGroup}/${name}`.toLowerCase();
    if (container !== undefined) return this.logs(key, container, url.searchParams.get('tail'));
    if (request.method === 'PUT') return this.put(subscription, resourceGroup, name, key, body);
    const group = this.byKey.get(key);
    if (request.method === 'GET')
      return group
        ? { status: 200, body: this.view(group, true) }
        : armError(
            404,
            'ResourceNotFound',
            `The Resource 'Microsoft.ContainerInstance/containerGroups/${name}' under resource group '${resourceGroup}' was not found.`,
          );
    if (request.method === 'DELETE') {
      if (!group) return { status: 204 };
      const deleted = this.view(group, true);
      this.remove(group);
      return { status: 200, body: deleted };
    }
    return armError(405, 'MethodNotAllowed', request.method);
  }

  private put(subscription: string, resourceGroup: string, name: string, key: string, body: unknown): Answer {
    if (this.throttle.times > 0) {
      this.throttle.times--;
      const seconds = this.throttle.retryAfterSeconds;
      return armError(
        429,
        'SubscriptionRequestsThrottled',
        `Number of write requests for subscription '${subscription}' actually '1201' exceeded the limit of '1200' for time interval '01:00:00'. Please try again after '${seconds}' seconds.`,
        { 'retry-after': String(seconds) },
      );
    }
    const parsed = GroupSpec.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return armError(
        400,
        'InvalidRequestContent',
        `The request content was invalid: '${issue?.path.join('.') ?? ''}': ${issue?.message ?? 'invalid'}`,
      );
    }
    if (this.quota.times > 0) {
      this.quota.times--;
      return armError(
        this.quota.status,
        'ServiceUnavailable',
        `Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' exceeded in region '${parsed.data.location}'. Limit: '100', Usage: '100' Requested: '1'.`,
      );
    }
    const existing = this.byKey.get(key);
    if (existing) this.halt(existing);
    const group: Group = existing ?? {
      subscription,
      resourceGroup,
      name,
      spec: parsed.data,
      provisioningState: 'Pending',
      state: 'Pending',
      events: [],
      runs: [],
      generation: 0,
    };
    Object.assign(group, { spec: parsed.data, provisioningState: 'Pending', state: 'Pending', events: [] });
    group.runs = [
      ...(parsed.data.properties.initContainers ?? []).map((spec) => newRun(spec, true)),
      ...parsed.data.properties.containers.map((spec) => newRun(spec, false)),
    ];
    const own = name.toLowerCase();
    const failureKey = this.provisioningFailures.has(own)
      ? own
      : this.provisioningFailures.has('next')
        ? 'next'
        : undefined;
    if (failureKey !== undefined) {
      group.failure = this.provisioningFailures.get(failureKey)!;
      this.provisioningFailures.delete(failureKey);
    } else delete group.failure;
    this.byKey.set(key, group);
    const operationId = `op-${++this.operationCount}`;
    this.operations.set(operationId, { group, startTime: now() });
    const generation = group.generation;
    this.later(() => this.provision(group, generation), this.options.provisionAfterMs ?? 10);
    const answer = this.view(group, true);
    // A Spot group's first answer says Created, not Pending (ContainerGroupsCreatePriority.json's 201).
    if (group.spec.properties['priority'] === 'Spot')
      Object.assign(answer['properties'] as object, {
        provisioningState: 'Created',
        instanceView: { state: 'Created', events: [] },
      });
    return {
      status: existing ? 200 : 201,
      body: answer,
      headers: {
        // As the live 2022 recording shows: the async-operation resource sits under the location, api-version 2018-06-01.
        'azure-asyncoperation': `${ARM}/subscriptions/${subscription}/providers/Microsoft.ContainerInstance/locations/${encodeURIComponent(parsed.data.location)}/operations/${operationId}?api-version=2018-06-01`,
      },
    };
  }

  private operationStatus(operationId: string): Answer {
    const operation = this.operations.get(operationId);
    if (!operation) return armError(404, 'OperationNotFound', `no operation ${operationId}`);
    const { group, startTime } = operation;
    const status = group.provisioningState;
    return {
      status: 200,
      // The shape of the live recording's polls; a failed operation's error code is documented nowhere, so this one
      // is made up, and its message is the group's event message.
      body: {
        id: idOf(group),
        status,
        startTime,
        properties: { events: group.events },
        ...(status === 'Failed'
          ? { error: { code: 'ContainerGroupProvisioningFailed', message: group.failure ?? 'failed' } }
          : {}),
      },
    };
  }

  private list(subscription: string, resourceGroup: string, skip: number): Answer {
    const pageSize = this.options.pageSize ?? 100;
    const all = [...this.byKey.values()].filter(
      (g) =>
        g.subscription.toLowerCase() === subscription.toLowerCase() &&
        g.resourceGroup.toLowerCase() === resourceGroup.toLowerCase(),
    );
    const page = all.slice(skip, skip + pageSize);
    const next = skip + pageSize < all.length ? skip + pageSize : undefined;
    return {
      status: 200,
      body: {
        // The list's items have no instanceView (ListResultContainerGroupProperties, and the ListByResourceGroup example).
        value: page.map((g) => this.view(g, false)),
        ...(next === undefined
          ? {}
          : {
              nextLink: `${ARM}/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups?api-version=${API_VERSION}&$skipToken=${next}`,
            }),
      },
    };
  }

  private logs(key: string, container: string, tail: string | null): Answer {
    const group = this.byKey.get(key);
    const run = group?.runs.find((r) => r.spec.name === container);
    if (!group || !run)
      return armError(404, 'ResourceNotFound', `container ${container} not found in ${key}`);
    let content = run.log;
    if (run.currentState.state === 'Terminated')
      content = lastLines(lastBytes(content, STOPPED_LOG_BYTES), STOPPED_LOG_LINES);
    if (tail !== null) content = lastLines(content, Number(tail));
    return { status: 200, body: { content } };
  }

  /** The group as GET answers it: what was sent, minus secrets (secureValue, secret volume contents, passwords). */
  private view(group: Group, withInstanceView: boolean): Record<string, unknown> {
    const {
      containers: _c,
      initContainers,
      volumes,
      imageRegistryCredentials,
      ...rest
    } = group.spec.properties;
    const { location, properties: _p, ...top } = group.spec;
    const containerView = (run: ContainerRun): Record<string, unknown> => ({
      name: run.spec.name,
      properties: {
        ...run.spec.properties,
        ...(run.spec.properties.environmentVariables
          ? {
              environmentVariables: run.spec.properties.environmentVariables.map(
                ({ secureValue: _s, ...v }) => v,
              ),
            }
          : {}),
        ...(withInstanceView
          ? {
              instanceView: {
                restartCount: run.restartCount,
                currentState: run.currentState,
                ...(run.previousState ? { previousState: run.previousState } : {}),
                events: run.events,
              },
            }
          : {}),
      },
    });
    return {
      ...top,
      id: idOf(group),
      name: group.name,
      type: 'Microsoft.ContainerInstance/containerGroups',
      location,
      properties: {
        ...rest,
        provisioningState: group.provisioningState,
        containers: group.runs.filter((r) => !r.init).map(containerView),
        ...(initContainers ? { initContainers: group.runs.filter((r) => r.init).map(containerView) } : {}),
        ...(volumes ? { volumes: volumes.map((v) => (v.secret ? { ...v, secret: {} } : v)) } : {}),
        ...(imageRegistryCredentials
          ? { imageRegistryCredentials: imageRegistryCredentials.map(({ password: _pw, ...c }) => c) }
          : {}),
        ...(withInstanceView ? { instanceView: { state: group.state, events: group.events } } : {}),
      },
    };
  }

  private provision(group: Group, generation: number): void {
    if (group.generation !== generation) return;
    if (group.failure === undefined && this.options.play) {
      try {
        group.dir = mkdtempSync(join(tmpdir(), 'refit-fakeaci-'));
        prepareVolumes(group.dir, group.spec);
      } catch (err) {
        group.failure = (err as Error).message;
      }
    }
    if (group.failure !== undefined) return this.failed(group);
    group.provisioningState = 'Succeeded';
    if (!this.options.play) {
      for (const run of group.runs) {
        if (run.init) this.ended(run, 0);
        else started(run);
      }
      group.state = 'Running';
      return;
    }
    const playing = this.play(group, generation, this.options.play.programs);
    this.playing.add(playing);
    void playing.finally(() => this.playing.delete(playing));
  }

  /** As ContainerGroupsGet_Failed: provisioningState Failed, the group still Pending, the reason in its events. */
  private failed(group: Group): void {
    group.generation++;
    group.provisioningState = 'Failed';
    group.events.push(event('Failed', group.failure ?? 'failed', 'Warning'));
  }

  /** ACI's order: init containers one after the other (a failing one fails the group), then all containers at once. */
  private async play(
    group: Group,
    generation: number,
    programs: Readonly<Record<string, string>>,
  ): Promise<void> {
    for (const run of group.runs.filter((r) => r.init)) {
      const exitCode = await this.runProcess(group, generation, run, programs);
      if (group.generation !== generation) return;
      if (exitCode !== 0) {
        group.state = 'Failed';
        return;
      }
    }
    group.state = 'Running';
    await Promise.all(
      group.runs.filter((r) => !r.init).map((run) => this.runProcess(group, generation, run, programs)),
    );
    if (group.generation === generation) this.settle(group);
  }

  /** Runs one container as a local process until it ends for good (once more after a platform restart). */
  private async runProcess(
    group: Group,
    generation: number,
    run: ContainerRun,
    programs: Readonly<Record<string, string>>,
  ): Promise<number> {
    for (;;) {
      const exitCode = await this.spawnContainer(group, run, programs);
      if (group.generation !== generation) return exitCode;
      if (this.ended(run, exitCode)) return exitCode;
    }
  }

  private spawnContainer(
    group: Group,
    run: ContainerRun,
    programs: Readonly<Record<string, string>>,
  ): Promise<number> {
    // One pass over each argument and env value: a mount path becomes its volume's folder, and an absolute program
    // path (a wrapper's `exec /kaniko/executor …`) its stand-in. Only whole paths are rewritten, never
    // `registry.example/workspace` for a mount at /workspace.
    const targets = new Map<string, string>(
      Object.entries(programs).filter(([from]) => from.startsWith('/')),
    );
    for (const m of run.spec.properties.volumeMounts ?? [])
      targets.set(m.mountPath, join(group.dir!, 'volumes', m.name));
    const pattern = new RegExp(
      `(?<![\\w.-])(${[...targets.keys()]
        .sort((a, b) => b.length - a.length)
        .map(escapeRegExp)
        .join('|')})(?![\\w.-])`,
      'g',
    );
    const rewrite = (text: string): string =>
      targets.size === 0 ? text : text.replace(pattern, (from) => targets.get(from)!);
    const [first, ...args] = run.spec.properties.command ?? [];
    if (first === undefined)
      return Promise.resolve(
        this.cannotStart(run, 'FakeAci cannot run an image entrypoint: give the container a command'),
      );
    const image = run.spec.properties.image ?? '';
    if (image && this.options.play?.inImage?.(image)) {
      // Inside the image: paths are the container's own, the volumes are mounted where it mounts them.
      const envFile = join(group.dir!, `env-${run.spec.name}`);
      writeFileSync(
        envFile,
        (run.spec.properties.environmentVariables ?? [])
          .map((v) => `${v.name}=${v.value ?? v.secureValue ?? ''}\0`)
          .join(''),
      );
      const mounts = (run.spec.properties.volumeMounts ?? []).map(
        (m) => `${join(group.dir!, 'volumes', m.name)}:${m.mountPath}${m.readOnly ? ':ro' : ''}`,
      );
      return this.spawnProcess(group, run, IN_IMAGE, [image, ...mounts, '--', first, ...args], {
        REFIT_FAKE_ENV_FILE: envFile,
      });
    }
    const program = programs[first] ?? rewrite(first);
    if (program.startsWith('/') && !existsSync(program))
      return Promise.resolve(
        this.cannotStart(run, `exec: "${first}": stat ${first}: no such file or directory`),
      );
    const env = Object.fromEntries(
      (run.spec.properties.environmentVariables ?? []).map((v) => [
        v.name,
        rewrite(v.value ?? v.secureValue ?? ''),
      ]),
    );
    return this.spawnProcess(group, run, program, args.map(rewrite), env);
  }

  /** Runs a container's process until it ends, its output the container's log; `kill` ends it with an exit code. */
  private spawnProcess(
    group: Group,
    run: ContainerRun,
    program: string,
    args: readonly string[],
    env: Record<string, string>,
  ): Promise<number> {
    started(run);
    return new Promise((resolve) => {
      let forced: number | undefined;
      let settled = false;
      const child = spawn(program, args, {
        cwd: group.dir,
        env: childEnv(env, { PATH: process.env.PATH }),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const finish = (exitCode: number): void => {
        if (settled) return;
        settled = true;
        delete run.kill;
        resolve(forced ?? exitCode);
      };
      run.kill = (exitCode) => {
        forced = exitCode;
        if (child.pid !== undefined) killGroup(child.pid);
      };
      child.stdout.on('data', (chunk: Buffer) => appendLog(run, chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => appendLog(run, chunk.toString()));
      child.on('error', (err) => {
        run.events.push(
          event('Failed', `Error: failed to start container "${run.spec.name}": ${err.message}`, 'Warning'),
        );
        finish(127);
      });
      child.on('close', (code, signal) =>
        finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 9) : 9)),
      );
    });
  }

  private cannotStart(run: ContainerRun, message: string): number {
    run.events.push(
      event('Failed', `Error: failed to start container "${run.spec.name}": ${message}`, 'Warning'),
    );
    return 127;
  }

  /** A container ended: Terminated (true), or, when the platform restart is armed, Running again with restartCount + 1. */
  private ended(run: ContainerRun, exitCode: number): boolean {
    const finished: AciContainerState = {
      state: 'Terminated',
      startTime: run.currentState.startTime ?? now(),
      finishTime: now(),
      exitCode,
      detailStatus: exitCode === 0 ? 'Completed' : 'Error',
    };
    if (run.restartArmed) {
      run.restartArmed = false;
      run.previousState = finished;
      run.restartCount++;
      run.log = '';
      started(run);
      return false;
    }
    run.currentState = finished;
    return true;
  }

  /** restartPolicy Never: once every container ended, the group Succeeded when all exited 0, else Failed. */
  private settle(group: Group): void {
    const mains = group.runs.filter((r) => !r.init);
    if (mains.some((r) => r.currentState.state !== 'Terminated')) return;
    group.state = mains.every((r) => r.currentState.exitCode === 0) ? 'Succeeded' : 'Failed';
  }

  /** Stops the group's processes and forgets its folder: a delete, or an update that replaces it. */
  private halt(group: Group): void {
    group.generation++;
    for (const run of group.runs) run.kill?.(137);
    if (group.dir) rmSync(group.dir, { recursive: true, force: true });
    delete group.dir;
  }

  private remove(group: Group): void {
    this.halt(group);
    this.byKey.delete(`${group.subscription}/${group.resourceGroup}/${group.name}`.toLowerCase());
  }

  private later(fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private find(name: string): Group | undefined {
    return [...this.byKey.values()].find((g) => g.name.toLowerCase() === name.toLowerCase());
  }

  private mustFind(name: string): Group {
    const group = this.find(name);
    if (!group) throw new Error(`FakeAci has no group ${name}`);
    return group;
  }

  private run(name: string, container?: string): ContainerRun {
    const group = this.mustFind(name);
    const run =
      container === undefined
        ? group.runs.find((r) => !r.init)
        : group.runs.find((r) => r.spec.name === container);
    if (!run) throw new Error(`FakeAci group ${name} has no container ${container ?? ''}`);
    return run;
  }
}

function newRun(spec: ContainerSpec, init: boolean): ContainerRun {
  return {
    spec,
    init,
    restartCount: 0,
    currentState: { state: 'Waiting', detailStatus: '' },
    events: [],
    log: '',
    restartArmed: false,
  };
}

function started(run: ContainerRun): void {
  run.currentState = { state: 'Running', startTime: now(), detailStatus: '' };
  run.events.push(event('Started', `Started container`));
}

function idOf(group: Group): string {
  return `/subscriptions/${group.subscription}/resourceGroups/${group.resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${group.name}`;
}

function appendLog(run: ContainerRun, text: string): void {
  run.log = lastBytes(run.log + text, RUNNING_LOG_BYTES);
}

/** emptyDir: a fresh folder the group's containers share; secret: a folder of the base64-decoded files. */
function prepareVolumes(dir: string, spec: GroupSpec): void {
  for (const volume of spec.properties.volumes ?? []) {
    const path = join(dir, 'volumes', volume.name);
    mkdirSync(path, { recursive: true });
    if (volume.secret) {
      for (const [file, base64] of Object.entries(volume.secret)) {
        if (file.includes('/') || file === '..' || file === '.')
          throw new Error(`secret volume ${volume.name}: bad file name ${file}`);
        writeFileSync(join(path, file), Buffer.from(base64, 'base64'), { mode: 0o600 });
      }
    } else if (!volume.emptyDir)
      throw new Error(`FakeAci plays emptyDir and secret volumes only, not ${volume.name}'s kind`);
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function lastBytes(text: string, limit: number): string {
  const bytes = Buffer.from(text);
  return bytes.length <= limit ? text : bytes.subarray(bytes.length - limit).toString();
}

function lastLines(text: string, count: number): string {
  const trailing = text.endsWith('\n');
  const lines = (trailing ? text.slice(0, -1) : text).split('\n');
  if (text === '' || lines.length <= count) return text;
  return lines.slice(-count).join('\n') + (trailing ? '\n' : '');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
