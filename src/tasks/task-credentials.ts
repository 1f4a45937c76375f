// A task's registry credentials (ACR's Credentials): checked, split into what is kept with the task (the login
// servers, user names and types) and what is sealed (the passwords), merged for a Tasks_Update, and unsealed for a
// run or a registry lookup. Key Vault secrets (Vaultsecret) are kept as their URIs and resolved by Refit, with the
// deployment's managed identity, only when a run or a lookup needs the login; without REFIT_IDENTITY_CLIENT_ID they
// are refused with a 400. Logging in to a registry with a managed identity itself (ACR's token exchange) is refused.
import { ValidationError } from '../errors';
import type { RegistryCredentials } from '../registry/auth';
import type { RegistryNames } from '../registry/registry-names';
import { parseSecretUri, type SecretResolver } from '../secrets/key-vault';
import type { CredentialsBody } from './credentials-schema';
import type { CustomRegistryLogin, TaskCredentials, TaskSecrets } from './task';
import { openTaskSecrets } from './task-secrets';
import type { StoredTask } from './task-store';

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::\d{1,5})?$/;

/** Checks a login server: a registry's host and port, as an image reference names it (no scheme, no path). */
export function checkLoginServer(server: string, field: string): void {
  const registryLike = server.includes('.') || server.includes(':') || server === 'localhost';
  if (!HOST.test(server) || !registryLike)
    throw new ValidationError(
      `'${server}' is not a registry login server: give its host and port as an image name starts with (e.g. registry.example.com or 127.0.0.1:5002), without a scheme or a path`,
      field,
    );
}

const VAULT_SECRET =
  'a Key Vault secret (type Vaultsecret) is resolved in Azure mode only (REFIT_IDENTITY_CLIENT_ID, the managed identity that reads it, is not set here): give the value itself (type Opaque)';
const IDENTITY =
  'a managed identity is resolved in Azure mode only (REFIT_IDENTITY_CLIENT_ID is not set here): give a userName and a password (type Opaque)';
const IDENTITY_LOGIN =
  "a managed identity here only names who reads the Key Vault secrets of a Vaultsecret userName or password; logging in to a registry with the identity itself (ACR's token exchange) is not supported: give a userName and a password";
const CLIENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** ACR's name of the task's system-assigned identity: in Refit, the deployment's identity plays that part. */
const SYSTEM_IDENTITY = '[system]' as const;

/** What a task keeps of a request's credentials, and the passwords to seal. */
export interface SplitCredentials {
  readonly credentials: TaskCredentials | undefined;
  readonly passwords: Record<string, string>;
}

/**
 * Checks a request's credentials and splits them: user names kept, passwords apart. A user name or password given
 * without a value keeps the one stored for that login server when its type is the same (so a task read and written
 * back keeps its passwords); a login server set to null is left out. `keyVault`: whether this deployment resolves
 * Key Vault references (a Vaultsecret value is then checked as a secret URI and kept as one, never resolved here).
 */
export function splitCredentials(
  given: CredentialsBody | undefined,
  previous: {
    credentials?: TaskCredentials | undefined;
    passwords?: Readonly<Record<string, string>> | undefined;
  },
  names: RegistryNames,
  field = 'properties.credentials',
  keyVault = false,
): SplitCredentials {
  if (!given) return { credentials: undefined, passwords: {} };
  const sourceIdentity = given.sourceRegistry?.identity?.toLowerCase();
  // Refit reaches its home registry with the deployment's own access: what ACR's [system] identity does for a task.
  if (sourceIdentity !== undefined && sourceIdentity !== SYSTEM_IDENTITY)
    throw new ValidationError(
      `'${given.sourceRegistry?.identity}' is not supported: Refit reaches its home registry with this deployment's own access, which stands for ${SYSTEM_IDENTITY}; another identity cannot be used (give ${SYSTEM_IDENTITY} or leave identity out)`,
      `${field}.sourceRegistry.identity`,
    );
  const logins: Record<string, CustomRegistryLogin> = {};
  const passwords: Record<string, string> = {};
  const seen = new Map<string, string>();
  for (const [server, entry] of Object.entries(given.customRegistries ?? {})) {
    if (entry === null) continue;
    const at = `${field}.customRegistries['${server}']`;
    checkLoginServer(server, `${field}.customRegistries`);
    const canonical = names.canonical(server);
    const twin = seen.get(canonical);
    if (twin !== undefined)
      throw new ValidationError(`'${server}' and '${twin}' are the same registry: give it once`, at);
    seen.set(canonical, server);
    if (entry.identity && !keyVault) throw new ValidationError(IDENTITY, `${at}.identity`);
    const before = previous.credentials?.customRegistries[server];
    const userType = entry.userName?.type ?? before?.userName.type ?? 'Opaque';
    const passwordType = entry.password?.type ?? before?.password.type ?? 'Opaque';
    for (const [part, type] of [
      ['userName', userType],
      ['password', passwordType],
    ] as const)
      if (type === 'Vaultsecret' && !keyVault) throw new ValidationError(VAULT_SECRET, `${at}.${part}.type`);
    // A value left out keeps the stored one of the same type only: a password is never read as a secret URI.
    let userName =
      entry.userName?.value || (before?.userName.type === userType ? before.userName.value : undefined);
    let password =
      entry.password?.value ||
      ((before?.password.type ?? 'Opaque') === passwordType ? previous.passwords?.[server] : undefined);
    if (entry.identity) {
      if (userType !== 'Vaultsecret' && passwordType !== 'Vaultsecret')
        throw new ValidationError(IDENTITY_LOGIN, `${at}.identity`);
      if (entry.identity !== SYSTEM_IDENTITY && !CLIENT_ID.test(entry.identity))
        throw new ValidationError(
          `'${entry.identity}' is not an identity: give a user-assigned identity's client ID (a GUID) or ${SYSTEM_IDENTITY} (this deployment's identity)`,
          `${at}.identity`,
        );
    }
    if (userName && userType === 'Vaultsecret')
      userName = parseSecretUri(userName, `${at}.userName.value`).uri;
    if (password && passwordType === 'Vaultsecret')
      password = parseSecretUri(password, `${at}.password.value`).uri;
    if (!userName)
      throw new ValidationError(
        `login server '${server}' needs a userName (and a password)`,
        `${at}.userName`,
      );
    if (!password)
      throw new ValidationError(
        `login server '${server}' needs a password for '${userName}'`,
        `${at}.password`,
      );
    logins[server] = {
      userName: { type: userType, value: userName },
      password: { type: passwordType },
      ...(entry.identity ? { identity: entry.identity.toLowerCase() } : {}),
    };
    passwords[server] = password;
  }
  const loginMode = given.sourceRegistry?.loginMode;
  const sourceRegistry = {
    ...(loginMode ? { loginMode } : {}),
    ...(sourceIdentity ? { identity: SYSTEM_IDENTITY } : {}),
  };
  const credentials: TaskCredentials | undefined =
    loginMode || sourceIdentity || Object.keys(logins).length > 0
      ? { ...(loginMode || sourceIdentity ? { sourceRegistry } : {}), customRegistries: logins }
      : undefined;
  return { credentials, passwords };
}

/**
 * A Tasks_Update's credentials merged into the task's (ARM's merge): a login server given replaces its entry (a
 * value left out is kept), one set to null is removed, the others stay; sourceRegistry merges the same way.
 */
export function mergeCredentials(
  current: TaskCredentials | undefined,
  patch: CredentialsBody | undefined,
): CredentialsBody | undefined {
  const kept: NonNullable<CredentialsBody['customRegistries']> = Object.fromEntries(
    Object.entries(current?.customRegistries ?? {}).map(([server, login]) => [
      server,
      {
        userName: { ...login.userName },
        password: { ...login.password },
        ...(login.identity ? { identity: login.identity } : {}),
      },
    ]),
  );
  if (!patch) return current ? { ...current, customRegistries: kept } : undefined;
  const customRegistries = patch.customRegistries === null ? {} : kept;
  for (const [server, entry] of Object.entries(patch.customRegistries ?? {})) {
    if (entry === null) delete customRegistries[server];
    else customRegistries[server] = { ...customRegistries[server], ...entry };
  }
  const sourceRegistry =
    patch.sourceRegistry === null
      ? undefined
      : { ...current?.sourceRegistry, ...(patch.sourceRegistry ?? {}) };
  return { ...(sourceRegistry ? { sourceRegistry } : {}), customRegistries };
}

/**
 * A task's logins with their passwords, by login server: what its runs are given (sealed with the run). Key Vault
 * references are resolved now, through `keyVault` (errors name the field that holds the reference).
 */
export async function taskLogins(
  credentials: TaskCredentials | undefined,
  secrets: TaskSecrets,
  keyVault: SecretResolver | undefined,
  field = 'properties.credentials',
): Promise<Record<string, RegistryCredentials>> {
  const entries = await Promise.all(
    Object.entries(credentials?.customRegistries ?? {}).map(async ([server, login]) => {
      const password = secrets.registryPasswords?.[server];
      if (!password) return undefined;
      const at = `${field}.customRegistries['${server}']`;
      const clientId = login.identity && login.identity !== SYSTEM_IDENTITY ? login.identity : undefined;
      const value = async (type: 'Opaque' | 'Vaultsecret', given: string, part: string): Promise<string> => {
        if (type === 'Opaque') return given;
        // A task stored while the setting was there, read by a deployment without it.
        if (!keyVault) throw new ValidationError(VAULT_SECRET, `${at}.${part}.type`);
        return keyVault.resolve(given, { field: `${at}.${part}`, ...(clientId ? { clientId } : {}) });
      };
      const [username, resolved] = await Promise.all([
        value(login.userName.type, login.userName.value, 'userName'),
        value(login.password.type, password, 'password'),
      ]);
      return [server, { username, password: resolved }] as const;
    }),
  );
  return Object.fromEntries(entries.filter((e) => e !== undefined));
}

/** The logins a run request gives (DockerBuildRequest, FileTaskRunRequest, EncodedTaskRunRequest), checked. */
export function requestLogins(
  given: CredentialsBody | undefined,
  names: RegistryNames,
): Record<string, RegistryCredentials> {
  // A run request's Key Vault references stay refused: the run service takes its logins as they are given.
  for (const [server, entry] of Object.entries(given?.customRegistries ?? {}))
    for (const part of ['userName', 'password'] as const)
      if (entry?.[part]?.type === 'Vaultsecret')
        throw new ValidationError(
          "a run request's Key Vault secrets (type Vaultsecret) are not resolved, only a task's are: give the value itself (type Opaque), or run a task that holds the credentials",
          `credentials.customRegistries['${server}'].${part}.type`,
        );
  const split = splitCredentials(given, {}, names, 'credentials');
  const logins: Record<string, RegistryCredentials> = {};
  for (const [server, login] of Object.entries(split.credentials?.customRegistries ?? {}))
    logins[server] = { username: login.userName.value, password: split.passwords[server]! };
  return logins;
}

/**
 * The credentials a task has for `registry` (any of its names: matched as the dependency index names registries),
 * unsealed, Key Vault references resolved; undefined when it has none. For every lookup Refit makes on the task's
 * behalf (digests, the watcher).
 */
export async function registryCredentials(
  stored: StoredTask,
  registry: string,
  context: {
    readonly secretKey: Buffer;
    readonly names: RegistryNames;
    readonly keyVault?: SecretResolver | undefined;
  },
): Promise<RegistryCredentials | undefined> {
  const { credentials } = stored.task;
  if (!credentials) return undefined;
  // Only the login for this registry is unsealed and resolved: another's Key Vault secret is not read for nothing.
  const servers = Object.keys(credentials.customRegistries);
  const server = context.names.find(Object.fromEntries(servers.map((s) => [s, s])), registry);
  if (server === undefined) return undefined;
  const logins = await taskLogins(
    { customRegistries: { [server]: credentials.customRegistries[server]! } },
    openTaskSecrets(context.secretKey, stored.sealedSecrets),
    context.keyVault,
  );
  return logins[server];
}
