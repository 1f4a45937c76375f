import { ConfigError } from './errors';
import type { NetworkPolicy } from './net/address-policy';

/** Every setting Refit reads, read once from the environment by {@link loadConfig}. */
export interface Config {
  /** Where builds run: `local`, on this machine with buildah (the only executor so far). */
  readonly executor: 'local';
  /** How the storage account is reached: a connection string, or an account name for identity-based access. */
  readonly storage: { readonly connectionString: string } | { readonly accountName: string };
  /** The registry a name without a registry host is pushed to (`hello:v1` → `<homeRegistry>/hello:v1`). */
  readonly homeRegistry: string;
  /** Every name the home registry answers to (e.g. 127.0.0.1:5000 and localhost:5000). */
  readonly homeRegistryAliases: readonly string[];
  /** Registries reached over plain HTTP (loopback ones by default). */
  readonly insecureRegistries: readonly string[];
  /** Two letters that start every run ID of this deployment. */
  readonly runIdPrefix: string;
  /** When set, every API call must carry it (`x-functions-key` header or `code` query). */
  readonly apiKey: string | undefined;
  /** The secret git-host webhooks are verified with (GitHub's HMAC key; Azure DevOps' Basic password). */
  readonly webhookSecret: string | undefined;
  /** The bearer token the registry's notifications must carry. */
  readonly registryWebhookSecret: string | undefined;
  /** The key that seals secrets at rest (32 bytes, base64). */
  readonly secretKey: Buffer;
  /** Where the local executor keeps its scratch space. */
  readonly workDir: string;
  /** How many builds the local executor runs at once. */
  readonly localConcurrency: number;
  /** Extra arguments for every buildah call (storage driver, root). */
  readonly buildahGlobalArgs: readonly string[];
  /** A containers-registries.conf(5) for buildah (insecure loopback registries, short-name search), if any. */
  readonly containersRegistriesConf: string | undefined;
  /** The largest request body the API reads, in bytes. */
  readonly maxBodyBytes: number;
  /** Browser origins allowed to call the API (REFIT_ALLOWED_ORIGINS); a request from any other Origin gets 403. */
  readonly allowedOrigins: readonly string[];
  /** A host name the local host answers to besides loopback names (REFIT_PUBLIC_HOST), e.g. behind a proxy. */
  readonly publicHost: string | undefined;
  /** Where Refit's own outbound fetches may go: private ranges only on a local stack or when listed (REFIT_ALLOWED_HOSTS). */
  readonly network: NetworkPolicy;
}

type Env = Record<string, string | undefined>;

const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** The connection string of an Azurite whose blob, queue and table services listen on the given ports. */
export function azuriteConnectionString(
  host: string,
  blobPort: number,
  queuePort: number,
  tablePort: number,
): string {
  return [
    'DefaultEndpointsProtocol=http',
    'AccountName=devstoreaccount1',
    `AccountKey=${DEV_KEY}`,
    `BlobEndpoint=http://${host}:${blobPort}/devstoreaccount1`,
    `QueueEndpoint=http://${host}:${queuePort}/devstoreaccount1`,
    `TableEndpoint=http://${host}:${tablePort}/devstoreaccount1`,
  ].join(';');
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new ConfigError(`${name} must be a positive integer, got '${raw}'`, name);
  return n;
}

// Each entry is an origin as browsers send it (scheme://host[:port]); anything else would never match, silently.
function origins(env: Env): string[] {
  return list(env.REFIT_ALLOWED_ORIGINS).map((entry) => {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      // reported below
    }
    if (
      !url ||
      !/^https?:$/.test(url.protocol) ||
      url.pathname !== '/' ||
      url.search ||
      url.hash ||
      url.username
    )
      throw new ConfigError(
        `REFIT_ALLOWED_ORIGINS entries must be origins such as https://app.example.com, got '${entry}'`,
        'REFIT_ALLOWED_ORIGINS',
      );
    return url.origin;
  });
}

function secretKey(env: Env): Buffer {
  const raw = env.REFIT_SECRET_KEY;
  if (!raw)
    throw new ConfigError('REFIT_SECRET_KEY is not set (32 random bytes, base64)', 'REFIT_SECRET_KEY');
  const key = Buffer.from(raw, 'base64');
  if (key.length !== 32)
    throw new ConfigError('REFIT_SECRET_KEY must be 32 bytes, base64-encoded', 'REFIT_SECRET_KEY');
  return key;
}

function storage(env: Env): Config['storage'] {
  const conn = env.REFIT_STORAGE ?? env.AzureWebJobsStorage;
  if (conn) return { connectionString: conn };
  const accountName = env.AzureWebJobsStorage__accountName;
  if (accountName) return { accountName };
  throw new ConfigError(
    'No storage is configured: set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__accountName',
    'AzureWebJobsStorage',
  );
}

/** Reads and checks every setting; a missing or malformed one throws a {@link ConfigError} naming it. */
export function loadConfig(env: Env = process.env): Config {
  const executor = env.REFIT_EXECUTOR ?? 'local';
  if (executor !== 'local') {
    throw new ConfigError(
      `REFIT_EXECUTOR must be 'local' (the only executor in this version), got '${executor}'`,
      'REFIT_EXECUTOR',
    );
  }
  const homeRegistry = env.REFIT_REGISTRY;
  if (!homeRegistry)
    throw new ConfigError(
      'REFIT_REGISTRY is not set (the home registry, e.g. myreg.azurecr.io)',
      'REFIT_REGISTRY',
    );
  const aliases = new Set([homeRegistry, ...list(env.REFIT_REGISTRY_ALIASES)]);
  const loopback = [...aliases].filter((r) => /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(r));
  const runIdPrefix = env.REFIT_RUN_ID_PREFIX ?? 'aa';
  if (!/^[a-z]{2}$/.test(runIdPrefix)) {
    throw new ConfigError(
      `REFIT_RUN_ID_PREFIX must be two lower-case letters, got '${runIdPrefix}'`,
      'REFIT_RUN_ID_PREFIX',
    );
  }
  return {
    executor,
    storage: storage(env),
    homeRegistry,
    homeRegistryAliases: [...aliases],
    insecureRegistries: [...new Set([...loopback, ...list(env.REFIT_INSECURE_REGISTRIES)])],
    runIdPrefix,
    apiKey: env.REFIT_KEY || undefined,
    registryWebhookSecret: env.REFIT_REGISTRY_WEBHOOK_SECRET || undefined,
    webhookSecret: env.REFIT_WEBHOOK_SECRET || undefined,
    secretKey: secretKey(env),
    workDir: env.REFIT_WORK_DIR ?? '/tmp/refit-work',
    localConcurrency: positiveInt(env, 'REFIT_LOCAL_CONCURRENCY', 2),
    buildahGlobalArgs: env.REFIT_BUILDAH_ARGS
      ? env.REFIT_BUILDAH_ARGS.split(' ').filter(Boolean)
      : ['--storage-driver', 'vfs'],
    containersRegistriesConf: env.REFIT_CONTAINERS_REGISTRIES_CONF || undefined,
    maxBodyBytes: positiveInt(env, 'REFIT_MAX_BODY_BYTES', 1024 * 1024),
    allowedOrigins: origins(env),
    publicHost: env.REFIT_PUBLIC_HOST || undefined,
    // The local executor's stack lives on loopback; in Azure (a later executor) private ranges are refused.
    network: { privateAllowed: executor === 'local', allowedHosts: list(env.REFIT_ALLOWED_HOSTS) },
  };
}

let cached: Config | undefined;

/** The process's configuration, loaded on first use. */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}
