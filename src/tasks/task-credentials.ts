// A task's registry credentials (ACR's Credentials): checked, split into what is kept with the task (the login
// servers, user names and types) and what is sealed (the passwords), merged for a Tasks_Update, and unsealed for a
// run or a registry lookup. Key Vault secrets and managed identities exist only in Azure: refused here with a 400.
import { ValidationError } from '../errors';
import type { RegistryCredentials } from '../registry/auth';
import type { RegistryNames } from '../registry/registry-names';
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
  'a Key Vault secret (type Vaultsecret) is resolved in Azure mode only; this deployment runs locally: give the value itself (type Opaque)';
const IDENTITY =
  'a managed identity is resolved in Azure mode only; this deployment runs locally: give a userName and a password (type Opaque)';

/** What a task keeps of a request's credentials, and the passwords to seal. */
export interface SplitCredentials {
  readonly credentials: TaskCredentials | undefined;
  readonly passwords: Record<string, string>;
}

/**
 * Checks a request's credentials and splits them: user names kept, passwords apart. A user name or password given
 * without a value keeps the one stored for that login server (so a task read and written back keeps its passwords);
 * a login server set to null is left out.
 */
export function splitCredentials(
  given: CredentialsBody | undefined,
  previous: {
    credentials?: TaskCredentials | undefined;
    passwords?: Readonly<Record<string, string>> | undefined;
  },
  names: RegistryNames,
  field = 'properties.credentials',
): SplitCredentials {
  if (!given) return { credentials: undefined, passwords: {} };
  if (given.sourceRegistry?.identity) throw new ValidationError(IDENTITY, `${field}.sourceRegistry.identity`);
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
    if (entry.identity) throw new ValidationError(IDENTITY, `${at}.identity`);
    for (const part of ['userName', 'password'] as const)
      if (entry[part]?.type === 'Vaultsecret') throw new ValidationError(VAULT_SECRET, `${at}.${part}.type`);
    const userName = entry.userName?.value || previous.credentials?.customRegistries[server]?.userName.value;
    const password = entry.password?.value || previous.passwords?.[server];
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
    logins[server] = { userName: { type: 'Opaque', value: userName }, password: { type: 'Opaque' } };
    passwords[server] = password;
  }
  const loginMode = given.sourceRegistry?.loginMode;
  const credentials: TaskCredentials | undefined =
    loginMode || Object.keys(logins).length > 0
      ? { ...(loginMode ? { sourceRegistry: { loginMode } } : {}), customRegistries: logins }
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
      { userName: { ...login.userName }, password: { ...login.password } },
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

/** A task's logins with their passwords, by login server: what its runs are given (sealed with the run). */
export function taskLogins(
  credentials: TaskCredentials | undefined,
  secrets: TaskSecrets,
): Record<string, RegistryCredentials> {
  const logins: Record<string, RegistryCredentials> = {};
  for (const [server, login] of Object.entries(credentials?.customRegistries ?? {})) {
    const password = secrets.registryPasswords?.[server];
    if (password) logins[server] = { username: login.userName.value, password };
  }
  return logins;
}

/** The logins a run request gives (DockerBuildRequest, FileTaskRunRequest, EncodedTaskRunRequest), checked. */
export function requestLogins(
  given: CredentialsBody | undefined,
  names: RegistryNames,
): Record<string, RegistryCredentials> {
  const split = splitCredentials(given, {}, names, 'credentials');
  return taskLogins(split.credentials, {
    arguments: {},
    sourceTokens: {},
    registryPasswords: split.passwords,
  });
}

/**
 * The credentials a task has for `registry` (any of its names: matched as the dependency index names registries),
 * unsealed; undefined when it has none. For every lookup Refit makes on the task's behalf (digests, the watcher).
 */
export function registryCredentials(
  stored: StoredTask,
  registry: string,
  context: { readonly secretKey: Buffer; readonly names: RegistryNames },
): RegistryCredentials | undefined {
  const { credentials } = stored.task;
  if (!credentials || Object.keys(credentials.customRegistries).length === 0) return undefined;
  const logins = taskLogins(credentials, openTaskSecrets(context.secretKey, stored.sealedSecrets));
  return context.names.find(logins, registry);
}
