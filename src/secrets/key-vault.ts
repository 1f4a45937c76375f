// Key Vault references (a task's Vaultsecret credentials, an acb file's `secrets:`) resolved in Refit's own process
// with the deployment's managed identity: a build is given the value, never the identity or its token.
import type { HttpClient } from '@azure/core-rest-pipeline';
import { isRestError } from '@azure/core-rest-pipeline';
import { ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { RefitError, UpstreamUnavailableError, ValidationError } from '../errors';
import { log } from '../log';

/** The DNS suffixes of Key Vault in Azure's public cloud, Azure China and Azure US Government. */
export const KEY_VAULT_DNS_SUFFIXES = [
  'vault.azure.net',
  'vault.azure.cn',
  'vault.usgovcloudapi.net',
] as const;

/** A Key Vault secret URI, taken apart. */
export interface SecretReference {
  /** The URI as Key Vault names the secret (lower-case host, no trailing slash). */
  readonly uri: string;
  /** `https://<vault>.<suffix>`: what a SecretClient is made for. */
  readonly vaultUrl: string;
  readonly vault: string;
  readonly name: string;
  /** A version (32 hex digits); none means the current one. */
  readonly version?: string;
}

// Key Vault's own rules: a vault name is 3-24 letters, digits and single hyphens, starting with a letter and not
// ending with a hyphen; a secret name 1-127 letters, digits and hyphens; a version 32 hex digits.
const VAULT_NAME = /^[a-z](?:[a-z0-9]|-(?!-)){1,22}[a-z0-9]$/;
const SECRET_NAME = /^[0-9A-Za-z-]{1,127}$/;
const VERSION = /^[0-9a-f]{32}$/i;

const FORM = 'https://<vault>.vault.azure.net/secrets/<name>[/<version>]';

/** Checks a Key Vault secret URI strictly; anything else is a {@link ValidationError} naming `field`. */
export function parseSecretUri(given: string, field: string): SecretReference {
  const refuse = (why: string): never => {
    throw new ValidationError(`'${given}' is not a Key Vault secret URI (${FORM}): ${why}`, field);
  };
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    return refuse('it is not a URL');
  }
  if (url.protocol !== 'https:') refuse('Key Vault is reached over https only');
  if (url.username || url.password) refuse('it must not carry credentials');
  if (url.port) refuse('it must not name a port');
  if (url.search || url.hash || given.includes('?') || given.includes('#'))
    refuse('it must not have a query or a fragment');
  const host = url.hostname.toLowerCase();
  const suffix = KEY_VAULT_DNS_SUFFIXES.find((s) => host.endsWith(`.${s}`));
  if (!suffix) refuse(`the host '${host}' is not a vault under ${KEY_VAULT_DNS_SUFFIXES.join(', ')}`);
  const vault = host.slice(0, host.length - suffix!.length - 1);
  if (!VAULT_NAME.test(vault))
    refuse(
      `'${vault}' is not a vault name (3-24 letters, digits and single hyphens, starting with a letter, not ending with a hyphen)`,
    );
  const parts = url.pathname.replace(/\/$/, '').split('/').slice(1);
  if (parts[0] !== 'secrets' || parts.length < 2 || parts.length > 3)
    refuse('the path must be /secrets/<name> or /secrets/<name>/<version>');
  const [, name, version] = parts as [string, string, string | undefined];
  if (!SECRET_NAME.test(name)) refuse(`'${name}' is not a secret name (1-127 letters, digits and hyphens)`);
  if (version !== undefined && !VERSION.test(version))
    refuse(`'${version}' is not a secret version (32 hexadecimal digits)`);
  const vaultUrl = `https://${host}`;
  return {
    uri: `${vaultUrl}/secrets/${name}${version ? `/${version}` : ''}`,
    vaultUrl,
    vault,
    name,
    ...(version ? { version } : {}),
  };
}

/** A Key Vault reference that cannot be resolved as given (no such secret, no permission): 400 naming the field. */
export class KeyVaultSecretError extends RefitError {
  constructor(message: string, target?: string) {
    super('KeyVaultReferenceFailed', message, 400, target);
  }
}

/** What a {@link KeyVaultSecrets} needs: the deployment's identity, and (in tests) the transport and credentials. */
export interface KeyVaultOptions {
  /** The client ID of the deployment's user-assigned managed identity (REFIT_IDENTITY_CLIENT_ID). */
  readonly clientId: string;
  /** The credential of a user-assigned identity, by client ID (default: a ManagedIdentityCredential). */
  readonly credential?: (clientId: string) => TokenCredential;
  /** The transport of every Key Vault request (a test's fake; default: the SDK's own). */
  readonly httpClient?: HttpClient;
  /** How long a resolved value is reused, in milliseconds (default one minute: a rotation is seen soon). */
  readonly cacheMs?: number;
  /** Retries of a throttled or failing request (the SDK's policy; default 3). */
  readonly maxRetries?: number;
  readonly now?: () => number;
}

/** What resolving one reference needs besides its URI. */
export interface ResolveOptions {
  /** Another user-assigned identity to read the secret with (acb's `clientID`); default the deployment's. */
  readonly clientId?: string;
  /** The field that gave the URI, named in every error. */
  readonly field: string;
}

/** Anything that resolves Key Vault secret URIs to their values (a {@link KeyVaultSecrets}). */
export interface SecretResolver {
  resolve(uri: string, options: ResolveOptions): Promise<string>;
}

const DEFAULT_CACHE_MS = 60_000;
const MAX_CACHED = 1000;
const MAX_SHOWN = 300;

/** Resolves Key Vault secret URIs with a managed identity, each value kept for a short time. */
export class KeyVaultSecrets implements SecretResolver {
  private readonly clients = new Map<string, SecretClient>();
  private readonly credentials = new Map<string, TokenCredential>();
  private readonly cache = new Map<string, { readonly expires: number; readonly value: Promise<string> }>();

  constructor(private readonly options: KeyVaultOptions) {}

  /** The value of the secret `uri` names (its current version unless the URI gives one). */
  async resolve(uri: string, options: ResolveOptions): Promise<string> {
    const ref = parseSecretUri(uri, options.field);
    const clientId = (options.clientId ?? this.options.clientId).toLowerCase();
    const now = (this.options.now ?? Date.now)();
    const key = `${clientId} ${ref.uri}`;
    const cached = this.cache.get(key);
    if (cached && cached.expires > now) return await cached.value;
    const value = this.fetch(ref, clientId, options.field);
    this.cache.delete(key);
    this.cache.set(key, { expires: now + (this.options.cacheMs ?? DEFAULT_CACHE_MS), value });
    // A failure is not kept: the next run asks again (the permission may have been granted meanwhile).
    value.catch(() => {
      if (this.cache.get(key)?.value === value) this.cache.delete(key);
    });
    while (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    return await value;
  }

  private client(vaultUrl: string, clientId: string): SecretClient {
    const key = `${clientId} ${vaultUrl}`;
    let client = this.clients.get(key);
    if (!client) {
      let credential = this.credentials.get(clientId);
      if (!credential) {
        credential = this.options.credential?.(clientId) ?? new ManagedIdentityCredential({ clientId });
        this.credentials.set(clientId, credential);
      }
      client = new SecretClient(vaultUrl, credential, {
        ...(this.options.httpClient ? { httpClient: this.options.httpClient } : {}),
        retryOptions: { maxRetries: this.options.maxRetries ?? 3 },
        // Refit's own logs name the secret; the SDK's would hold request details only.
        userAgentOptions: { userAgentPrefix: 'refit' },
      });
      this.clients.set(key, client);
    }
    return client;
  }

  private async fetch(ref: SecretReference, clientId: string, field: string): Promise<string> {
    const which = `secret '${ref.name}'${ref.version ? ` (version ${ref.version})` : ''} of vault '${ref.vault}'`;
    let secret;
    try {
      secret = await this.client(ref.vaultUrl, clientId).getSecret(ref.name, {
        ...(ref.version ? { version: ref.version } : {}),
      });
    } catch (err) {
      throw describe(err, which, clientId, field);
    }
    if (secret.value === undefined)
      throw new KeyVaultSecretError(`Key Vault returned no value for the ${which}`, field);
    log.info('key vault secret resolved', { vault: ref.vault, secret: ref.name, clientId });
    return secret.value;
  }
}

/** Key Vault's own words about a refusal, shortened (they name the identity and the vault, never a value). */
function said(err: Error & { code?: string }): string {
  const text = err.message.split('\n')[0]!.slice(0, MAX_SHOWN);
  return err.code ? `${err.code}: ${text}` : text;
}

function describe(err: unknown, which: string, clientId: string, field: string): RefitError {
  if (isRestError(err)) {
    const status = err.statusCode;
    if (status === 403)
      return new KeyVaultSecretError(
        `Key Vault refused the ${which}: the managed identity '${clientId}' lacks the get permission on secrets of that vault (grant it the 'Key Vault Secrets User' role or a secret get access policy), or the secret is disabled (${said(err)})`,
        field,
      );
    if (status === 404) return new KeyVaultSecretError(`Key Vault has no ${which} (${said(err)})`, field);
    if (status === 401)
      return new KeyVaultSecretError(
        `Key Vault did not accept the token of the managed identity '${clientId}' for the ${which} (${said(err)})`,
        field,
      );
    if (status === 429 || (status !== undefined && status >= 500) || status === undefined) {
      const retryAfter = Number(err.response?.headers.get('retry-after'));
      return new UpstreamUnavailableError(
        `Key Vault did not answer for the ${which}${status ? ` (${status})` : ''}: ${said(err)}`,
        field,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
      );
    }
    return new KeyVaultSecretError(`Key Vault answered ${status} for the ${which} (${said(err)})`, field);
  }
  const e = err as Error;
  // The identity endpoint or Entra ID refused or did not answer: the deployment's identity, not the reference.
  return new UpstreamUnavailableError(
    `the managed identity '${clientId}' could not get a token for Key Vault to read the ${which}: ${(e?.message ?? String(err)).split('\n')[0]!.slice(0, MAX_SHOWN)}`,
    field,
  );
}
