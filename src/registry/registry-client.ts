import { UpstreamUnavailableError } from '../errors';
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

/** Talks to OCI registries (Docker Registry HTTP API v2): anonymous bearer tokens, plain HTTP for insecure ones. */
export class RegistryClient {
  private readonly tokens = new Map<string, string>();

  constructor(private readonly insecure: readonly string[]) {}

  private base(registry: string): string {
    const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    return `${this.insecure.includes(registry) ? 'http' : 'https'}://${host}`;
  }

  private async get(ref: ImageReference, reference: string): Promise<Response | null> {
    const url = `${this.base(ref.registry)}/v2/${ref.repository}/manifests/${reference}`;
    const scopeKey = `${ref.registry}/${ref.repository}`;
    const headers = (): Record<string, string> => {
      const token = this.tokens.get(scopeKey);
      return { accept: ACCEPT, ...(token ? { authorization: `Bearer ${token}` } : {}) };
    };
    let res: Response;
    try {
      res = await fetch(url, { headers: headers(), signal: AbortSignal.timeout(15000) });
      if (res.status === 401) {
        const token = await this.anonymousToken(res.headers.get('www-authenticate'));
        if (!token) return null;
        this.tokens.set(scopeKey, token);
        res = await fetch(url, { headers: headers(), signal: AbortSignal.timeout(15000) });
      }
    } catch (err) {
      throw new UpstreamUnavailableError(
        `${ref.registry} could not be reached: ${(err as Error).message}`,
        ref.registry,
      );
    }
    if (res.status === 429 || res.status >= 500) {
      throw new UpstreamUnavailableError(
        `${ref.registry} answered ${res.status}${res.headers.get('retry-after') ? ` (retry after ${res.headers.get('retry-after')})` : ''}`,
        ref.registry,
      );
    }
    return res.ok ? res : null;
  }

  // The anonymous token flow of the distribution spec: WWW-Authenticate: Bearer realm=…,service=…,scope=…
  private async anonymousToken(challenge: string | null): Promise<string | null> {
    if (!challenge || !/^Bearer /i.test(challenge)) return null;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (!params.realm) return null;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    if (params.scope) url.searchParams.set('scope', params.scope);
    const res = await fetch(url, { signal: AbortSignal.timeout(15000) });
    if (!res.ok) return null;
    const body = (await res.json()) as { token?: string; access_token?: string };
    return body.token ?? body.access_token ?? null;
  }

  /** The digests behind a reference for a platform, or null when the registry has no such image (or refuses us). */
  async resolve(ref: ImageReference, platform: Platform): Promise<ResolvedDigests | null> {
    const res = await this.get(ref, ref.digest ?? ref.tag ?? 'latest');
    if (!res) return null;
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const text = await res.text();
    const digest = res.headers.get('docker-content-digest') ?? ref.digest;
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
