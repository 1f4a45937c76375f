// Signing in to an Azure Container Registry with an Entra identity. ACR takes no Entra token directly: a client first
// exchanges it for an ACR refresh token (Azure/acr docs/AAD-OAuth.md, "Calling POST /oauth2/exchange to get an ACR
// refresh token": a form body grant_type=access_token&service=<registry>&access_token=<Entra token>, answered
// {"refresh_token": "..."}), then uses that refresh token as a password with the null GUID as user name ("Authenticating
// docker with an ACR refresh token"), which the registry's normal Bearer challenge and token service accept. This is
// what `az acr login --expose-token` hands to docker; the client's existing token flow does the rest.
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { LIMIT_SETTINGS, type Config } from '../config';
import {
  DestinationRefusedError,
  RefitError,
  ResponseTooLargeError,
  UpstreamUnavailableError,
} from '../errors';
import { log } from '../log';
import type { GuardedFetch, GuardedResponse } from '../net/guarded-fetch';
import type { RegistryCredentials } from './auth';
import { parseRetryAfter, RegistryProtocolError, type DefaultRegistryCredentials } from './client';
import { speaksPlainHttp } from './image-reference';
import { acrErrorsSchema, acrRefreshTokenSchema } from './schemas';

/** The user name that tells ACR the password is an ACR refresh token (the null GUID). */
export const ACR_REFRESH_TOKEN_USERNAME = '00000000-0000-0000-0000-000000000000';
/** The Entra scope of a token ACR exchanges (the audience of every ACR, in the public cloud). */
export const ACR_ENTRA_SCOPE = 'https://containerregistry.azure.net/.default';
/** The DNS suffixes of ACR login servers: Azure's public cloud, Azure China and Azure US Government. */
export const ACR_DNS_SUFFIXES = ['azurecr.io', 'azurecr.cn', 'azurecr.us'] as const;

/** Whether a registry host is an Azure Container Registry login server (`<name>.azurecr.io` and the other clouds'). */
export function isAcrRegistry(registry: string): boolean {
  const host = registry.toLowerCase().replace(/:\d+$/, '');
  return ACR_DNS_SUFFIXES.some((suffix) => host.endsWith(`.${suffix}`));
}

/** ACR refused to exchange the identity's Entra token (401/403, or another refusal): the deployment's identity is at fault. */
export class AcrTokenExchangeError extends RefitError {
  constructor(message: string, registry: string) {
    super('AcrTokenExchangeRefused', message, 502, registry);
  }
}

/** What an {@link AcrTokenExchange} needs. */
export interface AcrTokenExchangeOptions {
  /** The identity whose Entra token is exchanged (the function app's managed identity in Azure). */
  readonly credential: TokenCredential;
  /** How the identity is named in errors (its client ID), when known. */
  readonly identity?: string | undefined;
  readonly http: GuardedFetch;
  /** The most bytes of an answer that are read. */
  readonly maxResponseBytes: number;
  /** Registries reached over plain HTTP (a loopback fake in tests); ACR itself is https only. */
  readonly insecure?: readonly string[];
  /** The Entra tenant sent with the exchange (optional in the documented flow). */
  readonly tenantId?: string | undefined;
  readonly timeoutMs?: number;
  /** The clock (tests); the cache counts on it. */
  readonly now?: () => number;
}

const TIMEOUT_MS = 15000;
// A refresh token is renewed this long before its `exp`, so a build never starts with one about to lapse.
const RENEW_BEFORE_MS = 5 * 60_000;
// When the refresh token's `exp` cannot be read: ACR's are valid for hours, so ten minutes is safely short.
const FALLBACK_LIFETIME_MS = 10 * 60_000;
const MAX_SHOWN = 300;

/** When a refresh token should be renewed: shortly before the `exp` of its JWT payload (read, not verified). */
export function renewalTime(refreshToken: string, now: number): number {
  const exp = jwtExpiry(refreshToken);
  if (exp === undefined || exp <= now) return now + FALLBACK_LIFETIME_MS;
  // A token living less than the margin is kept for half of what is left instead of not at all.
  return exp - RENEW_BEFORE_MS > now ? exp - RENEW_BEFORE_MS : now + (exp - now) / 2;
}

/** The `exp` claim of a JWT in milliseconds since the epoch, or undefined when it is not a JWT or has none. */
function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Exchanges an identity's Entra token for ACR credentials per registry: `{username: null GUID, password: refresh
 * token}`, kept until shortly before the refresh token expires, with one exchange in flight per registry. Every
 * request goes through the guard.
 */
export class AcrTokenExchange {
  private readonly cached = new Map<string, { credentials: RegistryCredentials; renewAt: number }>();
  private readonly inFlight = new Map<string, Promise<RegistryCredentials>>();
  private readonly now: () => number;

  constructor(private readonly options: AcrTokenExchangeOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Credentials for `registry` (its login server, e.g. `myreg.azurecr.io`), exchanged or from the cache. */
  async credentials(registry: string): Promise<RegistryCredentials> {
    const key = registry.toLowerCase();
    const entry = this.cached.get(key);
    if (entry && entry.renewAt > this.now()) return entry.credentials;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.exchange(registry).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return await pending;
  }

  /** Forgets the credentials of a registry (it refused them: revoked, or the identity's roles changed). */
  forget(registry: string): void {
    this.cached.delete(registry.toLowerCase());
  }

  private who(): string {
    return this.options.identity
      ? `the managed identity '${this.options.identity}'`
      : "Refit's Azure identity";
  }

  private async exchange(registry: string): Promise<RegistryCredentials> {
    const entraToken = await this.entraToken(registry);
    const form = new URLSearchParams({ grant_type: 'access_token', service: registry });
    if (this.options.tenantId) form.set('tenant', this.options.tenantId);
    form.set('access_token', entraToken);
    const scheme = speaksPlainHttp(registry, this.options.insecure ?? []) ? 'http' : 'https';
    let res: GuardedResponse;
    try {
      // The Entra token travels in the body only: never in a URL, a log or an error.
      res = await this.options.http.fetch(`${scheme}://${registry}/oauth2/exchange`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        timeoutMs: this.options.timeoutMs ?? TIMEOUT_MS,
        limit: { bytes: this.options.maxResponseBytes, setting: LIMIT_SETTINGS.registryResponseBytes },
      });
    } catch (err) {
      if (err instanceof DestinationRefusedError || err instanceof ResponseTooLargeError) throw err;
      throw new UpstreamUnavailableError(
        `${registry} could not be reached for the token exchange: ${(err as Error).message}`,
        registry,
      );
    }
    if (res.status === 429 || res.status >= 500) {
      await res.discard();
      const retryAfter = parseRetryAfter(res.header('retry-after'), this.now());
      log.warn('acr token exchange unavailable', { registry, status: res.status, retryAfter });
      throw new UpstreamUnavailableError(
        `${registry} answered ${res.status} to the token exchange${retryAfter !== undefined ? ` (retry after ${retryAfter} s)` : ''}`,
        registry,
        retryAfter,
      );
    }
    const text = await res.text();
    if (res.status !== 200) throw this.refused(registry, res.status, text);
    const parsed = acrRefreshTokenSchema.safeParse(parseJson(text));
    if (!parsed.success)
      throw new RegistryProtocolError(
        `${registry} answered the token exchange without a refresh_token`,
        registry,
      );
    const refreshToken = parsed.data.refresh_token;
    const renewAt = renewalTime(refreshToken, this.now());
    const credentials = { username: ACR_REFRESH_TOKEN_USERNAME, password: refreshToken };
    this.cached.set(registry.toLowerCase(), { credentials, renewAt });
    log.info('acr token exchanged', {
      registry,
      identity: this.options.identity,
      renewAt: new Date(renewAt).toISOString(),
    });
    return credentials;
  }

  private async entraToken(registry: string): Promise<string> {
    let token;
    try {
      token = await this.options.credential.getToken(ACR_ENTRA_SCOPE);
    } catch (err) {
      throw new UpstreamUnavailableError(
        `${this.who()} could not get an Entra token to sign in to ${registry}: ${shorten((err as Error)?.message ?? String(err))}`,
        registry,
      );
    }
    if (!token?.token)
      throw new UpstreamUnavailableError(
        `${this.who()} got no Entra token to sign in to ${registry}`,
        registry,
      );
    return token.token;
  }

  private refused(registry: string, status: number, text: string): AcrTokenExchangeError {
    const errors = acrErrorsSchema.safeParse(parseJson(text));
    const first = errors.success ? errors.data.errors[0] : undefined;
    const said = first ? [first.code, first.message].filter(Boolean).join(': ') : text.trim();
    log.warn('acr token exchange refused', { registry, status, identity: this.options.identity });
    const why =
      status === 401 || status === 403
        ? `the identity has no AcrPull on ${registry} (grant it AcrPull to read, AcrDelete to delete), or its Entra token is for another tenant or audience`
        : `is ${registry} an Azure Container Registry?`;
    return new AcrTokenExchangeError(
      `${registry} refused to exchange the Entra token of ${this.who()} (${status}${said ? ` ${shorten(said)}` : ''}): ${why}`,
      registry,
    );
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

// A refusal's own words, first line only and cut short (they name the registry and the identity, never a token).
function shorten(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > MAX_SHOWN ? `${line.slice(0, MAX_SHOWN)}…` : line;
}

/**
 * The home registry's credentials through `exchange` for every name of the home registry, none for other registries
 * (they keep their own, a task's, or anonymous access).
 */
export function homeRegistryCredentials(
  homeAliases: readonly string[],
  exchange: Pick<AcrTokenExchange, 'credentials' | 'forget'>,
): DefaultRegistryCredentials {
  const home = new Set(homeAliases.map((a) => a.toLowerCase()));
  const isHome = (registry: string): boolean => home.has(registry.toLowerCase());
  return {
    credentials: async (registry) => (isHome(registry) ? exchange.credentials(registry) : undefined),
    refused: (registry) => {
      if (isHome(registry)) exchange.forget(registry);
    },
  };
}

/**
 * In Azure (REFIT_EXECUTOR=aci with an ACR as the home registry): the home registry signed in to with Refit's identity
 * (REFIT_IDENTITY_CLIENT_ID's managed identity, else DefaultAzureCredential, or the credential given). Locally, or with
 * another home registry: undefined, and nothing changes (anonymous, or a task's credentials).
 */
export function azureHomeRegistryCredentials(
  config: Pick<Config, 'executor' | 'homeRegistry' | 'homeRegistryAliases' | 'identityClientId' | 'limits'>,
  http: GuardedFetch,
  credential?: TokenCredential,
): DefaultRegistryCredentials | undefined {
  if (config.executor !== 'aci' || !isAcrRegistry(config.homeRegistry)) return undefined;
  const exchange = new AcrTokenExchange({
    credential:
      credential ??
      (config.identityClientId
        ? new ManagedIdentityCredential({ clientId: config.identityClientId })
        : new DefaultAzureCredential()),
    identity: config.identityClientId,
    http,
    maxResponseBytes: config.limits.registryResponseBytes,
  });
  return homeRegistryCredentials(config.homeRegistryAliases, exchange);
}
