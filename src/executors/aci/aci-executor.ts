import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ContainerGroup, ContainerInstanceManagementClient } from '@azure/arm-containerinstance';
import { RestError } from '@azure/core-rest-pipeline';
import type { Config } from '../../config';
import { ConfigError, ValidationError } from '../../errors';
import { log } from '../../log';
import type { RegistryClient } from '../../registry/client';
import type { SecretResolver } from '../../secrets/key-vault';
import type { SourceAccess } from '../../sources/fetch-source';
import { parseImageReference } from '../../registry/image-reference';
import type { Run, RunSecrets } from '../../runs/run';
import type { RunLogs } from '../../runs/run-log';
import { buildArgValues } from '../../runs/schedule-run';
import { isGitSource, isUploadedSource } from '../../sources/source-path';
import { blobSasUrl, queueSendUrl } from '../../storage/sas';
import { names, type Storage } from '../../storage/storage';
import { statusOf } from '../../storage/write-conflicts';
import {
  unreadableReport,
  type ActiveRunState,
  type CONTINUES,
  Executor,
  ReconcileOptions,
  RunCallbacks,
  RunOutcome,
  StartResult,
} from '../executor';
import type { Admission } from './admission';
import type { AciSettings } from './aci-settings';
import { outputImage, recordedBases } from './recorded-bases';
import { builderReport } from './reports';
import { AciMultiStep, type CreateResult, type TaskFileRun } from './aci-multi-step';
import { buildGroup, gitSource, REPORTER_CORES, type DockerRun, type GroupSource } from './group-spec';

/** What the aci executor is given besides its settings. */
export interface AciExecutorDeps {
  readonly client: ContainerInstanceManagementClient;
  readonly storage: Storage;
  readonly logs: RunLogs;
  readonly callbacks: RunCallbacks;
  readonly registry: RegistryClient;
  readonly admission: Admission;
  /** Where sources live (a multi-step run's task file is read from its source). */
  readonly sources: SourceAccess;
  readonly keyVault?: SecretResolver | undefined;
  readonly now?: () => Date;
}

/** How long a Started run may wait for its group to appear before it counts as lost (queued again). */
const CREATE_GRACE_MS = 5 * 60 * 1000;
/**
 * How long after its group ended a run's report may still be on its way (an idle queue trigger polls about once a
 * minute): only then does the sweep end the run itself.
 */
const REPORT_GRACE_MS = 5 * 60 * 1000;
/** Extra validity of the group's SAS URLs beyond the run's timeout: the last log lines and the report. */
const SAS_MARGIN_MS = 30 * 60 * 1000;

const TAG_RUN = 'refit-run';
const TAG_DEPLOYMENT = 'refit-deployment';

/** ARM's Retry-After on a throttled or refused create, in seconds (60 when it gives none). */
function retryAfterOf(err: unknown): number {
  const header = err instanceof RestError ? err.response?.headers.get('retry-after') : undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 60;
}

/** Whether ARM refused a create because a container-group or core quota of the region is used up. */
function isQuotaError(err: unknown): boolean {
  const code = err instanceof RestError ? (err.code ?? '') : '';
  return /Quota/i.test(code) || /quota/i.test((err as Error).message ?? '');
}

/**
 * Runs Docker builds in Azure Container Instances, one container group per run (see group-spec.ts and
 * builder-scripts.ts). No function waits on a group: start sends the create and returns with ARM's first answer; the
 * group reports its end to the run-completions queue; the reconcile sweep settles what never reported.
 */
export class AciExecutor implements Executor {
  private readonly settings: AciSettings;
  /** Marks this deployment's groups (a resource group may hold another deployment's). */
  private readonly deployment: string;
  private readonly now: () => Date;
  /** Multi-step runs (acb task files): a container group per step attempt. */
  private readonly multi: AciMultiStep;

  constructor(
    private readonly config: Config,
    private readonly deps: AciExecutorDeps,
  ) {
    if (!config.aci)
      throw new ConfigError('the aci executor needs the REFIT_ACI_* settings', 'REFIT_EXECUTOR');
    this.settings = config.aci;
    const account = deps.storage.blobService.accountName;
    this.deployment = createHash('sha256')
      .update(`${config.homeRegistry}\n${account}\n${config.runIdPrefix}`)
      .digest('hex')
      .slice(0, 8);
    this.now = deps.now ?? (() => new Date());
    this.multi = new AciMultiStep({
      config,
      settings: this.settings,
      storage: deps.storage,
      logs: deps.logs,
      registry: deps.registry,
      sources: deps.sources,
      keyVault: deps.keyVault,
      groups: {
        create: (name, group) => this.createGroup(name, group),
        delete: (name) => this.deleteGroup(name),
        get: (name) => this.getGroup(name),
      },
      deployment: this.deployment,
      reportToken: (runId) => this.reportToken(runId),
      tags: (runId) => this.tags(runId),
      deleteImage: async (ref) => void (await deps.registry.deleteImage(parseImageReference(ref))),
      now: this.now,
    });
  }

  /** The tags of a run's groups: the reconcile sweep finds this deployment's groups by them. */
  private tags(runId: string): Record<string, string> {
    return { [TAG_RUN]: runId, [TAG_DEPLOYMENT]: this.deployment };
  }

  /**
   * The run's completion token: only the reporter of its group is given it (a secure value the build's RUN steps do
   * not see), and a report without it is dropped, so that a build cannot end another run.
   */
  private reportToken(runId: string): string {
    return createHmac('sha256', this.config.secretKey).update(`run-completion\n${runId}`).digest('hex');
  }

  /** The container group of a run: one name per run and deployment. */
  groupName(runId: string): string {
    return `refit-${runId}-${this.deployment}`;
  }

  async start(run: Run, secrets: RunSecrets): Promise<StartResult> {
    if (run.spec.kind === 'TaskFile') {
      const cores = run.agentConfiguration.cpu + REPORTER_CORES;
      // One lease per run: a multi-step run's groups follow one another (parallel steps share it).
      const admitted = await this.deps.admission.acquire(run.runId, cores);
      if (!admitted.admitted)
        return { started: false, reason: admitted.reason, retryAfterSeconds: admitted.retryAfterSeconds };
      let started: StartResult;
      try {
        started = await this.multi.start(run as TaskFileRun, secrets);
      } catch (err) {
        await this.deps.admission.release(run.runId);
        throw err;
      }
      if (!started.started) {
        await this.deps.admission.release(run.runId);
        return started;
      }
      return this.created(run.runId);
    }
    const docker = run as DockerRun;
    if (run.untrustedSource && !this.deps.storage.hasAccountKey)
      throw new ValidationError(
        "a fork's pull request cannot build in ACI on a storage account without keys: its group gets no identity, and without a key its report has nothing to sign in with",
      );
    const cores = run.agentConfiguration.cpu + REPORTER_CORES;
    const admitted = await this.deps.admission.acquire(run.runId, cores);
    if (!admitted.admitted)
      return { started: false, reason: admitted.reason, retryAfterSeconds: admitted.retryAfterSeconds };
    const name = this.groupName(run.runId);
    let result: CreateResult;
    try {
      const group = buildGroup(docker, this.settings, await this.inputs(docker, secrets));
      const writer = this.deps.logs.writer(run.runId, this.masks(docker, secrets));
      writer.line(
        `Creating container group ${name} in ${this.settings.location} (${run.agentConfiguration.cpu} CPU, ${this.settings.memoryGb} GB)`,
      );
      await writer.flush();
      result = await this.createGroup(name, group);
    } catch (err) {
      await this.deps.admission.release(run.runId);
      throw err;
    }
    if (!result.created) {
      await this.deps.admission.release(run.runId);
      return { started: false, reason: result.reason, retryAfterSeconds: result.retryAfterSeconds };
    }
    return this.created(run.runId);
  }

  /**
   * Sends a group's create and takes ARM's first answer (the group reports its own end: never …AndWait, never a poll
   * per run). ARM or the network failing (no answer, a 5xx), a throttled create (429) or a used-up quota answer "not
   * now" (the last two pause admission); anything else throws, failing what asked for the group.
   */
  private async createGroup(name: string, group: ContainerGroup): Promise<CreateResult> {
    let created = 0;
    try {
      await this.deps.client.containerGroups.beginCreateOrUpdate(this.settings.resourceGroup, name, group, {
        onResponse: (response) => (created ||= response.status),
      });
    } catch (err) {
      // ARM took the create (its first look at the operation failed): the group runs and reports.
      if (created === 200 || created === 201) return { created: true };
      const status = statusOf(err);
      if (err instanceof RestError && (status === undefined || status >= 500)) {
        const reason = `Azure did not take the container group create (${(err as Error).message.slice(0, 200)}): retrying in 60 s`;
        return { created: false, reason, retryAfterSeconds: 60 };
      }
      if (status === 429 || isQuotaError(err)) {
        const seconds = retryAfterOf(err);
        const reason =
          status === 429
            ? `Azure throttled container group creates: retrying in ${seconds} s`
            : `the container instance quota of ${this.settings.location} is used up (${(err as Error).message.slice(0, 200)}): retrying in ${seconds} s`;
        await this.deps.admission.pause(seconds, reason);
        return { created: false, reason, retryAfterSeconds: seconds };
      }
      throw err;
    }
    return { created: true };
  }

  /** The group of a run exists: the run is Running, unless it was canceled meanwhile (then the group goes). */
  private async created(runId: string): Promise<StartResult> {
    if (!(await this.deps.callbacks.running(runId))) await this.release(runId);
    return { started: true };
  }

  /**
   * Deletes the run's group (the build stops with it), frees its lease and closes its log: whether the group was
   * there yet or not (a create in flight finds the run canceled and deletes its group itself).
   */
  async cancel(runId: string): Promise<boolean> {
    await this.release(runId);
    await this.deps.logs.markComplete(runId, 'Canceled', `Run ID: ${runId} was canceled`);
    return true;
  }

  async reconcile(
    active: readonly Run[],
    options: ReconcileOptions,
  ): Promise<ReadonlyMap<string, ActiveRunState>> {
    const groups = await this.listGroups();
    // A run's groups (a Docker build has one; a multi-step run one per step attempt under way).
    const byRun = new Map<string, ContainerGroup[]>();
    for (const group of groups) {
      const runId = group.tags?.[TAG_RUN];
      if (runId) byRun.set(runId, [...(byRun.get(runId) ?? []), group]);
    }
    const states = new Map<string, ActiveRunState>();
    const now = this.now().getTime();
    // One failure (a read, a delete) costs that run its turn, not the sweep: the next sweep is a minute away.
    const each = async (what: string, runId: string, work: () => Promise<void>): Promise<void> => {
      try {
        await work();
      } catch (err) {
        log.warn(`reconcile could not ${what}`, { runId, error: (err as Error).message });
      }
    };
    for (const run of active) {
      const group = byRun.get(run.runId)?.find((g) => g.name === this.groupName(run.runId));
      byRun.delete(run.runId);
      const started = run.startTime ? Date.parse(run.startTime) : now;
      if (run.spec.kind === 'TaskFile') {
        await each("read a multi-step run's groups", run.runId, async () => {
          if (now - started > run.timeout * 1000) {
            states.set(run.runId, { state: 'ended', outcome: timedOut(run) });
            return;
          }
          const found = await this.multi.reconcile(run as TaskFileRun, options.secretsOf(run));
          if (found === 'lost') {
            if (now - started > CREATE_GRACE_MS)
              states.set(run.runId, { state: 'lost', reason: "the run's step graph was never stored" });
          } else if (found !== 'active') states.set(run.runId, { state: 'ended', outcome: found });
        });
        continue;
      }
      await each("read a run's group", run.runId, async () => {
        if (!group) {
          if (run.status === 'Running')
            states.set(run.runId, {
              state: 'lost',
              reason: "the run's container group is gone: it was deleted outside Refit",
            });
          else if (now - started > CREATE_GRACE_MS)
            states.set(run.runId, { state: 'lost', reason: "the run's container group was never created" });
          return;
        }
        states.set(run.runId, await this.stateOf(run, now - started, now));
      });
    }
    // What is left belongs to no run that was active when listed: a finished run's group whose release failed, or a
    // run that is gone. A run that started since (its group listed, itself not) is read again and left alone.
    for (const [runId, orphans] of byRun)
      await each('delete an orphaned group', runId, async () => {
        if (await options.stillActive(runId)) return;
        await this.release(runId);
        // By name too: a group whose run's record is gone (a create that raced a stop) is named by nothing else.
        for (const group of orphans) if (group.name) await this.deleteGroup(group.name);
      });
    const activeIds = new Set(active.map((r) => r.runId));
    for (const lease of await this.deps.admission.leases())
      if (!activeIds.has(lease.runId))
        await each('free a lease', lease.runId, async () => {
          if (!(await options.stillActive(lease.runId))) await this.deps.admission.release(lease.runId);
        });
    return states;
  }

  /** What the group of an active run says of it (read with one GET: list items carry no instance view). */
  private async stateOf(run: Run, elapsedMs: number, now: number): Promise<ActiveRunState> {
    if (elapsedMs > run.timeout * 1000) {
      await this.deleteGroup(this.groupName(run.runId));
      return { state: 'ended', outcome: timedOut(run) };
    }
    const group = await this.getGroup(this.groupName(run.runId));
    if (!group)
      return { state: 'lost', reason: "the run's container group is gone: it was deleted outside Refit" };
    const state = group.instanceView?.state;
    const failedToProvision = group.provisioningState === 'Failed';
    if (!failedToProvision && state !== 'Succeeded' && state !== 'Failed' && state !== 'Stopped')
      return { state: 'active' };
    const events = [
      ...(group.instanceView?.events ?? []),
      ...group.containers.flatMap((c) => c.instanceView?.events ?? []),
      ...(group.initContainers ?? []).flatMap((c) => c.instanceView?.events ?? []),
    ];
    const failure = (
      events.find((e) => e.type === 'Warning' || /^(Failed|BackOff)/.test(e.name ?? '')) ??
      group.instanceView?.events?.at(-1)
    )?.message;
    if (failedToProvision)
      return {
        state: 'ended',
        outcome: {
          status: 'Error',
          outputImages: [],
          runErrorMessage: `the container group could not be provisioned: ${failure ?? 'ACI gave no reason'}`,
        },
      };
    const build = group.containers.find((c) => c.name === 'build')?.instanceView;
    const report = group.containers.find((c) => c.name === 'report')?.instanceView;
    if ((build?.restartCount ?? 0) > 0) return { state: 'ended', outcome: restarted(build!.restartCount!) };
    // The report may still be on its way: the group's end is acted on once it is older than the grace.
    const ended = Math.max(
      0,
      ...group.containers.map(
        (c) => Date.parse(c.instanceView?.currentState?.finishTime?.toString() ?? '') || 0,
      ),
    );
    if (!ended || now - ended < REPORT_GRACE_MS) return { state: 'active' };
    return {
      state: 'ended',
      outcome: {
        status: 'Error',
        outputImages: [],
        runErrorMessage: `the container group ended (${state}) without its report arriving (the reporter exited ${report?.currentState?.exitCode ?? 'with no exit code'})${failure ? `: ${failure}` : ''}`,
      },
    };
  }

  async outcome(
    run: Run,
    secrets: RunSecrets,
    report: unknown,
  ): Promise<RunOutcome | null | typeof CONTINUES> {
    // Only the run's own reporter holds its token: anything else is dropped before it is read.
    const token = (report as { token?: unknown } | null)?.token;
    const expected = Buffer.from(this.reportToken(run.runId));
    const given = Buffer.from(typeof token === 'string' ? token : '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    if (run.spec.kind === 'TaskFile') return this.multi.report(run as TaskFileRun, secrets, report);
    const parsed = builderReport.safeParse(report);
    if (!parsed.success) return unreadableReport("the build's report", parsed.error);
    const r = parsed.data;
    const group = await this.getGroup(this.groupName(run.runId));
    const restartCount = group?.containers.find((c) => c.name === 'build')?.instanceView?.restartCount ?? 0;
    const cost = this.cost(run);
    if (r.restarted || restartCount > 0) return { ...restarted(Math.max(restartCount, 1)), ...cost };
    if (r.exitCode !== 0)
      return {
        status: 'Failed',
        outputImages: [],
        runErrorMessage: r.error || `the build failed with exit code ${r.exitCode}`,
        ...cost,
      };
    const docker = run as DockerRun;
    return {
      status: 'Succeeded',
      outputImages: r.images.flatMap((line) => outputImage(line)),
      baseImageDependencies: await recordedBases(this.deps.registry, {
        runId: run.runId,
        dockerfile: Buffer.from(r.dockerfile, 'base64').toString('utf8'),
        buildArgs: buildArgValues(docker.spec.arguments, secrets.arguments),
        target: docker.spec.target,
        platform: run.platform,
        registries: secrets.registries,
      }),
      ...cost,
    };
  }

  /** Deletes the run's groups that are still there, what a multi-step run left, and its admission lease. Idempotent. */
  async release(runId: string): Promise<void> {
    await this.deleteGroup(this.groupName(runId));
    await this.multi.release(runId);
    await this.deps.admission.release(runId);
  }

  /** Lists one group of the build resource group: the identity may read there, and ARM answers. */
  async probe(): Promise<void> {
    await this.deps.client.containerGroups
      .listByResourceGroup(this.settings.resourceGroup)
      .byPage({ maxPageSize: 1 })
      .next();
  }

  async close(): Promise<void> {}

  /** The run's cost estimate: cores and memory by seconds at ACI's prices (REFIT_ACI_PRICE_*). */
  private cost(run: Run): Pick<RunOutcome, 'costEstimate'> {
    const seconds = Math.max(0, (this.now().getTime() - Date.parse(run.startTime ?? run.createTime)) / 1000);
    const cores = run.agentConfiguration.cpu + REPORTER_CORES;
    const gb = this.settings.memoryGb + 0.5;
    const amount = seconds * (cores * this.settings.prices.coreSecond + gb * this.settings.prices.gbSecond);
    return {
      costEstimate: {
        amount: Math.round(amount * 1e6) / 1e6,
        currency: 'USD',
        seconds: Math.round(seconds),
        cores,
        memoryGb: gb,
      },
    };
  }

  /** What the group is given: SAS URLs valid for the run's timeout and a margin, the source, logins, masks. */
  private async inputs(run: DockerRun, secrets: RunSecrets): Promise<Parameters<typeof buildGroup>[2]> {
    const validity = run.timeout * 1000 + SAS_MARGIN_MS;
    const logName = this.deps.logs.blob(run.runId).name;
    return {
      source: await this.source(run, secrets, validity),
      logUrl: await blobSasUrl(this.deps.storage, names.containers.logs, logName, 'a', validity),
      reportUrl: queueSendUrl(this.deps.storage, names.queues.runCompletions, validity),
      buildArgs: run.spec.arguments.map((a) => ({
        name: a.name,
        isSecret: a.isSecret,
        value: a.isSecret ? (secrets.arguments[a.name] ?? '') : (a.value ?? ''),
      })),
      logins: Object.fromEntries(
        Object.entries(secrets.registries ?? {}).filter(
          ([registry]) => registry !== this.config.homeRegistry,
        ),
      ),
      insecureRegistries: this.config.insecureRegistries,
      masks: this.masks(run, secrets),
      reportToken: this.reportToken(run.runId),
      maxLogBytes: this.config.maxLogBytes,
      homeRegistry: this.config.homeRegistry,
      tags: { [TAG_RUN]: run.runId, [TAG_DEPLOYMENT]: this.deployment },
    };
  }

  private async source(run: DockerRun, secrets: RunSecrets, validity: number): Promise<GroupSource> {
    const location = run.spec.sourceLocation;
    if (isUploadedSource(location))
      return {
        kind: 'archive',
        url: await blobSasUrl(this.deps.storage, names.containers.sources, location, 'r', validity),
        folder: '',
      };
    if (isGitSource(location)) return gitSource(location, run.spec.commit, secrets.gitToken);
    return { kind: 'archive', url: location, folder: '' };
  }

  /** Every secret value of the run: masked in its log before it leaves the group. */
  private masks(run: DockerRun, secrets: RunSecrets): string[] {
    return [
      ...Object.values(secrets.arguments),
      ...Object.values(secrets.values ?? {}),
      ...(secrets.gitToken ? [secrets.gitToken] : []),
      ...Object.values(secrets.registries ?? {}).map((c) => c.password),
    ].filter((v) => v.length > 0);
  }

  private async listGroups(): Promise<ContainerGroup[]> {
    const groups: ContainerGroup[] = [];
    for await (const group of this.deps.client.containerGroups.listByResourceGroup(
      this.settings.resourceGroup,
    ))
      if (group.tags?.[TAG_DEPLOYMENT] === this.deployment) groups.push(group);
    return groups;
  }

  private async getGroup(name: string): Promise<ContainerGroup | undefined> {
    try {
      return await this.deps.client.containerGroups.get(this.settings.resourceGroup, name);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Sends the delete (its first answer only); false when the group was not there. */
  private async deleteGroup(name: string): Promise<boolean> {
    let status = 0;
    try {
      await this.deps.client.containerGroups.beginDelete(this.settings.resourceGroup, name, {
        onResponse: (response) => (status ||= response.status),
      });
      // 200 or 202: the group was there; 204: it was not.
      return status !== 204;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }
}

/** The outcome of a run past its timeout (its groups are deleted when it is settled). */
function timedOut(run: Run): RunOutcome {
  return {
    status: 'Timeout',
    outputImages: [],
    runErrorMessage: `the run timed out after ${run.timeout} seconds`,
  };
}

/** The outcome of a run whose build container the platform started again: its result cannot be trusted. */
function restarted(count: number): RunOutcome {
  return {
    status: 'Error',
    outputImages: [],
    runErrorMessage: `the platform restarted the build container (restartCount ${count}): the run's result is not trusted`,
  };
}
