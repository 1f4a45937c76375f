import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { functions } from '../../functions/definitions';
import { azuriteConnectionString, forgetSecretSettings, loadConfig, refitSettings } from '../config';
import { createRefit, setRefit, type Refit } from '../refit';
import { ensureStorage } from '../storage/storage';
import { ensureApiKey, rememberStackKey } from './api-key';
import { LocalHost } from './host';
import { registriesConf, seedBusybox } from './base-images';
import { ensurePrerequisites } from './prerequisites';
import { azuriteArgs } from './azurite-args';
import { AZURITE_ACCOUNT, STORAGE_KEY_FILE } from './child-stack';
import {
  isAlive,
  Part,
  readLock,
  recordPart,
  takeOverLeftParts,
  writeLock,
  type PartSpec,
} from './stack-parts';
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

  /** Starts a part (or takes over the one a dead host left: `left`), recorded for the next start. */
  private startPart(spec: PartSpec, left: Part | undefined): { part: Part; logFile: string } {
    const logFile = join(this.options.dataDir, 'logs', `${spec.name}.log`);
    const part = left ?? Part.spawn(spec, logFile);
    this.parts.push(part);
    recordPart(this.partsDir, spec, part);
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
    writeLock(this.lockFile);
    return holder !== undefined && holder.pid !== process.pid;
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
        args: azuriteArgs(join(dataDir, 'azurite'), host, { blob, queue, table }),
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
        ? await takeOverLeftParts(this.partsDir, dataDir, [azuriteSpec, registrySpec], print)
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
      const orphans = await this.refit.runs.reconcile({ startup: true });
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
