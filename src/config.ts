import { loadAciSettings, type AciSettings } from './executors/aci/aci-settings';
import { isAbsolute, join } from 'node:path';
import { ConfigError } from './errors';
import { DEFAULT_CREATES_PER_HOUR, DEFAULT_MAX_CORES } from './executors/aci/admission';
import type { NetworkPolicy } from './net/address-policy';
import { isLoopbackRegistry } from './registry/image-reference';

/** Every setting Refit reads, read once from the environment by {@link loadConfig}. */
export interface Config {
  /** Where builds run: `local`, on this machine with buildah, or `aci`, in Azure Container Instances with kaniko. */
  readonly executor: 'local' | 'aci';
  /** The aci executor's settings (REFIT_ACI_*), when it is the executor. */
  readonly aci: AciSettings | undefined;
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
  /**
   * A buildah storage of this deployment's own (REFIT_BUILDAH_STORAGE: `--root` and `--runroot` under it), if any:
   * nothing else uses it, so whatever is left in it after a crash or a stopped build can be removed wholesale.
   */
  readonly buildahStorage: string | undefined;
  /** A containers-registries.conf(5) for buildah (insecure loopback registries, short-name search), if any. */
  readonly containersRegistriesConf: string | undefined;
  /** The largest request body the API reads, in bytes. */
  readonly maxBodyBytes: number;
  /** The most a run's log keeps, in bytes (REFIT_MAX_LOG_BYTES, 64 MiB): past it, one line says how much was dropped. */
  readonly maxLogBytes: number;
  /** Browser origins allowed to call the API (REFIT_ALLOWED_ORIGINS); a request from any other Origin gets 403. */
  readonly allowedOrigins: readonly string[];
  /** A host name the local host answers to besides loopback names (REFIT_PUBLIC_HOST), e.g. behind a proxy. */
  readonly publicHost: string | undefined;
  /** Where Refit's own outbound fetches may go: private ranges only on a local stack or when listed (REFIT_ALLOWED_HOSTS). */
  readonly network: NetworkPolicy;
  /** How much Refit downloads and unpacks from sources, registries and alias files. */
  readonly limits: Limits;
  /** Days a finished run's record and log are kept unless the run is archived (REFIT_RETENTION_DAYS, 30 as in ACR). */
  readonly retentionDays: number;
  /** How registries that send Refit no events are watched for base-image updates. */
  readonly polling: PollingSettings;
  /**
   * The client ID of the deployment's user-assigned managed identity (REFIT_IDENTITY_CLIENT_ID): with it, Refit
   * resolves Key Vault references (Vaultsecret credentials, acb `secrets:`) itself; without it they are refused.
   */
  readonly identityClientId: string | undefined;
  /** What the aci executor may create: ACI's per-region quotas by default. */
  readonly aciAdmission: AciAdmissionSettings;
  /** Which ARM resource the ARM-shaped routes answer as (`/subscriptions/…/registries/{registryName}/…`). */
  readonly arm: ArmSettings;
}

/** The ARM resource this deployment answers as: any subscription and resource group unless they are set. */
export interface ArmSettings {
  /** REFIT_ARM_REGISTRY_NAME: the first label of REFIT_REGISTRY (`myreg.azurecr.io` → `myreg`); `refit` for an IP or localhost. */
  readonly registryName: string;
  /** REFIT_ARM_SUBSCRIPTION_ID: when set, another subscription in the path gets ARM's 404. */
  readonly subscriptionId: string | undefined;
  /** REFIT_ARM_RESOURCE_GROUP: when set, another resource group in the path gets ARM's 404. */
  readonly resourceGroup: string | undefined;
}

/** The ACI quotas that admission control keeps runs within. */
export interface AciAdmissionSettings {
  /** Cores of build container groups in use at once (REFIT_ACI_MAX_CORES, 100: ACI's per-region quota). */
  readonly maxCores: number;
  /** Container-group creates per hour (REFIT_ACI_CREATES_PER_HOUR, 300: ACI's quota; bursts of at most 100). */
  readonly createsPerHour: number;
}

/** The watcher's settings: which registries send events, and how often the others are checked. */
export interface PollingSettings {
  /**
   * Registries that notify Refit themselves (REFIT_EVENT_REGISTRIES), besides the home registry and its aliases:
   * references on them are not watched.
   */
  readonly eventRegistries: readonly string[];
  /** Each reference is checked again after a random delay in [min, max] seconds (REFIT_POLL_INTERVAL_MIN/MAX). */
  readonly intervalMinSeconds: number;
  readonly intervalMaxSeconds: number;
  /**
   * How long a new digest must stand before it is acted on (REFIT_POLL_SETTLE, seconds): a multi-platform index is
   * pushed platform by platform, and acting on a half-pushed one would build from a base that is still changing.
   */
  readonly settleSeconds: number;
}

/** Size limits on what Refit reads from outside, each with its own setting ({@link LIMIT_SETTINGS}). */
export interface Limits {
  /** A source archive, downloaded from a tarball URL or uploaded: compressed bytes. */
  readonly sourceBytes: number;
  /** What a source archive unpacks to: bytes of file content. */
  readonly extractedBytes: number;
  /** What a source archive unpacks to: files, folders and links. */
  readonly extractedEntries: number;
  /** One answer of a registry or of its token service (a manifest, an index, a token). */
  readonly registryResponseBytes: number;
  /** An acb alias file fetched from a URL. */
  readonly aliasBytes: number;
}

/** The setting of each limit, named in the error a limit raises. */
export const LIMIT_SETTINGS: { readonly [K in keyof Limits]: string } = {
  sourceBytes: 'REFIT_MAX_SOURCE_BYTES',
  extractedBytes: 'REFIT_MAX_EXTRACTED_BYTES',
  extractedEntries: 'REFIT_MAX_EXTRACTED_ENTRIES',
  registryResponseBytes: 'REFIT_MAX_REGISTRY_RESPONSE_BYTES',
  aliasBytes: 'REFIT_MAX_ALIAS_BYTES',
};

const MiB = 1024 * 1024;

/** Each limit when its setting is not given: room for real sources; the registry refuses manifests over 4 MiB. */
export const DEFAULT_LIMITS: Limits = {
  sourceBytes: 512 * MiB,
  extractedBytes: 2048 * MiB,
  extractedEntries: 100000,
  registryResponseBytes: 4 * MiB,
  aliasBytes: MiB,
};

function limits(env: Env): Limits {
  const read = (key: keyof Limits): number => positiveInt(env, LIMIT_SETTINGS[key], DEFAULT_LIMITS[key]);
  return {
    sourceBytes: read('sourceBytes'),
    extractedBytes: read('extractedBytes'),
    extractedEntries: read('extractedEntries'),
    registryResponseBytes: read('registryResponseBytes'),
    aliasBytes: read('aliasBytes'),
  };
}

type Env = Record<string, string | undefined>;

const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/**
 * The connection string of an Azurite whose blob, queue and table services listen on the given ports, for its
 * account `devstoreaccount1` with `accountKey` (Azurite's well-known development key unless given).
 */
export function azuriteConnectionString(
  host: string,
  blobPort: number,
  queuePort: number,
  tablePort: number,
  accountKey: string = DEV_KEY,
): string {
  return [
    'DefaultEndpointsProtocol=http',
    'AccountName=devstoreaccount1',
    `AccountKey=${accountKey}`,
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

/** A century: far past any need, and short enough that `now` minus it is always a valid date. */
const MAX_RETENTION_DAYS = 36500;

function retentionDays(env: Env): number {
  const days = positiveInt(env, 'REFIT_RETENTION_DAYS', 30);
  if (days > MAX_RETENTION_DAYS)
    throw new ConfigError(
      `REFIT_RETENTION_DAYS must be at most ${MAX_RETENTION_DAYS} (a century), got '${env.REFIT_RETENTION_DAYS}'`,
      'REFIT_RETENTION_DAYS',
    );
  return days;
}

/** Defaults: 5–10 minutes (a HEAD costs no pull quota; ACR's own polling is 10–60), a 2-minute settle. */
export const DEFAULT_POLLING = { intervalMinSeconds: 300, intervalMaxSeconds: 600, settleSeconds: 120 };

function polling(env: Env, homeRegistries: readonly string[]): PollingSettings {
  const intervalMinSeconds = positiveInt(env, 'REFIT_POLL_INTERVAL_MIN', DEFAULT_POLLING.intervalMinSeconds);
  const intervalMaxSeconds = positiveInt(env, 'REFIT_POLL_INTERVAL_MAX', DEFAULT_POLLING.intervalMaxSeconds);
  if (intervalMinSeconds > intervalMaxSeconds)
    throw new ConfigError(
      `REFIT_POLL_INTERVAL_MIN (${intervalMinSeconds}) must not be greater than REFIT_POLL_INTERVAL_MAX (${intervalMaxSeconds})`,
      'REFIT_POLL_INTERVAL_MIN',
    );
  return {
    eventRegistries: [...new Set([...homeRegistries, ...list(env.REFIT_EVENT_REGISTRIES)])],
    intervalMinSeconds,
    intervalMaxSeconds,
    settleSeconds: positiveInt(env, 'REFIT_POLL_SETTLE', DEFAULT_POLLING.settleSeconds),
  };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function identityClientId(env: Env): string | undefined {
  const raw = env.REFIT_IDENTITY_CLIENT_ID?.trim();
  if (!raw) return undefined;
  if (!GUID.test(raw))
    throw new ConfigError(
      `REFIT_IDENTITY_CLIENT_ID must be a managed identity's client ID (a GUID), got '${raw}'`,
      'REFIT_IDENTITY_CLIENT_ID',
    );
  return raw.toLowerCase();
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

function buildah(env: Env): Pick<Config, 'buildahGlobalArgs' | 'buildahStorage'> {
  const args = env.REFIT_BUILDAH_ARGS
    ? env.REFIT_BUILDAH_ARGS.split(' ').filter(Boolean)
    : ['--storage-driver', 'vfs'];
  const storage = env.REFIT_BUILDAH_STORAGE || undefined;
  if (!storage) return { buildahGlobalArgs: args, buildahStorage: undefined };
  if (!isAbsolute(storage))
    throw new ConfigError(
      `REFIT_BUILDAH_STORAGE must be an absolute path, got '${storage}'`,
      'REFIT_BUILDAH_STORAGE',
    );
  // Two roots would leave it unclear which storage is cleaned: the setting owns buildah's root and runroot.
  const clash = args.find((a) => /^--(root|runroot)(=|$)/.test(a));
  if (clash)
    throw new ConfigError(
      `REFIT_BUILDAH_STORAGE and a ${clash.split('=')[0]} in REFIT_BUILDAH_ARGS cannot be combined`,
      'REFIT_BUILDAH_STORAGE',
    );
  return {
    buildahGlobalArgs: [...args, '--root', join(storage, 'root'), '--runroot', join(storage, 'runroot')],
    buildahStorage: storage,
  };
}

// ACR's rule for registry names: 5 to 50 letters and digits (a shorter one is allowed here for local names).
const ARM_REGISTRY_NAME = /^[a-z0-9]{1,50}$/i;

function arm(env: Env, homeRegistry: string): ArmSettings {
  const set = env.REFIT_ARM_REGISTRY_NAME;
  if (set && !ARM_REGISTRY_NAME.test(set))
    throw new ConfigError(
      `REFIT_ARM_REGISTRY_NAME must be letters and digits (an ACR registry name), got '${set}'`,
      'REFIT_ARM_REGISTRY_NAME',
    );
  const host = homeRegistry.replace(/:\d+$/, '');
  const label = /^[\d.]+$|^\[|^localhost$/i.test(host) ? 'refit' : host.split('.')[0]!;
  return {
    registryName: set || label,
    subscriptionId: env.REFIT_ARM_SUBSCRIPTION_ID || undefined,
    resourceGroup: env.REFIT_ARM_RESOURCE_GROUP || undefined,
  };
}

/** Reads and checks every setting; a missing or malformed one throws a {@link ConfigError} naming it. */
export function loadConfig(env: Env = process.env): Config {
  const executor = env.REFIT_EXECUTOR ?? 'local';
  if (executor !== 'local' && executor !== 'aci') {
    throw new ConfigError(
      `REFIT_EXECUTOR must be 'local' (buildah on this machine) or 'aci' (Azure Container Instances), got '${executor}'`,
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
  const loopback = [...aliases].filter(isLoopbackRegistry);
  const runIdPrefix = env.REFIT_RUN_ID_PREFIX ?? 'aa';
  if (!/^[a-z]{2}$/.test(runIdPrefix)) {
    throw new ConfigError(
      `REFIT_RUN_ID_PREFIX must be two lower-case letters, got '${runIdPrefix}'`,
      'REFIT_RUN_ID_PREFIX',
    );
  }
  return {
    executor,
    aci: executor === 'aci' ? loadAciSettings(env) : undefined,
    storage: storage(env),
    homeRegistry,
    homeRegistryAliases: [...aliases],
    insecureRegistries: [...new Set([...loopback, ...list(env.REFIT_INSECURE_REGISTRIES)])],
    runIdPrefix,
    registryWebhookSecret: env.REFIT_REGISTRY_WEBHOOK_SECRET || undefined,
    webhookSecret: env.REFIT_WEBHOOK_SECRET || undefined,
    secretKey: secretKey(env),
    workDir: env.REFIT_WORK_DIR ?? '/tmp/refit-work',
    localConcurrency: positiveInt(env, 'REFIT_LOCAL_CONCURRENCY', 2),
    ...buildah(env),
    containersRegistriesConf: env.REFIT_CONTAINERS_REGISTRIES_CONF || undefined,
    maxBodyBytes: positiveInt(env, 'REFIT_MAX_BODY_BYTES', 1024 * 1024),
    maxLogBytes: positiveInt(env, 'REFIT_MAX_LOG_BYTES', 64 * 1024 * 1024),
    allowedOrigins: origins(env),
    publicHost: env.REFIT_PUBLIC_HOST || undefined,
    // The local executor's stack lives on loopback; in Azure private ranges are refused (REFIT_ALLOWED_HOSTS opens some).
    network: { privateAllowed: executor === 'local', allowedHosts: list(env.REFIT_ALLOWED_HOSTS) },
    limits: limits(env),
    retentionDays: retentionDays(env),
    polling: polling(env, [...aliases]),
    identityClientId: identityClientId(env),
    aciAdmission: {
      maxCores: positiveInt(env, 'REFIT_ACI_MAX_CORES', DEFAULT_MAX_CORES),
      createsPerHour: positiveInt(env, 'REFIT_ACI_CREATES_PER_HOUR', DEFAULT_CREATES_PER_HOUR),
    },
    arm: arm(env, homeRegistry),
  };
}

/**
 * The settings that hold secrets: the master key, the webhook secrets, the API key and the storage connection
 * strings. Once read into a {@link Config} they are taken out of the environment (see {@link forgetSecretSettings}).
 */
export const SECRET_SETTINGS = [
  'REFIT_SECRET_KEY',
  'REFIT_WEBHOOK_SECRET',
  'REFIT_REGISTRY_WEBHOOK_SECRET',
  'REFIT_KEY',
  'REFIT_STORAGE',
  'AzureWebJobsStorage',
] as const;

/**
 * Deletes the secret settings from `env` (process.env by default). The config object carries them from then on, so
 * nothing that later reads, logs or hands on the environment (a child process, an error report) can see them.
 */
export function forgetSecretSettings(env: Env = process.env): void {
  for (const name of SECRET_SETTINGS) delete env[name];
}

/**
 * The settings Refit reads (REFIT_* and AzureWebJobsStorage*) out of an environment, and nothing else of it: what a
 * configuration is loaded from, and what a stack started as a child is given.
 */
export function refitSettings(env: Env = process.env): Env {
  return Object.fromEntries(
    Object.entries(env).filter(
      ([name]) => name.startsWith('REFIT_') || name.startsWith('AzureWebJobsStorage'),
    ),
  );
}

let cached: Config | undefined;

/**
 * The process's configuration, loaded on first use. In Azure the app settings arrive in process.env: the secret
 * ones are removed from it once loaded, so they live only in the returned object.
 */
export function config(): Config {
  if (!cached) {
    cached = loadConfig();
    forgetSecretSettings();
  }
  return cached;
}
