import { createHash } from 'node:crypto';
import { LIMIT_SETTINGS } from '../config';
import {
  DestinationRefusedError,
  RefitError,
  ResponseTooLargeError,
  UpstreamUnavailableError,
} from '../errors';
import { log } from '../log';
import type { GuardedFetch, GuardedResponse } from '../net/guarded-fetch';
import type { Platform } from '../runs/run';
import {
  basicAuthorization,
  credentialIdentity,
  parseWwwAuthenticate,
  TokenCache,
  type AuthChallenge,
  type RegistryCredentials,
} from './auth';
import { DOCKER_HUB, speaksPlainHttp, type ImageReference } from './image-reference';
import {
  imageConfigSchema,
  imageIndexSchema,
  imageManifestSchema,
  INDEX_MEDIA_TYPES,
  MANIFEST_MEDIA_TYPES,
  tokenResponseSchema,
} from './schemas';

// All four, always: a registry answers 404 to an Accept that leaves out the type it holds (watchtower #1533, wud #201).
const ACCEPT = [...INDEX_MEDIA_TYPES, ...MANIFEST_MEDIA_TYPES].join(', ');
const TIMEOUT_MS = 15000;

/** The digests an image reference resolves to: its own (an index or a manifest) and the one of a platform. */
export interface ResolvedDigests {
  /** The digest the tag points at: a multi-platform index, or a single manifest. */
  readonly digest: string;
  /** The manifest of the requested platform (equal to `digest` for a single-platform image). */
  readonly platformDigest: string;
}

/** A registry's pull budget as its last answer stated it (`ratelimit-limit`/`ratelimit-remaining`, Docker Hub). */
export interface RateLimitState {
  readonly limit: number;
  readonly remaining: number;
  /** The window the numbers count over, in seconds (`;w=`). */
  readonly windowSeconds: number | undefined;
  /** When the answer was received (ms since the epoch). */
  readonly seenAt: number;
}

/** Who Refit is on a registry when a call gives no credentials (the home registry's identity in Azure). */
export interface DefaultRegistryCredentials {
  /** The credentials for `registry`, or undefined: anonymous. */
  credentials(registry: string): Promise<RegistryCredentials | undefined>;
  /** The registry refused them (401: revoked, or expired early): the next call gets new ones. */
  refused(registry: string): void;
}

/** What a {@link RegistryClient} needs besides the network. */
export interface RegistryClientOptions {
  /**
   * Who Refit is on a registry when a call names no credentials: in Azure, its identity on the home registry
   * (`azureHomeRegistryCredentials`); none means anonymous.
   */
  readonly defaultCredentials?: DefaultRegistryCredentials;
  /** How long a request may take before the registry counts as unreachable (15 s). */
  readonly timeoutMs?: number;
  /** The clock (tests); token expiry counts on it. */
  readonly now?: () => number;
}

/** A registry's answer that breaks the distribution spec (no digest, an index that is not one): not "unchanged". */
export class RegistryProtocolError extends RefitError {
  constructor(message: string, registry: string) {
    super('RegistryProtocolError', message, 502, registry);
  }
}

/** A registry refused what Refit's credentials (or anonymous access) may not do, e.g. a delete without the permission. */
export class RegistryAccessDeniedError extends RefitError {
  constructor(message: string, registry: string) {
    super('RegistryAccessDenied', message, 502, registry);
  }
}

/** The host to connect to: Docker Hub's registry is not at `docker.io`. */
export function registryHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

/** The repository path as the registry knows it: Docker Hub's single-name repositories live under `library/`. */
export function repositoryPath(ref: ImageReference): string {
  return ref.registry === DOCKER_HUB && !ref.repository.includes('/')
    ? `library/${ref.repository}`
    : ref.repository;
}

/** Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  return Number.isFinite(date) ? Math.max(0, Math.ceil((date - now) / 1000)) : undefined;
}

function parseRateLimit(
  value: string | undefined,
): { count: number; window: number | undefined } | undefined {
  const m = /^\s*(\d+)(?:\s*;\s*w=(\d+))?/.exec(value ?? '');
  return m ? { count: Number(m[1]), window: m[2] ? Number(m[2]) : undefined } : undefined;
}

/**
 * Talks to OCI registries (Docker Registry HTTP API v2) as Renovate's docker datasource does: the challenge of a 401
 * answered with Basic or a Bearer token (anonymous or with the registry's credentials), tokens cached until they expire,
 * 429/5xx thrown as {@link UpstreamUnavailableError}, 401/404 as null. Every request, the token realm's included (a
 * registry names it, and a registry host can come from an unauthenticated event), goes through the guard and is read
 * within `maxResponseBytes`.
 */
export class RegistryClient {
  private readonly tokens: TokenCache;
  // The last challenge per registry, so later requests authenticate up front instead of earning a 401 each time.
  private readonly challenges = new Map<string, AuthChallenge>();
  private readonly rateLimits = new Map<string, RateLimitState>();
  private readonly now: () => number;

  constructor(
    private readonly insecure: readonly string[],
    private readonly http: GuardedFetch,
    private readonly maxResponseBytes: number,
    private readonly options: RegistryClientOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.tokens = new TokenCache(this.now);
  }

  /** The pull budget the registry stated in its last answer that had one, or undefined (no headers: unlimited). */
  rateLimit(registry: string): RateLimitState | undefined {
    return this.rateLimits.get(registry);
  }

  private base(registry: string): string {
    return `${speaksPlainHttp(registry, this.insecure) ? 'http' : 'https'}://${registryHost(registry)}`;
  }

  private async send(
    registry: string,
    url: string | URL,
    method: 'GET' | 'HEAD' | 'DELETE',
    headers: Record<string, string>,
  ): Promise<GuardedResponse> {
    try {
      return await this.http.fetch(url, {
        method,
        headers,
        timeoutMs: this.options.timeoutMs ?? TIMEOUT_MS,
        limit: { bytes: this.maxResponseBytes, setting: LIMIT_SETTINGS.registryResponseBytes },
      });
    } catch (err) {
      // Refused or oversized is not "unavailable": backing off and retrying would change nothing.
      if (err instanceof DestinationRefusedError || err instanceof ResponseTooLargeError) throw err;
      throw new UpstreamUnavailableError(
        `${registry} could not be reached: ${(err as Error).message}`,
        registry,
      );
    }
  }

  private async unavailable(registry: string, res: GuardedResponse, what: string): Promise<never> {
    await res.discard();
    const retryAfter = parseRetryAfter(res.header('retry-after'), this.now());
    log.warn('registry unavailable', { registry, what, status: res.status, retryAfter });
    throw new UpstreamUnavailableError(
      `${registry} answered ${res.status} to ${what}${retryAfter !== undefined ? ` (retry after ${retryAfter} s)` : ''}`,
      registry,
      retryAfter,
    );
  }

  private noteRateLimit(registry: string, res: GuardedResponse): void {
    const limit = parseRateLimit(res.header('ratelimit-limit'));
    const remaining = parseRateLimit(res.header('ratelimit-remaining'));
    if (!limit || !remaining) return;
    this.rateLimits.set(registry, {
      limit: limit.count,
      remaining: remaining.count,
      windowSeconds: remaining.window ?? limit.window,
      seenAt: this.now(),
    });
  }

  /**
   * The Authorization header for a challenge, or null when it cannot be met (no credentials for Basic, a token
   * service that refuses). `fresh` skips the token cache (the registry refused the cached one).
   */
  private async authorization(
    registry: string,
    challenge: AuthChallenge,
    scope: string,
    fresh: boolean,
    credentials: RegistryCredentials | undefined,
  ): Promise<string | null> {
    if (challenge.scheme.toLowerCase() === 'basic')
      return credentials ? basicAuthorization(credentials) : null;
    const realm = challenge.params.realm;
    if (!realm) return null;
    // The challenge's own scope is ignored: Docker Hub's /v2/ challenge has none, and ours names the repository.
    const service = challenge.params.service ?? '';
    const who = credentialIdentity(credentials);
    if (fresh) this.tokens.delete(registry, service, scope, who);
    const cached = this.tokens.get(registry, service, scope, who);
    if (cached) return `Bearer ${cached}`;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryProtocolError(`${registry} names a token realm that is not a URL`, registry);
    }
    if (service) url.searchParams.set('service', service);
    url.searchParams.set('scope', scope);
    const res = await this.send(
      registry,
      url,
      'GET',
      credentials ? { authorization: basicAuthorization(credentials) } : {},
    );
    if (res.status === 429 || res.status >= 500) return this.unavailable(registry, res, 'a token request');
    if (res.status < 200 || res.status > 299) {
      await res.discard();
      log.info('registry token refused', { registry, status: res.status, withCredentials: !!credentials });
      return null;
    }
    const text = await res.text(); // an oversized answer throws here, named as such
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const parsed = tokenResponseSchema.safeParse(body);
    if (!parsed.success)
      throw new RegistryProtocolError(`the token service of ${registry} answered without a token`, registry);
    this.tokens.set(registry, service, scope, who, parsed.data);
    return `Bearer ${parsed.data.token}`;
  }

  /** A manifest request, authenticated as the registry asks; null for 401/403/404 and other refusals. */
  private async manifest(
    ref: ImageReference,
    method: 'GET' | 'HEAD',
    reference: string,
    credentials: RegistryCredentials | undefined,
  ): Promise<GuardedResponse | null> {
    const res = await this.manifestRequest(ref, method, reference, 'pull', credentials);
    if (res.status >= 200 && res.status <= 299) return res;
    log.debug('registry refused a manifest request', {
      registry: ref.registry,
      what: `${method} ${repositoryPath(ref)}:${reference}`,
      status: res.status,
    });
    return null;
  }

  /**
   * A manifest request for `action` on the repository, authenticated as the registry asks (a 401's challenge answered
   * once): the registry's last answer, its body already dropped unless it is a 2xx. 429/5xx throw. Without
   * `credentials`, the client's default ones for the registry, if any.
   */
  private async manifestRequest(
    ref: ImageReference,
    method: 'GET' | 'HEAD' | 'DELETE',
    reference: string,
    action: 'pull' | 'delete',
    given: RegistryCredentials | undefined,
    resource: 'manifests' | 'blobs' = 'manifests',
  ): Promise<GuardedResponse> {
    const defaults = given ? undefined : this.options.defaultCredentials;
    const credentials = given ?? (await defaults?.credentials(ref.registry));
    const res = await this.authenticatedRequest(ref, method, reference, action, credentials, resource);
    // Refused with Refit's own credentials: they are renewed for the next call instead of failing until they expire.
    if (res.status === 401 && defaults && credentials) defaults.refused(ref.registry);
    return res;
  }

  /** {@link manifestRequest} with the credentials chosen. */
  private async authenticatedRequest(
    ref: ImageReference,
    method: 'GET' | 'HEAD' | 'DELETE',
    reference: string,
    action: 'pull' | 'delete',
    credentials: RegistryCredentials | undefined,
    resource: 'manifests' | 'blobs',
  ): Promise<GuardedResponse> {
    const repository = repositoryPath(ref);
    const url = `${this.base(ref.registry)}/v2/${repository}/${resource}/${reference}`;
    const scope = `repository:${repository}:${action}`;
    const what = `${method} ${repository}:${reference}`;
    let challenge = this.challenges.get(ref.registry);
    let auth = challenge
      ? await this.authorization(ref.registry, challenge, scope, false, credentials)
      : null;
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(ref.registry, url, method, {
        accept: ACCEPT,
        ...(auth ? { authorization: auth } : {}),
      });
      this.noteRateLimit(ref.registry, res);
      if (res.status === 429 || res.status >= 500) return this.unavailable(ref.registry, res, what);
      if (res.status >= 200 && res.status <= 299) return res;
      await res.discard();
      if (res.status !== 401 || attempt > 0) return res;
      const header = res.header('www-authenticate');
      if (!header) return res;
      const challenges = parseWwwAuthenticate(header);
      // Bearer first when a registry offers both (Codeberg sends Bearer and Basic in one header).
      challenge =
        challenges.find((c) => c.scheme.toLowerCase() === 'bearer' && c.params.realm) ??
        challenges.find((c) => c.scheme.toLowerCase() === 'basic');
      if (!challenge) return res;
      this.challenges.set(ref.registry, challenge);
      // A 401 to a cached token means it was revoked or expired early: ask for a new one.
      auth = await this.authorization(ref.registry, challenge, scope, auth !== null, credentials);
      if (!auth) return res;
    }
  }

  /**
   * The digest a reference points at now, from a HEAD (which costs no Docker Hub pull), or null when the registry has
   * no such image or refuses us. A 2xx without Docker-Content-Digest throws: it must not read as "unchanged".
   * `credentials` are the caller's for this registry (a task's); none means anonymous.
   */
  async head(ref: ImageReference, credentials?: RegistryCredentials): Promise<string | null> {
    const reference = ref.digest ?? ref.tag ?? 'latest';
    const res = await this.manifest(ref, 'HEAD', reference, credentials);
    if (!res) return null;
    await res.discard();
    const digest = res.header('docker-content-digest');
    if (!digest)
      throw new RegistryProtocolError(
        `${ref.registry} answered the HEAD of ${repositoryPath(ref)}:${reference} without a Docker-Content-Digest`,
        ref.registry,
      );
    return digest;
  }

  /**
   * The index (or single manifest) a reference points at, from ONE GET: its digest and, for a multi-platform index,
   * every platform's manifest digest (attestation entries, `unknown/unknown`, left out). Null when the registry has no
   * such image or refuses us. On Docker Hub this GET counts as a pull: the watcher spends it only when a HEAD said
   * the digest moved.
   */
  async index(ref: ImageReference, credentials?: RegistryCredentials): Promise<ResolvedIndex | null> {
    const res = await this.manifest(ref, 'GET', ref.digest ?? ref.tag ?? 'latest', credentials);
    if (!res) return null;
    const type = (res.header('content-type') ?? '').split(';')[0]!.trim();
    const text = await res.text();
    // Without the header the digest of the bytes is the digest (Renovate's fallback; the GET is already paid for).
    const digest =
      res.header('docker-content-digest') ??
      ref.digest ??
      `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
    if (!(INDEX_MEDIA_TYPES as readonly string[]).includes(type)) return { digest, platforms: [] };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new RegistryProtocolError(`${ref.registry} answered an index that is not JSON`, ref.registry);
    }
    const index = imageIndexSchema.safeParse(body);
    if (!index.success)
      throw new RegistryProtocolError(
        `${ref.registry} answered an index that does not fit the spec: ${index.error.issues[0]?.message ?? ''}`,
        ref.registry,
      );
    const platforms: PlatformManifest[] = [];
    for (const m of index.data.manifests) {
      if (!m.platform || m.platform.os === 'unknown') continue;
      platforms.push({
        os: m.platform.os,
        architecture: m.platform.architecture,
        ...(m.platform.variant ? { variant: m.platform.variant } : {}),
        digest: m.digest,
      });
    }
    return { digest, platforms };
  }

  /** The digests behind a reference for a platform, or null when the registry has no such image (or refuses us). */
  async resolve(
    ref: ImageReference,
    platform: Platform,
    credentials?: RegistryCredentials,
  ): Promise<ResolvedDigests | null> {
    const index = await this.index(ref, credentials);
    return index ? { digest: index.digest, platformDigest: platformDigestOf(index, platform) } : null;
  }

  /**
   * The run configuration of the image a reference names, for a platform (its entrypoint, command and working
   * directory, from the config blob): what a runner that gives a container its own command must know of the image's.
   * Null when the registry has no such image or refuses us.
   */
  async imageConfig(
    ref: ImageReference,
    platform: Platform,
    credentials?: RegistryCredentials,
  ): Promise<ImageRunConfig | null> {
    const index = await this.index(ref, credentials);
    if (!index) return null;
    const digest = platformDigestOf(index, platform);
    // An index without the platform: the image is not there for it (the index itself is no image manifest).
    if (index.platforms.length > 0 && digest === index.digest) return null;
    const res = await this.manifest(ref, 'GET', digest, credentials);
    if (!res) return null;
    const manifest = imageManifestSchema.safeParse(parseJson(await res.text()));
    if (!manifest.success)
      throw new RegistryProtocolError(
        `${ref.registry} answered a manifest of ${repositoryPath(ref)} that does not fit the spec`,
        ref.registry,
      );
    const blob = await this.manifestRequest(
      ref,
      'GET',
      manifest.data.config.digest,
      'pull',
      credentials,
      'blobs',
    );
    if (blob.status < 200 || blob.status > 299) {
      await blob.discard();
      return null;
    }
    const config = imageConfigSchema.safeParse(parseJson(await blob.text()));
    if (!config.success)
      throw new RegistryProtocolError(
        `${ref.registry} answered an image config of ${repositoryPath(ref)} that does not fit the spec`,
        ref.registry,
      );
    const run = config.data.config ?? {};
    return {
      entrypoint: run.Entrypoint ?? undefined,
      cmd: run.Cmd ?? undefined,
      workingDir: run.WorkingDir || undefined,
    };
  }

  /**
   * Deletes the manifest a reference points at (a tag is resolved to its digest first: registries delete by digest
   * only), with the token scope `repository:<repo>:delete`. True when this call deleted it, false when it was already
   * gone (a 404: deleting twice is no error). A registry with deletes disabled (405) throws
   * {@link RegistryProtocolError} saying so; a refusal (401/403) throws {@link RegistryAccessDeniedError}.
   */
  async deleteImage(ref: ImageReference, credentials?: RegistryCredentials): Promise<boolean> {
    const repository = repositoryPath(ref);
    let digest = ref.digest ?? undefined;
    if (!digest) {
      const tag = ref.tag ?? 'latest';
      const head = await this.manifestRequest(ref, 'HEAD', tag, 'pull', credentials);
      await head.discard();
      if (head.status === 404) return false;
      if (head.status < 200 || head.status > 299)
        throw new RegistryAccessDeniedError(
          `${ref.registry} refused to show ${repository}:${tag} (${head.status}) before deleting it`,
          ref.registry,
        );
      digest = head.header('docker-content-digest');
      if (!digest)
        throw new RegistryProtocolError(
          `${ref.registry} answered the HEAD of ${repository}:${tag} without a Docker-Content-Digest`,
          ref.registry,
        );
    }
    const res = await this.manifestRequest(ref, 'DELETE', digest, 'delete', credentials);
    await res.discard();
    if (res.status === 202 || res.status === 200 || res.status === 204) {
      log.info('registry image deleted', { registry: ref.registry, repository, digest });
      return true;
    }
    if (res.status === 404) return false;
    if (res.status === 405)
      throw new RegistryProtocolError(
        `${ref.registry} does not allow deletes (405 to DELETE ${repository}@${digest}): enable them on the registry (the CNCF registry: storage.delete.enabled, REGISTRY_STORAGE_DELETE_ENABLED=true)`,
        ref.registry,
      );
    if (res.status === 401 || res.status === 403)
      throw new RegistryAccessDeniedError(
        `${ref.registry} refused to delete ${repository}@${digest} (${res.status}): the credentials lack the delete permission (on ACR, the AcrDelete role: AcrPush does not include it)`,
        ref.registry,
      );
    throw new RegistryProtocolError(
      `${ref.registry} answered ${res.status} to DELETE ${repository}@${digest}`,
      ref.registry,
    );
  }
}

/** What an image runs when a container gives it no command of its own (OCI image-spec config.md). */
export interface ImageRunConfig {
  readonly entrypoint: readonly string[] | undefined;
  readonly cmd: readonly string[] | undefined;
  readonly workingDir: string | undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One platform's manifest in an index. */
export interface PlatformManifest {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  readonly digest: string;
}

/** What a reference points at: its digest, and each platform's manifest when it is a multi-platform index. */
export interface ResolvedIndex {
  /** The digest the tag points at: a multi-platform index, or a single manifest. */
  readonly digest: string;
  /** Each platform's manifest (empty for a single-platform image). */
  readonly platforms: readonly PlatformManifest[];
}

/**
 * The manifest digest of `platform` in an index: the exact variant when there is one, else the OS and architecture;
 * the index's own digest when it is a single manifest or lists no such platform.
 */
export function platformDigestOf(index: ResolvedIndex, platform: Platform): string {
  const os = platform.os.toLowerCase();
  const match =
    index.platforms.find(
      (m) =>
        m.os === os &&
        m.architecture === platform.architecture &&
        (!platform.variant || m.variant === platform.variant),
    ) ?? index.platforms.find((m) => m.os === os && m.architecture === platform.architecture);
  return match?.digest ?? index.digest;
}
