import { LIMIT_SETTINGS } from '../config';
import { DestinationRefusedError, ResponseTooLargeError, UpstreamUnavailableError } from '../errors';
import type { GuardedFetch, GuardedResponse } from '../net/guarded-fetch';
import type { Platform } from '../runs/run';
import type { ImageReference } from './image-reference';

const INDEX_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];
const ACCEPT = [...INDEX_TYPES, ...MANIFEST_TYPES].join(', ');
const TIMEOUT_MS = 15000;

/** The digests an image reference resolves to: its own (an index or a manifest) and the one of a platform. */
export interface ResolvedDigests {
  /** The digest the tag points at: a multi-platform index, or a single manifest. */
  readonly digest: string;
  /** The manifest of the requested platform (equal to `digest` for a single-platform image). */
  readonly platformDigest: string;
}

interface IndexManifest {
  manifests?: { digest: string; platform?: { os?: string; architecture?: string; variant?: string } }[];
}

/**
 * Talks to OCI registries (Docker Registry HTTP API v2): anonymous bearer tokens, plain HTTP for insecure ones. Every
 * request, the token realm's included (a registry names it, and a registry host can come from an unauthenticated
 * event), goes through the guard and is read within `maxResponseBytes`.
 */
export class RegistryClient {
  private readonly tokens = new Map<string, string>();

  constructor(
    private readonly insecure: readonly string[],
    private readonly http: GuardedFetch,
    private readonly maxResponseBytes: number,
  ) {}

  private request(url: string | URL, headers: Record<string, string> = {}): Promise<GuardedResponse> {
    return this.http.fetch(url, {
      headers,
      timeoutMs: TIMEOUT_MS,
      limit: { bytes: this.maxResponseBytes, setting: LIMIT_SETTINGS.registryResponseBytes },
    });
  }

  private base(registry: string): string {
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    return `${this.insecure.includes(registry) ? 'http' : 'https'}://${host}`;
  }

  private async get(ref: ImageReference, reference: string): Promise<GuardedResponse | null> {
    const url = `${this.base(ref.registry)}/v2/${ref.repository}/manifests/${reference}`;
    const scopeKey = `${ref.registry}/${ref.repository}`;
    const headers = (): Record<string, string> => {
      const token = this.tokens.get(scopeKey);
      return { accept: ACCEPT, ...(token ? { authorization: `Bearer ${token}` } : {}) };
    };
    let res: GuardedResponse;
    try {
      res = await this.request(url, headers());
      if (res.status === 401) {
        await res.discard();
        const token = await this.anonymousToken(res.header('www-authenticate'));
        if (!token) return null;
        this.tokens.set(scopeKey, token);
        res = await this.request(url, headers());
      }
    } catch (err) {
      // Refused or oversized is not "unavailable": backing off and retrying would change nothing.
      if (err instanceof DestinationRefusedError || err instanceof ResponseTooLargeError) throw err;
      throw new UpstreamUnavailableError(
        `${ref.registry} could not be reached: ${(err as Error).message}`,
        ref.registry,
      );
    }
    if (res.status === 429 || res.status >= 500) {
      await res.discard();
      const retryAfter = res.header('retry-after');
      throw new UpstreamUnavailableError(
        `${ref.registry} answered ${res.status}${retryAfter ? ` (retry after ${retryAfter})` : ''}`,
        ref.registry,
      );
    }
    if (res.status >= 200 && res.status <= 299) return res;
    await res.discard();
    return null;
  }

  // The anonymous token flow of the distribution spec: WWW-Authenticate: Bearer realm=…,service=…,scope=…
  private async anonymousToken(challenge: string | undefined): Promise<string | null> {
    if (!challenge || !/^Bearer /i.test(challenge)) return null;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (!params.realm) return null;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    if (params.scope) url.searchParams.set('scope', params.scope);
    const res = await this.request(url);
    if (res.status < 200 || res.status > 299) {
      await res.discard();
      return null;
    }
    const body = (await res.json()) as { token?: unknown; access_token?: unknown } | null;
    const token = body?.token ?? body?.access_token;
    return typeof token === 'string' ? token : null;
  }

  /** The digests behind a reference for a platform, or null when the registry has no such image (or refuses us). */
  async resolve(ref: ImageReference, platform: Platform): Promise<ResolvedDigests | null> {
    const res = await this.get(ref, ref.digest ?? ref.tag ?? 'latest');
    if (!res) return null;
    const type = (res.header('content-type') ?? '').split(';')[0]!.trim();
    const text = await res.text();
    const digest = res.header('docker-content-digest') ?? ref.digest;
    if (!digest) return null;
    if (!INDEX_TYPES.includes(type)) return { digest, platformDigest: digest };
    const index = JSON.parse(text) as IndexManifest;
    const os = platform.os.toLowerCase();
    const match =
      index.manifests?.find(
        (m) =>
          m.platform?.os === os &&
          m.platform.architecture === platform.architecture &&
          (!platform.variant || m.platform.variant === platform.variant),
      ) ??
      index.manifests?.find(
        (m) => m.platform?.os === os && m.platform.architecture === platform.architecture,
      );
    return { digest, platformDigest: match?.digest ?? digest };
  }
}
