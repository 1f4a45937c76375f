import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { functions } from '../../functions/definitions';
import { azuriteConnectionString, forgetSecretSettings, loadConfig, refitSettings } from '../config';
import { createRefit, setRefit, type Refit } from '../refit';
import { ensureStorage } from '../storage/storage';
import { ensureApiKey, rememberStackKey } from './api-key';
import { LocalHost } from './host';
import { registriesConf, seedBusybox } from './base-images';
import { ensurePrerequisites } from './prerequisites';
import { AZURITE_ACCOUNT, STORAGE_KEY_FILE } from './child-stack';
import { childEnv } from '../process/child-env';
import { processCommandLine, processStartTime } from '../process/process-groups';
import { removeLeftovers } from '../executors/local/leftovers';

/** Ports and folders of a local stack. */
export interface StackOptions {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly registryPort: number;
  readonly azuritePorts: { readonly blob: number; readonly queue: number; readonly table: number };
  readonly apiKey: string | undefined;
  readonly print: (line: string) => void;
}

/** Reads the stack's options from the environment (REFIT_DATA_DIR, REFIT_PORT, REFIT_REGISTRY_PORT, REFIT_AZURITE_PORT). */
export function stackOptionsFromEnv(
  env = process.env,
  print: (line: string) => void = (l) => console.log(l),
): StackOptions {
  const int = (name: string, fallback: number): number => {
    const raw = env[name];
    if (!raw) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      throw new Error(`${name} must be a port number, got '${raw}'`);
    return n;
  };
  const azurite = int('REFIT_AZURITE_PORT', 10000);
  return {
    dataDir: resolve(env.REFIT_DATA_DIR ?? '.refit'),
    host: '127.0.0.1',
    port: int('REFIT_PORT', 7071),
    registryPort: int('REFIT_REGISTRY_PORT', 5000),
    azuritePorts: { blob: azurite, queue: azurite + 1, table: azurite + 2 },
    apiKey: env.REFIT_KEY || undefined,
    print,
  };
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  started: { readonly part: Part; readonly logFile: string },
  timeoutMs = 30000,
): Promise<void> {
  const { part, logFile } = started;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!part.running) throw new Error(`${what} exited with code ${await part.exited}; see ${logFile}`);
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start within ${timeoutMs / 1000}s; see ${logFile}`);
}

/** A process as recorded in the data folder: its pid and start time, which together name one process. */
interface RecordedProcess {
  readonly pid: number;
  readonly startTime: string | undefined;
}

/** The lock: the host's pid and start time, on one line. */
function readLock(file: string): RecordedProcess | undefined {
  try {
    const [pid, startTime] = readFileSync(file, 'utf8').trim().split(' ');
    const n = Number(pid);
    return Number.isInteger(n) && n > 0 ? { pid: n, startTime: startTime || undefined } : undefined;
  } catch {
    return undefined;
  }
}

/** True when the recorded process still runs (the pid was not reused by another since: same start time). */
function isAlive(record: RecordedProcess): boolean {
  const startTime = processStartTime(record.pid);
  return startTime !== undefined && (!record.startTime || startTime === record.startTime);
}

/** Sends `signal` to a process, true when it was there. */
function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/** What a part of the stack runs: compared with what a dead host's part ran before that part is reused. */
interface PartSpec {
  readonly name: 'azurite' | 'registry';
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The files the part reads its settings from, whose content is part of what it runs. */
  readonly files: readonly string[];
}

/** A part's record in the data folder: the process, and a digest of what it runs (secrets are not kept in it). */
const partRecordSchema = z.object({
  pid: z.number().int().positive(),
  startTime: z.string().min(1),
  digest: z.string().min(1),
});

function specDigest(spec: PartSpec): string {
  const hash = createHash('sha256').update(JSON.stringify([spec.command, spec.args, spec.env]));
  for (const file of spec.files) hash.update(readFileSync(file));
  return hash.digest('hex');
}

/** A part of the stack (Azurite, the registry): a process started by this host, or one a dead host left running. */
class Part {
  private ended = false;
  /** Resolves with the exit code (null when unknown or killed) once the process has exited. */
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    private readonly process: RecordedProcess,
    exited: Promise<number | null>,
  ) {
    this.exited = exited.then((code) => {
      this.ended = true;
      return code;
    });
  }

  /** Starts `spec` with its output appended to `logFile`. */
  static spawn(spec: PartSpec, logFile: string): Part {
    const fd = openSync(logFile, 'a');
    const child: ChildProcess = spawn(spec.command, spec.args, {
      stdio: ['ignore', fd, fd],
      env: childEnv(spec.env),
    });
    closeSync(fd);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null)); // not started (e.g. not installed)
    });
    return new Part(spec.name, { pid: child.pid ?? 0, startTime: undefined }, exited);
  }

  /** Takes over a process a dead host started (not our child: its exit is noticed by polling). */
  static adopt(name: string, process: RecordedProcess): Part {
    const exited = new Promise<number | null>((resolve) => {
      const timer = setInterval(() => {
        if (!isAlive(process)) {
          clearInterval(timer);
          resolve(null);
        }
      }, 250);
      timer.unref();
    });
    return new Part(name, process, exited);
  }

  get pid(): number {
    return this.process.pid;
  }

  get running(): boolean {
    return !this.ended;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    // A pid of 0 would signal this host's whole process group.
    if (this.ended || this.pid <= 0 || !signal(this.pid, 'SIGTERM')) return;
    const killer = setTimeout(() => signal(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(killer);
  }
}
function readOrCreate(file: string, make: () => string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = make();
  writeFileSync(file, value + '\n', { mode: 0o600 });
  return value;
}

/** A running local stack: Azurite, the registry, the function host and the executor. */
export class LocalStack {
  private readonly parts: Part[] = [];
  private host: LocalHost | undefined;
  private refit: Refit | undefined;
  private readonly lockFile: string;
  /** Where the pids of Azurite and the registry are kept while they run, for a start after this host was killed. */
  private readonly partsDir: string;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: StackOptions) {
    this.lockFile = join(options.dataDir, 'refit.pid');
    this.partsDir = join(options.dataDir, 'parts');
  }

  /** The API's base URL. */
  get url(): string {
    return `http://${this.options.host}:${this.options.port}`;
  }

  /** The registry's address (host:port). */
  get registry(): string {
    return `${this.options.host}:${this.options.registryPort}`;
  }

  /**
   * Starts a part, or reuses the one a dead host left running when it runs exactly what this start would (same
   * command, arguments, environment and settings files): a kill -9 of the host leaves its children running, and
   * reusing them spares their start-up. Its pid is recorded for the next start.
   */
  private startPart(spec: PartSpec, left: Part | undefined): { part: Part; logFile: string } {
    const logFile = join(this.options.dataDir, 'logs', `${spec.name}.log`);
    const part = left ?? Part.spawn(spec, logFile);
    this.parts.push(part);
    const startTime = processStartTime(part.pid);
    if (startTime) {
      mkdirSync(this.partsDir, { recursive: true });
      writeFileSync(
        join(this.partsDir, `${spec.name}.json`),
        JSON.stringify({ pid: part.pid, startTime, digest: specDigest(spec) }),
      );
    }
    return { part, logFile };
  }

  /** Takes the data folder's lock; true when a host that held it died without stopping (killed, or crashed). */
  private takeLock(): boolean {
    const holder = readLock(this.lockFile);
    if (holder && holder.pid !== process.pid && isAlive(holder)) {
      throw new Error(
        `Refit is already running (pid ${holder.pid}, data in ${this.options.dataDir}) at ${this.url}. Stop it first (Ctrl-C in its terminal, or kill ${holder.pid}).`,
      );
    }
    writeFileSync(this.lockFile, `${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
    return holder !== undefined && holder.pid !== process.pid;
  }

  /**
   * The Azurite and registry a dead host left running (a kill -9 of the host leaves its children alive, holding their
   * ports): each is reused when it runs what this start wants, and stopped otherwise. Only processes that are still
   * the recorded ones (same pid and start time) and whose command line names this data folder are touched: a pid
   * reused by another program is left alone.
   */
  private async takeOverLeftParts(wanted: readonly PartSpec[]): Promise<Map<string, Part>> {
    const { dataDir, print } = this.options;
    const reused = new Map<string, Part>();
    const stopping: Promise<void>[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(this.partsDir);
    } catch {
      // none recorded
    }
    for (const file of names) {
      const path = join(this.partsDir, file);
      let record: z.infer<typeof partRecordSchema> | undefined;
      try {
        record = partRecordSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
      } catch {
        // half-written by a host killed mid-write: nothing to act on
      }
      rmSync(path, { force: true });
      const ours =
        record &&
        isAlive(record) &&
        processCommandLine(record.pid)?.some((a) => a === dataDir || a.startsWith(dataDir + '/'));
      if (!record || !ours) continue;
      const name = file.replace(/\.json$/, '');
      const spec = wanted.find((w) => w.name === name);
      const left = Part.adopt(name, record);
      if (spec && specDigest(spec) === record.digest) {
        print(`Reusing the ${name} (pid ${record.pid}) a previous Refit left running.`);
        reused.set(name, left);
      } else {
        print(`Stopping the ${name} (pid ${record.pid}) a previous Refit left running...`);
        stopping.push(left.stop(3000));
      }
    }
    await Promise.all(stopping);
    return reused;
  }

  /** Checks that the ports of the API and of every part not `reused` are free. */
  private async checkPortsFree(reused: ReadonlyMap<string, Part>): Promise<void> {
    const { host, port, registryPort, azuritePorts } = this.options;
    const ports: [string, number, string][] = [
      ['the API', port, 'api'],
      ['the registry', registryPort, 'registry'],
      ['Azurite (blob)', azuritePorts.blob, 'azurite'],
      ['Azurite (queue)', azuritePorts.queue, 'azurite'],
      ['Azurite (table)', azuritePorts.table, 'azurite'],
    ];
    for (const [what, p, part] of ports) {
      if (reused.has(part)) continue;
      if (await portOpen(host, p))
        throw new Error(
          `port ${p} (${what}) is already in use by another program: free it or choose other ports (REFIT_PORT, REFIT_REGISTRY_PORT, REFIT_AZURITE_PORT)`,
        );
    }
  }

  // The API's key: REFIT_KEY, or one generated on first start and kept in the data folder. Either way it is
  // recorded for this stack's URL in the user's own config folder, where the refit CLI looks for it.
  private apiKey(): string {
    const { dataDir, apiKey, print } = this.options;
    const keyFile = join(dataDir, 'api.key');
    const key = apiKey ?? ensureApiKey(keyFile);
    const userFile = rememberStackKey(this.url, key);
    print(
      apiKey
        ? `API key: REFIT_KEY (recorded for the refit CLI in ${userFile}).`
        : `API key: in ${keyFile} (the refit CLI finds it through ${userFile}; set REFIT_KEY to use your own).`,
    );
    return key;
  }

  /** Starts every part, in order; on failure stops what it started and throws. */
  async start(): Promise<void> {
    const { dataDir, host, print } = this.options;
    mkdirSync(join(dataDir, 'logs'), { recursive: true });
    // The data folder holds the stack's keys, Azurite's files and the registry's notification bearer: its user's only.
    chmodSync(dataDir, 0o700);
    const afterCrash = this.takeLock();
    try {
      ensurePrerequisites(print);
      const apiKey = this.apiKey();
      const secretKey = readOrCreate(join(dataDir, 'secret.key'), () => randomBytes(32).toString('base64'));
      const hookSecret = readOrCreate(join(dataDir, 'registry-webhook.secret'), () =>
        randomBytes(24).toString('hex'),
      );
      const webhookSecretFile = join(dataDir, 'webhook.secret');
      const firstWebhookSecret = !existsSync(webhookSecretFile) && !process.env.REFIT_WEBHOOK_SECRET;
      const webhookSecret =
        process.env.REFIT_WEBHOOK_SECRET ||
        readOrCreate(webhookSecretFile, () => randomBytes(24).toString('hex'));
      if (firstWebhookSecret) {
        // Where, not what: this output is often kept in a log file (the tests' and CI's are).
        print(
          `Generated the git webhook secret (GitHub's "Secret", Azure DevOps' Basic password) in ${webhookSecretFile}; set REFIT_WEBHOOK_SECRET to use your own.`,
        );
      }
      // Azurite's account gets a key of this stack's own instead of the well-known development key, so that another
      // user of this machine cannot read or write the stack's tables and queues (and so queue a run) on loopback.
      const storageKey = readOrCreate(join(dataDir, STORAGE_KEY_FILE), () =>
        randomBytes(64).toString('base64'),
      );

      const { blob, queue, table } = this.options.azuritePorts;
      mkdirSync(join(dataDir, 'azurite'), { recursive: true });
      const azuriteSpec: PartSpec = {
        name: 'azurite',
        command: process.execPath,
        args: [
          require.resolve('azurite/dist/src/azurite.js'),
          '--location',
          join(dataDir, 'azurite'),
          '--skipApiVersionCheck',
          '--disableTelemetry',
          '--loose',
          '--blobHost',
          host,
          '--blobPort',
          String(blob),
          '--queueHost',
          host,
          '--queuePort',
          String(queue),
          '--tableHost',
          host,
          '--tablePort',
          String(table),
        ],
        env: { AZURITE_ACCOUNTS: `${AZURITE_ACCOUNT}:${storageKey}` },
        files: [],
      };

      const registryDir = join(dataDir, 'registry');
      mkdirSync(registryDir, { recursive: true });
      const registryConfig = join(dataDir, 'registry.yml');
      writeFileSync(
        registryConfig,
        [
          'version: 0.1',
          'log: { level: warn, accesslog: { disabled: true } }',
          `storage: { filesystem: { rootdirectory: ${JSON.stringify(registryDir)} }, delete: { enabled: true } }`,
          `http: { addr: "${this.registry}" }`,
          'notifications:',
          '  endpoints:',
          '    - name: refit',
          `      url: ${this.url}/api/hooks/registry`,
          `      headers: { Authorization: ["Bearer ${hookSecret}"] }`,
          '      timeout: 2s',
          '      threshold: 5',
          '      backoff: 1s',
          '      ignore: { actions: [pull] }',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      chmodSync(registryConfig, 0o600); // a file left by an earlier version may be readable by all
      const registrySpec: PartSpec = {
        name: 'registry',
        command: 'docker-registry',
        args: ['serve', registryConfig],
        env: {},
        files: [registryConfig],
      };

      const reused = afterCrash
        ? await this.takeOverLeftParts([azuriteSpec, registrySpec])
        : new Map<string, Part>();
      await this.checkPortsFree(reused);
      const azurite = this.startPart(azuriteSpec, reused.get('azurite'));
      if (!reused.has('azurite')) print(`Starting Azurite on ${host}:${blob}-${table}...`);
      const registry = this.startPart(registrySpec, reused.get('registry'));
      if (!reused.has('registry')) print(`Starting the registry on ${this.registry}...`);

      await waitFor(
        'Azurite',
        async () =>
          (await portOpen(host, blob)) && (await portOpen(host, queue)) && (await portOpen(host, table)),
        azurite,
      );
      await waitFor(
        'the registry',
        () =>
          fetch(`http://${this.registry}/v2/`).then(
            (r) => r.ok,
            () => false,
          ),
        registry,
      );

      const containersConf = join(dataDir, 'registries.conf');
      writeFileSync(
        containersConf,
        registriesConf([this.registry, `localhost:${this.options.registryPort}`]),
      );
      const env: Record<string, string | undefined> = {
        ...refitSettings(),
        REFIT_STORAGE: azuriteConnectionString(host, blob, queue, table, storageKey),
        REFIT_REGISTRY: this.registry,
        REFIT_REGISTRY_ALIASES: `localhost:${this.options.registryPort}`,
        REFIT_SECRET_KEY: secretKey,
        REFIT_REGISTRY_WEBHOOK_SECRET: hookSecret,
        REFIT_WEBHOOK_SECRET: webhookSecret,
        REFIT_WORK_DIR: join(dataDir, 'work'),
        REFIT_CONTAINERS_REGISTRIES_CONF: containersConf,
        // A buildah storage of the stack's own, so that what a crash or a stopped build leaves in it can be removed
        // wholesale without touching another stack's or the user's containers. Unless the user chose a root.
        ...(process.env.REFIT_BUILDAH_STORAGE ||
        /(^|\s)--(run)?root\b/.test(process.env.REFIT_BUILDAH_ARGS ?? '')
          ? {}
          : { REFIT_BUILDAH_STORAGE: join(dataDir, 'buildah') }),
      };
      // The secrets travel in the config object only: never in process.env, where every child and every
      // value-less `--build-arg NAME` of a build could read them. A secret the user set there is taken out too.
      const config = loadConfig(env);
      forgetSecretSettings(process.env);
      const left = await removeLeftovers(config, afterCrash);
      if (left.ended || left.containers || left.workFolders)
        print(
          `Removed what a previous Refit left: ${left.ended} build process group(s), ${left.containers} working container(s), ${left.workFolders} work folder(s).`,
        );
      await seedBusybox(
        this.registry,
        config.buildahGlobalArgs,
        { CONTAINERS_REGISTRIES_CONF: containersConf },
        print,
      );
      this.refit = createRefit(config);
      await ensureStorage(this.refit.storage);
      const orphans = await this.refit.runs.reconcileOrphans();
      if (orphans.failed)
        print(`Marked ${orphans.failed} run(s) a previous Refit stopped in the middle of as Error.`);
      if (orphans.requeued)
        print(`Queued again ${orphans.requeued} run(s) a previous Refit had claimed but not started.`);
      await this.refit.runs.reconcileQueuedSlots();

      this.host = new LocalHost(functions, {
        host,
        port: this.options.port,
        apiKey,
        maxBodyBytes: config.maxBodyBytes,
        allowedOrigins: config.allowedOrigins,
        publicHost: config.publicHost,
        queue: (name) => this.refit!.storage.queue(name),
      });
      this.refit.onEnqueued = () => this.host?.wake();
      setRefit(this.refit);
      await this.host.start();
      for (const part of this.parts) {
        void part.exited.then((code) => {
          if (!this.stopping) {
            print(`The ${part.name} exited unexpectedly (code ${code}); stopping.`);
            void this.stop().then(() => process.exit(1));
          }
        });
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops the host (waiting for handlers), the executor's builds, and every child; removes the lock. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.host?.stop().catch(() => undefined);
      await this.refit?.executor.close().catch(() => undefined);
      await Promise.all(this.parts.map((part) => part.stop()));
      rmSync(this.partsDir, { recursive: true, force: true });
      try {
        if (readLock(this.lockFile)?.pid === process.pid) rmSync(this.lockFile);
      } catch {
        // the lock is gone already
      }
    })();
    return this.stopping;
  }
}
