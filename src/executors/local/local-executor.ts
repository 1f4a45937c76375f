import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import pRetry from 'p-retry';
import type { Config } from '../../config';
import type { RecordedDependency } from '../../dependencies/dependency-index';
import { parseImageReference, speaksPlainHttp } from '../../registry/image-reference';
import type { RegistryClient } from '../../registry/client';
import { buildArgValues } from '../../runs/schedule-run';
import { AcbError } from '../../acb/errors';
import { StepFailedError } from '../../acb/runner';
import { RefitError } from '../../errors';
import type { DockerBuildSpec, OutputImage, Run, RunSecrets } from '../../runs/run';
import type { TaskFileSpec } from '../../runs/task-file-run';
import type { SecretResolver } from '../../secrets/key-vault';
import { MultiStepRun, platformName, type LogSink, type StepTools } from './multi-step';
import { dockerBuildArgs } from './secrets-off-argv';
import { pinBases, type BaseScanOptions, type BuildBases } from './build-bases';
import { ExecutorRegistriesConf } from './registries-conf';
import { registryFailure } from './registry-failures';
import { removeRegistryAuthFile, writeRegistryAuthFile } from './registry-auth-file';
import { RegistryNames } from '../../registry/registry-names';
import type { RunLogs, RunLogWriter } from '../../runs/run-log';
import type { Storage } from '../../storage/storage';
import {
  reportedOutcome,
  type ActiveRunState,
  type Executor,
  type ReconcileOptions,
  type RunCallbacks,
  type RunOutcome,
  type StartResult,
} from '../executor';
import { log } from '../../log';
import { childEnv } from '../../process/child-env';
import { runProcess } from '../../process/run-process';
import { cpuSet, onCpus } from './cpu-affinity';
import { ProcessGroups } from '../../process/process-groups';
import { HOST_STOPPED_MESSAGE } from '../../runs/run-service';
import { processGroupsDir, removeWorkingContainers } from './leftovers';
import { fetchSource, type SourceAccess } from '../../sources/fetch-source';
import { SourceError } from '../../sources/source-error';
import { sourceSecrets } from '../../sources/url-credentials';

interface Job {
  readonly run: Run;
  readonly secrets: RunSecrets;
  readonly abort: AbortController;
  /** The run's registry logins for buildah (containers-auth.json in its work folder), while it runs. */
  authFile?: string | undefined;
  /** Why the job was stopped from outside, if it was. */
  stopReason?: 'Canceled' | 'Timeout' | 'HostStopped';
  /** The CPUs its build and cmd steps are held to (agentConfiguration.cpu), or undefined for all of them. */
  cpus?: number[] | undefined;
}

/** A run of a Docker build (a quick build or a Docker task). */
type DockerRun = Run & { readonly spec: DockerBuildSpec };
/** A run of an acb task file (a quick run or a multi-step task). */
type TaskFileRun = Run & { readonly spec: TaskFileSpec };

/** The tags a run's build gets: its image names, or a local name when it has none. */
function tagsOf(run: DockerRun): readonly string[] {
  return run.spec.imageNames.length > 0 ? run.spec.imageNames : [`localhost/refit-run:${run.runId}`];
}

/** The one line a run of a fork's pull request starts its log with. */
export const UNTRUSTED_SOURCE_LINE =
  "This run builds a pull request from a fork: it runs without the task's secrets (git token, secret arguments and values) and pushes nothing";

/** How long closing waits for stopped builds to report and clean up. */
const CLOSE_WAIT_MS = 20000;

/**
 * How hard the outcome of a run is reported: about two minutes of retries with backoff and jitter, long enough to
 * ride out a storage restart, short enough that the housekeeping of a finished build is not held up for long.
 */
const COMPLETION_RETRY: pRetry.Options = {
  retries: 8,
  factor: 2,
  minTimeout: 500,
  maxTimeout: 30000,
  randomize: true,
};

/** A step that failed with a message for the user (not an internal error). */
class StepFailed extends Error {}

/** Runs Docker builds on this machine with buildah (chroot isolation, vfs storage by default). */
export class LocalExecutor implements Executor {
  private readonly jobs = new Map<string, Job>();
  private readonly waiting: Job[] = [];
  private active = 0;
  private closed = false;
  private readonly executing = new Set<Promise<void>>();
  /** The process groups of the builds, recorded so that a start after a crash can end them. */
  private readonly groups: ProcessGroups;
  /** The registries.conf of every buildah call: the configured one plus the plain-HTTP registries runs used. */
  private readonly registriesConf: ExecutorRegistriesConf;
  /** The names of registries: a run's logins are matched to the registries it reaches by them. */
  private readonly names: RegistryNames;
  /** A build was stopped since the last sweep: buildah killed outside a RUN step leaves its working container. */
  private stoppedBuilds = false;
  /** The sweep of working containers under way: no build starts meanwhile. */
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly config: Config,
    private readonly storage: Storage,
    private readonly logs: RunLogs,
    private readonly callbacks: RunCallbacks,
    private readonly registry: RegistryClient,
    private readonly sources: SourceAccess,
    private readonly keyVault?: SecretResolver,
  ) {
    this.groups = new ProcessGroups(processGroupsDir(config));
    this.names = new RegistryNames(config.homeRegistry, config.homeRegistryAliases);
    this.registriesConf = new ExecutorRegistriesConf(
      join(config.workDir, '.registries.conf'),
      config.containersRegistriesConf,
      (registry) => this.isPlainHttp(registry),
    );
  }

  /** Always takes the run: it waits here for a build slot (REFIT_MAX_CONCURRENT_RUNS) while it is Started. */
  async start(run: Run, secrets: RunSecrets): Promise<StartResult> {
    if (this.jobs.has(run.runId)) return { started: true };
    const job: Job = { run, secrets, abort: new AbortController() };
    this.jobs.set(run.runId, job);
    this.waiting.push(job);
    this.pump();
    return { started: true };
  }

  /**
   * The runs this host runs are active; at startup none is, so every active run was a previous host's: lost. Later,
   * a run this executor does not know is left alone (another Refit on the same storage may run it).
   */
  async reconcile(
    active: readonly Run[],
    options: ReconcileOptions,
  ): Promise<ReadonlyMap<string, ActiveRunState>> {
    const states = new Map<string, ActiveRunState>();
    for (const run of active) {
      if (this.jobs.has(run.runId)) states.set(run.runId, { state: 'active' });
      else if (options.startup) states.set(run.runId, { state: 'lost', reason: HOST_STOPPED_MESSAGE });
    }
    return states;
  }

  /** A local run reports in-process; a report through the queue is read as the outcome it carries. */
  async outcome(run: Run, _secrets: RunSecrets, report: unknown): Promise<RunOutcome | null> {
    return reportedOutcome(run.runId, report);
  }

  /** A local run cleans up after itself when it reports (its containers, images and work folder). */
  async release(_runId: string): Promise<void> {}

  async cancel(runId: string): Promise<boolean> {
    const job = this.jobs.get(runId);
    if (!job) return false;
    job.stopReason ??= 'Canceled';
    job.abort.abort();
    return true;
  }

  /** Lists the images of the deployment's buildah storage, with its own settings: buildah runs, and so does the storage. */
  async probe(): Promise<void> {
    let output = '';
    const result = await runProcess('buildah', this.buildah(['images', '--quiet']), {
      env: this.env(),
      onOutput: (chunk) => (output += chunk),
    });
    if (result.code !== 0)
      throw new Error(
        `buildah images exited with ${result.code ?? result.signal}: ${output.trim().slice(0, 500)}`,
      );
  }

  /**
   * Puts the runs still waiting for a build slot back in the queue (the next host builds them), stops every build
   * (each ends Error: the host stopped) and waits (up to 20 s) until each has reported and cleaned up: a buildah
   * killed mid-way, or left writing to the pipes of a process that has exited, leaves its working container behind.
   */
  async close(): Promise<void> {
    this.closed = true;
    const waiting = this.waiting.splice(0);
    for (const job of waiting) this.jobs.delete(job.run.runId);
    for (const job of this.jobs.values()) {
      job.stopReason ??= 'HostStopped';
      job.abort.abort();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([
        ...this.executing,
        ...waiting.map((job) =>
          // A run canceled while it waited never reaches execute, which would have closed its log.
          (job.stopReason
            ? this.logs.markComplete(job.run.runId, 'Canceled', `Run ID: ${job.run.runId} was canceled`)
            : this.callbacks.requeue(job.run.runId)
          ).catch((err: unknown) => {
            log.error('a waiting run could not be queued again', {
              runId: job.run.runId,
              error: (err as Error).message,
            });
          }),
        ),
      ]),
      new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    await this.sweeping;
    if (this.stoppedBuilds && this.executing.size === 0) await this.sweep();
  }

  private pump(): void {
    while (
      !this.closed &&
      !this.sweeping &&
      this.active < this.config.localConcurrency &&
      this.waiting.length > 0
    ) {
      const job = this.waiting.shift()!;
      this.active++;
      // Every process the run starts (buildah, git) is recorded while it runs.
      const execution: Promise<void> = this.groups
        .run(() => this.execute(job))
        .catch((err: unknown) => {
          log.error('a run could not be reported', { runId: job.run.runId, error: (err as Error).message });
        })
        .finally(() => {
          if (job.abort.signal.aborted) this.stoppedBuilds = true;
          this.active--;
          this.jobs.delete(job.run.runId);
          this.executing.delete(execution);
          // Idle after a stopped build: its working container can go now that no other build could be using one.
          if (this.active === 0 && this.stoppedBuilds && !this.closed)
            this.sweeping = this.sweep().finally(() => {
              this.sweeping = undefined;
              this.pump();
            });
          else this.pump();
        });
      this.executing.add(execution);
    }
  }

  /** Removes the working containers stopped builds left in the executor's own buildah storage. */
  private async sweep(): Promise<void> {
    this.stoppedBuilds = false;
    try {
      const removed = await removeWorkingContainers(this.config);
      if (removed) log.info('working containers of stopped builds removed', { removed });
    } catch (err) {
      log.warn('working containers of stopped builds could not be removed', {
        error: (err as Error).message,
      });
    }
  }

  /**
   * buildah's environment: the allow-list, what this call adds (`own`, e.g. secret build args), registries.conf, and
   * the run's registry logins (REGISTRY_AUTH_FILE: a file, never a password on the command line).
   */
  private env(own: Readonly<Record<string, string>> = {}, authFile?: string): Record<string, string> {
    return childEnv({
      ...own,
      CONTAINERS_REGISTRIES_CONF: this.registriesConf.path,
      ...(authFile ? { REGISTRY_AUTH_FILE: authFile } : {}),
    });
  }

  private buildah(args: readonly string[]): string[] {
    return [...this.config.buildahGlobalArgs, ...args];
  }

  /** Plain HTTP: a registry on loopback (any port), or one of REFIT_INSECURE_REGISTRIES. */
  private isPlainHttp(registry: string): boolean {
    return speaksPlainHttp(registry, this.config.insecureRegistries);
  }

  private isInsecure(image: string): boolean {
    return this.isPlainHttp(parseImageReference(image).registry);
  }

  /**
   * Scans and pins a build's bases (looked up with the run's logins), and lets buildah reach the plain-HTTP
   * registries among them.
   */
  private async pinBases(
    job: Job,
    dockerfile: string,
    options: BaseScanOptions,
    log: LogSink,
  ): Promise<BuildBases> {
    const logins = job.secrets.registries;
    const bases = await pinBases(
      this.registry,
      dockerfile,
      { ...options, credentials: (registry) => this.names.find(logins, registry) },
      log,
    );
    await this.registriesConf.allow(bases.recorded.map((b) => b.registry));
    // The home registry takes no login: only another registry's refusal means this run may not have the image.
    const refused = bases.refused.filter(
      (image) => this.names.canonical(parseImageReference(image).registry) !== this.config.homeRegistry,
    );
    return { ...bases, refused };
  }

  private async execute(job: Job): Promise<void> {
    const { run } = job;
    const started = Date.now();
    const secretValues = [
      ...Object.values(job.secrets.arguments),
      ...(job.secrets.gitToken ? [job.secrets.gitToken] : []),
      ...(run.spec.sourceLocation ? sourceSecrets(run.spec.sourceLocation) : []),
      ...MultiStepRun.secretValues(job.secrets),
      ...Object.values(job.secrets.registries ?? {}).map((l) => l.password),
    ];
    const log = this.logs.writer(run.runId, secretValues);
    if (run.untrustedSource) log.line(UNTRUSTED_SOURCE_LINE);
    job.cpus = cpuSet(run.agentConfiguration.cpu, run.runId);
    if (job.cpus)
      log.line(
        `agentConfiguration.cpu is ${run.agentConfiguration.cpu}: the build runs on CPU ${job.cpus.join(',')} of this machine`,
      );
    const timer = setTimeout(() => {
      job.stopReason ??= 'Timeout';
      job.abort.abort();
    }, run.timeout * 1000);
    let outcome: RunOutcome;
    let workDir: string | undefined;
    // What the run leaves in buildah's storage: containers (kept or detached cmd steps) and the images it built.
    const leftovers = { containers: [] as string[], images: [] as string[] };
    try {
      if (job.abort.signal.aborted) throw new StepFailed('the run was stopped before it started');
      if (!(await this.callbacks.running(run.runId))) {
        // Canceled between its claim and its start: the cancel found no job to stop, so stop it here.
        job.stopReason ??= 'Canceled';
        throw new StepFailed('the run was canceled before it started');
      }
      await mkdir(this.config.workDir, { recursive: true });
      await this.registriesConf.allow([]);
      workDir = await mkdtemp(join(this.config.workDir, `${run.runId}-`));
      job.authFile = await writeRegistryAuthFile(workDir, job.secrets.registries, this.names);
      let result: { outputImages: OutputImage[]; baseImageDependencies: RecordedDependency[] };
      if (run.spec.kind === 'TaskFile') {
        const steps = new MultiStepRun(
          this.tools(job),
          run as TaskFileRun,
          job.secrets,
          this.config.homeRegistry,
          log,
          workDir,
          job.abort.signal,
        );
        try {
          result = await steps.execute();
        } finally {
          leftovers.containers.push(...steps.containers());
          leftovers.images.push(...steps.builtImages());
        }
      } else {
        leftovers.images.push(...tagsOf(run as DockerRun));
        result = await this.build(job as Job & { run: DockerRun }, workDir, log);
      }
      const { outputImages, baseImageDependencies } = result;
      const seconds = ((Date.now() - started) / 1000).toFixed(3);
      log.line(`Run ID: ${run.runId} was successful after ${seconds}s`);
      outcome = { status: 'Succeeded', outputImages, baseImageDependencies };
    } catch (err) {
      outcome = this.failure(job, err, log);
    } finally {
      clearTimeout(timer);
      // The logins go as soon as the build ends, whatever its end (the work folder's removal is the backstop).
      await removeRegistryAuthFile(job.authFile).catch(() => undefined);
      delete job.authFile;
    }
    await this.complete(run, outcome, log, leftovers, workDir);
  }

  /**
   * The completion path, which nothing cuts short: the outcome is reported (retried while storage is away), the log
   * is marked complete and the housekeeping done whether or not the report got through. Never rejects.
   */
  private async complete(
    run: Run,
    outcome: RunOutcome,
    runLog: RunLogWriter,
    leftovers: { readonly containers: readonly string[]; readonly images: readonly string[] },
    workDir: string | undefined,
  ): Promise<void> {
    try {
      // The status is final before the log is marked complete, so a follower that sees the end sees the outcome.
      await runLog.flush();
      await pRetry(() => this.callbacks.finished(run.runId, outcome), {
        ...COMPLETION_RETRY,
        onFailedAttempt: (err) => {
          // A run that is gone (deleted meanwhile) stays gone: only storage and transport failures are retried.
          if (err instanceof RefitError && err.status < 500) throw err;
          log.warn('run outcome not recorded; it is retried', {
            runId: run.runId,
            attempt: err.attemptNumber,
            error: err.message,
          });
        },
      });
    } catch (err) {
      // The run stays Started or Running; the next start of the host ends it (RunService.reconcile).
      log.error('run outcome could not be recorded', {
        runId: run.runId,
        status: outcome.status,
        error: (err as Error).message,
      });
    }
    await runLog.close(outcome.status).catch((err: unknown) => {
      log.error('run log could not be closed', { runId: run.runId, error: (err as Error).message });
    });
    // Clean up after reporting, so that the run's duration is the build's, not the housekeeping's.
    const housekeeping = [
      ...(leftovers.containers.length ? [['rm', ...leftovers.containers]] : []),
      ...(leftovers.images.length ? [['rmi', '--force', ...leftovers.images]] : []),
    ];
    for (const args of housekeeping)
      await runProcess('buildah', this.buildah(args), { env: this.env() }).catch(() => undefined);
    if (workDir) await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }

  private failure(job: Job, err: unknown, log: RunLogWriter): RunOutcome {
    const { run } = job;
    if (job.stopReason === 'Timeout') {
      const message = `the run timed out after ${run.timeout} seconds`;
      log.line(`Run ID: ${run.runId} failed: ${message}`);
      return { status: 'Timeout', outputImages: [], runErrorMessage: message };
    }
    if (job.stopReason === 'HostStopped') {
      log.line(`Run ID: ${run.runId} failed: ${HOST_STOPPED_MESSAGE}`);
      return { status: 'Error', outputImages: [], runErrorMessage: HOST_STOPPED_MESSAGE };
    }
    if (job.stopReason === 'Canceled') {
      log.line(`Run ID: ${run.runId} was canceled`);
      return { status: 'Canceled', outputImages: [], runErrorMessage: 'the run was canceled' };
    }
    if (
      err instanceof StepFailed ||
      err instanceof SourceError ||
      err instanceof StepFailedError ||
      err instanceof AcbError
    ) {
      log.line(`Run ID: ${run.runId} failed: ${err.message}`);
      return { status: 'Failed', outputImages: [], runErrorMessage: err.message };
    }
    const message = `internal error: ${(err as Error).message}`;
    log.line(`Run ID: ${run.runId} failed: ${message}`);
    return { status: 'Error', outputImages: [], runErrorMessage: message };
  }

  private async step(
    command: string,
    args: string[],
    signal: AbortSignal,
    log: LogSink,
    what: string,
    cwd?: string,
    ownEnv: Readonly<Record<string, string>> = {},
    authFile?: string,
  ): Promise<void> {
    log.line(`Running command ${command} ${args.join(' ')}`);
    // The end of the output, where buildah says what failed (a registry's refusal is named in the run's error).
    let tail = '';
    const result = await runProcess(command, args, {
      ...(cwd ? { cwd } : {}),
      env: this.env(ownEnv, authFile),
      signal,
      onOutput: (chunk) => {
        log.write(chunk);
        tail = (tail + chunk).slice(-16384);
      },
    });
    if (signal.aborted) throw new StepFailed(`${what} was stopped`);
    if (result.code !== 0) {
      const reason = registryFailure(tail);
      throw new StepFailed(
        `${what} failed with exit code ${result.code ?? result.signal}${reason ? `: ${reason}` : ''}`,
      );
    }
  }

  /** The helpers a multi-step run shares with Docker builds, with the run's registry logins. */
  private tools(job: Job): StepTools {
    return {
      sources: this.sources,
      maxAliasBytes: this.config.limits.aliasBytes,
      buildah: (args) => this.buildah(args),
      cpus: job.cpus,
      keyVault: this.keyVault,
      env: (own) => this.env(own, job.authFile),
      isInsecure: (image) => this.isInsecure(image),
      push: (image, signal, log, workDir) => this.push(image, signal, log, workDir, job.authFile),
      bases: (dockerfile, options, log) => this.pinBases(job, dockerfile, options, log),
      refusedToRun: (image) => this.refusedToRun(job, image),
    };
  }

  /**
   * Whether a registry other than the home one refuses `image` to this run (a HEAD with the run's login, if it has
   * one, answers 401, 403 or 404). Builds ask the registry anyway; a cmd step would run a copy an earlier run pulled
   * into the shared storage, so a private image could reach a run without its login. When the registry cannot be
   * asked (down, offline), the storage's copy is used as before.
   */
  private async refusedToRun(job: Job, image: string): Promise<boolean> {
    let ref;
    try {
      ref = parseImageReference(image);
    } catch {
      return false;
    }
    if (this.names.canonical(ref.registry) === this.config.homeRegistry) return false;
    try {
      return (await this.registry.head(ref, this.names.find(job.secrets.registries, ref.registry))) === null;
    } catch {
      return false;
    }
  }

  private async build(
    job: Job & { run: DockerRun },
    workDir: string,
    log: RunLogWriter,
  ): Promise<{ outputImages: OutputImage[]; baseImageDependencies: RecordedDependency[] }> {
    const { run } = job;
    const spec = run.spec;
    log.line('Downloading source code...');
    const context = await fetchSource(
      this.sources,
      { location: spec.sourceLocation, commit: spec.commit, gitToken: job.secrets.gitToken },
      workDir,
      job.abort.signal,
      (t) => log.line(t),
    );
    const dockerfile = resolve(context, spec.dockerFilePath);
    const root = resolve(workDir, 'src');
    if (!dockerfile.startsWith(root + sep))
      throw new StepFailed(`dockerFilePath '${spec.dockerFilePath}' is outside the source`);
    if (!(await stat(dockerfile).catch(() => null))?.isFile()) {
      throw new StepFailed(`the Dockerfile '${spec.dockerFilePath}' was not found in the source`);
    }
    // Nor through a link: a Dockerfile linked to a file of this machine would show it in build errors.
    const real = await realpath(dockerfile);
    if (!real.startsWith((await realpath(root)) + sep))
      throw new StepFailed(`dockerFilePath '${spec.dockerFilePath}' is a link to outside the source`);

    const platform = platformName(run.platform);
    // Secret values go to buildah's environment, not its command line (readable by every local user).
    const argValues = buildArgValues(spec.arguments, job.secrets.arguments);
    const buildArgs = dockerBuildArgs(spec.arguments, argValues);
    const bases = await this.pinBases(
      job,
      dockerfile,
      {
        buildArgs: argValues,
        target: spec.target,
        platform: run.platform,
        secrets: Object.values(job.secrets.arguments),
        scratchDir: workDir,
      },
      log,
    );
    const tags = tagsOf(run);
    const bud = this.buildah([
      'bud',
      '--isolation',
      'chroot',
      '--platform',
      platform,
      ...bases.buildContexts,
      // buildah's default (pull if newer) falls back to a stored copy when the registry refuses: a base refused to
      // this run must be asked for, so that a private image another run pulled is not built from without a login.
      ...(bases.refused.length ? ['--pull=always'] : []),
      '-f',
      bases.dockerfile,
      ...tags.flatMap((t) => ['-t', t]),
      ...(spec.target ? ['--target', spec.target] : []),
      ...(spec.noCache ? ['--no-cache'] : []),
      ...buildArgs.words,
      context,
    ]);
    const held = onCpus(job.cpus, 'buildah', bud);
    await this.step(
      held.command,
      held.args,
      job.abort.signal,
      log,
      'the build',
      context,
      buildArgs.env,
      job.authFile,
    );
    const baseImageDependencies = bases.recorded;
    const outputImages: OutputImage[] = [];
    if (run.untrustedSource) {
      // Said once, at the start of the run: a fork's pull request pushes nothing.
    } else if (spec.isPushEnabled) {
      for (const image of spec.imageNames)
        outputImages.push(await this.push(image, job.abort.signal, log, workDir, job.authFile));
    } else {
      log.line(
        spec.imageNames.length
          ? 'Push is disabled: the images were built and not pushed'
          : 'No image names were given: the image was built and not pushed',
      );
    }
    return { outputImages, baseImageDependencies };
  }

  private async push(
    image: string,
    signal: AbortSignal,
    log: LogSink,
    workDir: string,
    authFile: string | undefined,
  ): Promise<OutputImage> {
    // A file of its own: parallel push steps of one run share the work folder.
    const digestFile = join(workDir, `digest-${randomUUID()}`);
    const tls = this.isInsecure(image) ? ['--tls-verify=false'] : [];
    const args = this.buildah(['push', ...tls, '--digestfile', digestFile, image, `docker://${image}`]);
    // A transient registry error should not fail the run: three attempts, as acb does.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.step('buildah', args, signal, log, `the push of ${image}`, undefined, {}, authFile);
        break;
      } catch (err) {
        if (attempt >= 3 || signal.aborted) throw err;
        log.line(`Push attempt ${attempt} failed; retrying`);
      }
    }
    const digest = (await readFile(digestFile, 'utf8')).trim();
    await rm(digestFile, { force: true });
    const ref = parseImageReference(image);
    log.line(`Pushed ${image}, digest: ${digest}`);
    return { registry: ref.registry, repository: ref.repository, tag: ref.tag, digest };
  }
}
