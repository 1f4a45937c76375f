import { randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { join, posix, resolve, sep } from 'node:path';
import { IMAGE_ALIASES } from '../../acb/aliases';
import { AcbError } from '../../acb/errors';
import { runGraph, type AttemptResult } from '../../acb/runner';
import { parseBuildCommand, display, splitWords } from '../../acb/command-line';
import { loadRunTask } from '../../acb/load-task';
import { stepWorkdir } from '../../acb/step-workdir';
import type { AcbStep, AcbTask } from '../../acb/task-file';
import type { RecordedDependency } from '../../dependencies/dependency-index';
import { isGitSource } from '../../runs/schedule-run';
import type { OutputImage, Platform, Run, RunSecrets } from '../../runs/run';
import type { RunLogWriter } from '../../runs/run-log';
import type { MaskingStream } from '../../runs/secret-masker';
import type { TaskFileSpec } from '../../runs/task-file-run';
import type { SecretResolver } from '../../secrets/key-vault';
import { runProcess } from '../../process/run-process';
import { onCpus } from './cpu-affinity';
import { fetchSource, type SourceAccess } from '../../sources/fetch-source';
import { parseGitSource, sameServer } from '../../sources/git-source';
import { buildArgsOffArgv, stepEnvOffArgv } from './secrets-off-argv';
import { checkBuildFlags } from './build-flags';
import type { BaseScanOptions, BuildBases } from './build-bases';
import { registryFailure } from './registry-failures';

/** Where the shared workspace is mounted in every cmd step, as in acb. */
const WORKSPACE = '/workspace';
/**
 * A build's words with `dockerfile` (resolved inside the source, or a copy of it) as its Dockerfile: the value at
 * `fileIndex`, or a `--file` put first.
 */
function withDockerfile(words: readonly string[], fileIndex: number, dockerfile: string): string[] {
  if (fileIndex < 0) return [`--file=${dockerfile}`, ...words];
  return words.map((w, i) =>
    i !== fileIndex ? w : w.startsWith('--') && w.includes('=') ? `--file=${dockerfile}` : dockerfile,
  );
}

/** The home directory every step shares (acb mounts a `home` volume here and sets HOME). */
const HOME = '/acb/home';
/** Output kept per attempt for retryOnErrors. */
const OUTPUT_KEPT = 64 * 1024;

/** Where a step's lines go (the run's log, or a step's prefixed view of it). */
export interface LogSink {
  line(text: string): void;
  write(chunk: string): void;
}

/** What the multi-step runner needs from the local executor. */
export interface StepTools {
  /** Where sources come from: storage for uploads, the guarded HTTP client, the network policy, the size limits. */
  readonly sources: SourceAccess;
  /** The largest alias file fetched from a URL. */
  readonly maxAliasBytes: number;
  buildah(args: readonly string[]): string[];
  /** Reads the task file's `secrets:` from Key Vault; without it, each is the run's secret value of its ID. */
  readonly keyVault?: SecretResolver | undefined;
  /** The CPUs the run's builds and cmd steps are held to (agentConfiguration.cpu), or undefined for all of them. */
  readonly cpus?: readonly number[] | undefined;
  /** buildah's allow-listed environment, with what one call adds (`own`: secret values kept off its argv). */
  env(own?: Readonly<Record<string, string>>): Record<string, string>;
  isInsecure(image: string): boolean;
  push(image: string, signal: AbortSignal, log: LogSink, workDir: string): Promise<OutputImage>;
  /** Resolves a Dockerfile's base images before its build: what to record, and the arguments that pin the build. */
  bases(dockerfile: string, options: BaseScanOptions, log: LogSink): Promise<BuildBases>;
  /**
   * Whether the registry refuses `image` to this run (no login, or not that image): then a copy another run left in
   * the shared storage must not be used, and buildah asks the registry (and names its refusal).
   */
  refusedToRun(image: string): Promise<boolean>;
}

/** A platform as buildah's `--platform` takes it: `linux/arm64/v8`. */
export function platformName(platform: Platform): string {
  return `${platform.os.toLowerCase()}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
}

/** The platform a build step's own `--platform` names (`linux/arm64/v8`), if it names one. */
function stepPlatform(words: readonly string[]): Platform | undefined {
  let value: string | undefined;
  words.forEach((w, i) => {
    if (w === '--platform') value = words[i + 1];
    else if (w.startsWith('--platform=')) value = w.slice('--platform='.length);
  });
  const [os, architecture, variant] = (value ?? '').split('/');
  if (!os || !architecture) return undefined;
  // The registry compares these as strings: a platform outside Refit's own list is still looked up as named.
  return {
    os: os.toLowerCase() === 'windows' ? 'Windows' : 'Linux',
    architecture,
    ...(variant ? { variant } : {}),
  } as Platform;
}

/** The result of a multi-step run. */
export interface MultiStepResult {
  readonly outputImages: OutputImage[];
  readonly baseImageDependencies: RecordedDependency[];
}

/** What a task asks for that buildah's chroot containers on this machine do not give, said once per step. */
function localNotes(task: AcbTask): string[] {
  const notes: string[] = [];
  for (const step of task.steps) {
    const at = `step ${step.id}`;
    if (step.privileged) notes.push(`${at}: privileged has no effect here (chroot isolation)`);
    if (step.network && step.network !== 'host')
      notes.push(`${at}: network '${step.network}' is not created here; steps share the host's network`);
    if (step.ports.length || step.expose.length)
      notes.push(
        `${at}: ports and expose have no effect here; a listening step is reachable on the host's network`,
      );
    if (step.isolation) notes.push(`${at}: isolation '${step.isolation}' is ignored (chroot isolation)`);
  }
  return notes;
}

/** Writes step output to the run's log one line at a time, each prefixed with the step ID. */
class StepLog {
  private partial = '';
  output = '';
  // Masked before it is cut into prefixed lines, so that a secret split across chunks or lines is still caught.
  private readonly masked: MaskingStream;

  constructor(
    private readonly log: RunLogWriter,
    private readonly prefix: string,
  ) {
    this.masked = log.maskedStream();
  }

  write(chunk: string): void {
    this.output = (this.output + chunk).slice(-OUTPUT_KEPT);
    const lines = (this.partial + this.masked.push(chunk)).split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) this.log.line(`${this.prefix} ${l.replace(/\r$/, '')}`);
  }

  line(text: string): void {
    for (const l of text.split('\n')) this.log.line(`${this.prefix} ${l}`);
  }

  end(): void {
    this.partial += this.masked.end();
    if (this.partial) this.log.line(`${this.prefix} ${this.partial}`);
    this.partial = '';
  }
}

/** Runs an acb task file on this machine: buildah for build and push steps, buildah containers for cmd steps. */
export class MultiStepRun {
  private readonly outputImages: OutputImage[] = [];
  private readonly dependencies: RecordedDependency[] = [];
  private readonly built: string[] = [];
  private readonly made: string[] = [];
  private readonly detached: Promise<unknown>[] = [];
  private readonly detachedStop = new AbortController();
  private containerCount = 0;
  // Container names are unique in a buildah storage: a run ID alone is not (a storage shared by two deployments, or
  // one whose counter started again, holds another run's container of the same name).
  private readonly nonce = randomBytes(3).toString('hex');
  /** The task file's secrets read from Key Vault, once it is loaded: masked in the log and kept off argv. */
  private keyVaultSecrets: readonly string[] = [];
  private workspace = '';
  private home = '';

  constructor(
    private readonly tools: StepTools,
    private readonly run: Run & { readonly spec: TaskFileSpec },
    private readonly secrets: RunSecrets,
    private readonly registry: string,
    private readonly log: RunLogWriter,
    private readonly workDir: string,
    private readonly signal: AbortSignal,
  ) {}

  /** The images the run built (removed from local storage when it ends). */
  builtImages(): string[] {
    return [...new Set(this.built)];
  }

  /** The containers still held (kept or detached steps; removed when the run ends). */
  containers(): string[] {
    return [...this.made];
  }

  /** Every secret value the run knows: masked in the log. */
  static secretValues(secrets: RunSecrets): string[] {
    return Object.values(secrets.values ?? {}).filter(Boolean);
  }

  /** Every secret a step's command line could carry once rendered: kept off buildah's argv. */
  private argvSecrets(): string[] {
    const { values, arguments: args, gitToken } = this.secrets;
    return [
      ...Object.values(values ?? {}),
      ...Object.values(args),
      ...(gitToken ? [gitToken] : []),
      ...this.keyVaultSecrets,
    ].filter(Boolean);
  }

  async execute(): Promise<MultiStepResult> {
    const { spec } = this.run;
    let commit: string | undefined;
    let branch: string | undefined;
    if (spec.sourceLocation) {
      this.log.line('Downloading source code...');
      this.workspace = await fetchSource(
        this.tools.sources,
        { location: spec.sourceLocation, commit: spec.commit, gitToken: this.secrets.gitToken },
        this.workDir,
        this.signal,
        (t) => this.log.line(t),
      );
      if (isGitSource(spec.sourceLocation)) {
        ({ commit, branch } = await this.gitFacts());
        // A checked-out commit leaves HEAD detached: the branch is the one the source names.
        const ref = parseGitSource(spec.sourceLocation).ref;
        if (!branch && ref && !/^[0-9a-f]{7,40}$/i.test(ref)) branch = ref;
      }
    } else {
      this.workspace = join(this.workDir, 'workspace');
      await mkdir(this.workspace, { recursive: true });
    }
    this.home = join(this.workDir, 'home');
    await mkdir(this.home, { recursive: true });

    const task = await this.load(commit, branch);
    for (const w of [...task.warnings, ...localNotes(task)]) this.log.line(`Warning: ${w}`);
    await this.writeVolumes(task);
    this.log.line(
      `The task has ${task.steps.length} step(s): ${task.steps.map((s) => `${s.id} (${s.type})`).join(', ')}`,
    );
    try {
      await runGraph(task, (step, signal) => this.attempt(step, signal), {
        log: (l) => this.log.line(l),
        signal: this.signal,
      });
    } finally {
      this.detachedStop.abort();
      await Promise.allSettled(this.detached);
    }
    return {
      outputImages: this.outputImages,
      baseImageDependencies: this.dependencies,
    };
  }

  private async gitFacts(): Promise<{ commit?: string; branch?: string }> {
    const read = async (args: string[]): Promise<string | undefined> => {
      let out = '';
      const r = await runProcess('git', args, { cwd: this.workspace, onOutput: (c) => (out += c) }).catch(
        () => null,
      );
      return r?.code === 0 ? out.trim() : undefined;
    };
    const commit = await read(['rev-parse', 'HEAD']);
    const branch = await read(['rev-parse', '--abbrev-ref', 'HEAD']);
    return {
      ...(commit ? { commit } : {}),
      ...(branch && branch !== 'HEAD' ? { branch } : {}),
    };
  }

  /**
   * A path the task names on this machine (a build context, a Dockerfile, a task, values or alias file), which must
   * stay in the source, links followed: a build of `/` would send this machine's files to a registry.
   */
  private async insideSource(full: string, what: string, given: string): Promise<string> {
    const real = await realpath(full).catch(() => full);
    const roots = [
      await realpath(this.workspace),
      await realpath(join(this.workDir, 'contexts')).catch(() => ''),
    ];
    if (!roots.some((root) => root && (real === root || real.startsWith(root + sep))))
      throw new AcbError(`${what} '${given}' is outside the source`);
    return real;
  }

  private async readSourceFile(path: string, what: string): Promise<string> {
    const real = await this.insideSource(resolve(this.workspace, path), what, path);
    return readFile(real, 'utf8').catch(() => {
      throw new AcbError(`${what} '${path}' was not found in the source`);
    });
  }

  /** Loads the task file; the secrets it read from Key Vault are masked in the log from here on. */
  private async load(commit: string | undefined, branch: string | undefined): Promise<AcbTask> {
    const task = await loadRunTask({
      run: this.run,
      secrets: this.secrets,
      registry: this.registry,
      sharedVolume: WORKSPACE,
      commit,
      branch,
      readSourceFile: (path, what) => this.readSourceFile(path, what),
      http: this.tools.sources.http,
      maxAliasBytes: this.tools.maxAliasBytes,
      keyVault: this.tools.keyVault,
    });
    this.keyVaultSecrets = Object.values(task.keyVaultSecrets);
    this.log.addSecrets(this.keyVaultSecrets);
    return task;
  }

  /** Secret volumes: each file written (decoded) under the run's folder, mounted read-only by the steps. */
  private async writeVolumes(task: AcbTask): Promise<void> {
    for (const v of task.volumes) {
      const dir = join(this.workDir, 'volumes', v.name);
      await mkdir(dir, { recursive: true });
      for (const [name, content] of Object.entries(v.secret))
        await writeFile(join(dir, name), Buffer.from(content, 'base64'), { mode: 0o600 });
    }
  }

  /** The step's working directory inside its container, or undefined to keep the image's own. */
  private containerWorkdir(step: AcbStep): string | undefined {
    return stepWorkdir(step, WORKSPACE);
  }

  /** The step's working directory on this machine (build steps run here). */
  private hostWorkdir(step: AcbStep): string {
    const inside = this.containerWorkdir(step) ?? WORKSPACE;
    const rel = posix.relative(WORKSPACE, inside);
    if (rel.startsWith('..'))
      throw new AcbError(`workingDirectory '${step.workingDirectory}' is outside ${WORKSPACE}`);
    return resolve(this.workspace, rel);
  }

  private async attempt(step: AcbStep, signal: AbortSignal): Promise<AttemptResult> {
    const out = new StepLog(this.log, `[${step.id}]`);
    try {
      if (step.type === 'build') return await this.build(step, out, signal);
      if (step.type === 'push') return await this.push(step, out, signal);
      return await this.cmd(step, out, signal);
    } finally {
      out.end();
    }
  }

  private async process(
    args: readonly string[],
    out: StepLog,
    signal: AbortSignal,
    options: {
      cwd?: string;
      quiet?: boolean;
      env?: Readonly<Record<string, string>>;
      /** Held to the run's CPUs: a build or a cmd step, whose RUN steps or command do the work. */
      held?: boolean;
    } = {},
  ): Promise<AttemptResult> {
    out.line(`Running command buildah ${display(args)}`);
    let captured = '';
    const held = onCpus(options.held ? this.tools.cpus : undefined, 'buildah', this.tools.buildah(args));
    const result = await runProcess(held.command, held.args, {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: this.tools.env(options.env),
      signal,
      onOutput: (chunk) => {
        if (options.quiet) captured += chunk;
        else out.write(chunk);
      },
    });
    if (options.quiet && result.code !== 0) out.write(captured);
    const reason = result.code !== 0 ? registryFailure(out.output) : undefined;
    return { code: result.code, output: out.output, ...(reason ? { reason } : {}) };
  }

  private async build(step: AcbStep, out: StepLog, signal: AbortSignal): Promise<AttemptResult> {
    // A value-less `--build-arg NAME` is read from buildah's environment: the scan reads the same allow-listed one.
    const command = parseBuildCommand(step.build!, this.tools.env());
    checkBuildFlags(command.flags);
    const cwd = this.hostWorkdir(step);
    let context: string;
    if (isGitSource(command.context) || /^https?:\/\//i.test(command.context)) {
      const dir = join(this.workDir, 'contexts', `${step.id}-${Date.now()}`);
      await mkdir(dir, { recursive: true });
      // The run's git token is for its own source's server: a context elsewhere, named by the task file, gets none,
      // so that a task file cannot send the token to a server of its choosing.
      const ownServer = sameServer(command.context, this.run.spec.sourceLocation);
      context = await fetchSource(
        this.tools.sources,
        { location: command.context, gitToken: ownServer ? this.secrets.gitToken : undefined },
        dir,
        signal,
        (t) => out.line(t),
      );
    } else {
      context = await this.insideSource(resolve(cwd, command.context), 'the build context', command.context);
    }
    const dockerfile = command.file
      ? await this.insideSource(resolve(cwd, command.file), 'the Dockerfile', command.file)
      : join(context, 'Dockerfile');
    if (!(await stat(dockerfile).catch(() => null))?.isFile()) {
      out.line(`the Dockerfile '${command.file ?? 'Dockerfile'}' was not found`);
      return { code: 1, output: 'Dockerfile not found' };
    }
    const words = [...command.words];
    if (command.contextIndex >= 0) words[command.contextIndex] = context;
    else words.push(context);
    const platform = platformName(this.run.platform);
    const hasPlatform = words.some((w) => w === '--platform' || w.startsWith('--platform='));
    const ownPlatform = stepPlatform(words);
    // A build argument that holds a secret goes to buildah's environment, its name alone on the command line.
    const offArgv = buildArgsOffArgv(words, command.buildArgIndices, this.argvSecrets());
    // Resolved before the build and pinned, for the platform the step builds for: recorded is what was built from.
    const bases = await this.tools.bases(
      dockerfile,
      {
        buildArgs: command.buildArgs,
        target: command.target,
        platform: ownPlatform ?? this.run.platform,
        secrets: this.argvSecrets(),
        scratchDir: this.workDir,
      },
      out,
    );
    // A base the registry refused to this run (not one it built) is asked for, not taken from the shared storage.
    const refused = bases.refused.filter((image) => !this.built.includes(image));
    const hasPull = words.some((w) => w === '--pull' || w.startsWith('--pull='));
    const args = [
      'bud',
      '--isolation',
      'chroot',
      ...(hasPlatform ? [] : ['--platform', platform]),
      ...bases.buildContexts,
      ...(refused.length && !hasPull ? ['--pull=always'] : []),
      ...withDockerfile(offArgv.words, command.fileIndex, bases.dockerfile),
    ];
    this.built.push(...command.tags);
    const result = await this.process(args, out, signal, { cwd, env: offArgv.env, held: true });
    if (result.code === 0) {
      for (const d of bases.recorded) {
        if (!this.dependencies.some((x) => JSON.stringify(x) === JSON.stringify(d)))
          this.dependencies.push(d);
      }
    }
    return result;
  }

  private async push(step: AcbStep, out: StepLog, signal: AbortSignal): Promise<AttemptResult> {
    for (const image of step.push!) {
      if (this.run.untrustedSource) {
        out.line(`Not pushed: ${image} (a pull request from a fork pushes nothing)`);
        continue;
      }
      try {
        const pushed = await this.tools.push(image, signal, out, this.workDir);
        this.outputImages.push(pushed);
      } catch (err) {
        // The push's own error (a registry's refusal named in it) is the step's reason.
        out.line((err as Error).message);
        return { code: 1, output: (err as Error).message, reason: (err as Error).message };
      }
    }
    return { code: 0, output: '' };
  }

  private async cmd(step: AcbStep, out: StepLog, signal: AbortSignal): Promise<AttemptResult> {
    const [first, ...args] = splitWords(step.cmd!);
    if (!first) return { code: 1, output: 'the cmd is empty' };
    const image = IMAGE_ALIASES[first] ?? first;
    const name = `refit-${this.run.runId}-${step.id}-${++this.containerCount}-${this.nonce}`
      .toLowerCase()
      .replace(/[^a-z0-9_.-]/g, '-');
    // An image this run built is used as it is; another is taken from the storage only if this run may pull it.
    const pullAlways = step.pull || (!this.built.includes(image) && (await this.tools.refusedToRun(image)));
    const from = await this.process(
      [
        'from',
        '--name',
        name,
        pullAlways ? '--pull=always' : '--pull=missing',
        ...(this.tools.isInsecure(image) ? ['--tls-verify=false'] : []),
        '--quiet',
        image,
      ],
      out,
      signal,
      { quiet: true },
    );
    if (from.code !== 0) return from;
    this.made.push(name);
    try {
      const config = await this.imageConfig(name);
      const entry = step.entryPoint ? splitWords(step.entryPoint) : (config.Entrypoint ?? []);
      const rest = args.length > 0 ? args : step.entryPoint ? [] : (config.Cmd ?? []);
      const command = [...entry, ...rest];
      if (command.length === 0) {
        out.line(`the image ${image} has no entrypoint or command, and the step gives none`);
        return { code: 1, output: '' };
      }
      const workdir = this.containerWorkdir(step);
      // A variable whose value holds a secret is set on the container by name (buildah config reads the value
      // from its environment), so that it is on no command line.
      const stepEnv = stepEnvOffArgv(step.env, this.argvSecrets());
      const secretNames = Object.keys(stepEnv.secret);
      if (secretNames.length > 0) {
        const configured = await this.process(
          ['config', ...secretNames.flatMap((n) => ['--env', n]), name],
          out,
          signal,
          { quiet: true, env: stepEnv.secret },
        );
        if (configured.code !== 0) return configured;
      }
      const mounts = step.volumeMounts.flatMap((m) => [
        '--volume',
        `${join(this.workDir, 'volumes', m.name)}:${m.mountPath}:ro`,
      ]);
      const runArgs = [
        'run',
        '--isolation',
        'chroot',
        '--volume',
        `${this.workspace}:${WORKSPACE}`,
        '--volume',
        `${this.home}:${HOME}`,
        ...mounts,
        ...(workdir ? ['--workingdir', workdir] : []),
        '--env',
        `HOME=${HOME}`,
        ...stepEnv.plain.flatMap((e) => ['--env', e]),
        ...(step.user ? ['--user', step.user] : []),
        name,
        '--',
        ...command,
      ];
      if (step.detach) {
        const stop = AbortSignal.any([signal, this.detachedStop.signal]);
        this.detached.push(this.process(runArgs, out, stop, { held: true }).catch(() => undefined));
        out.line('Started in the background (detach): it is stopped when the run ends');
        return { code: 0, output: '' };
      }
      return await this.process(runArgs, out, signal, { held: true });
    } finally {
      if (!step.keep && !step.detach) {
        await runProcess('buildah', this.tools.buildah(['rm', name]), { env: this.tools.env() }).catch(
          () => undefined,
        );
        this.made.splice(this.made.indexOf(name), 1);
      }
    }
  }

  private async imageConfig(container: string): Promise<{ Entrypoint?: string[]; Cmd?: string[] }> {
    let json = '';
    const r = await runProcess('buildah', this.tools.buildah(['inspect', '--type', 'container', container]), {
      env: this.tools.env(),
      onOutput: (c) => (json += c),
    });
    if (r.code !== 0) return {};
    try {
      const parsed = JSON.parse(json) as { OCIv1?: { config?: { Entrypoint?: string[]; Cmd?: string[] } } };
      return parsed.OCIv1?.config ?? {};
    } catch {
      return {};
    }
  }
}
