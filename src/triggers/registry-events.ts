import type { ImagePush } from './image-update';

const MANIFEST_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
]);

/** The fields Refit reads of a distribution (or ACR) registry event; everything else is ignored. */
export interface RegistryEventData {
  id?: string;
  timestamp?: string;
  action?: string;
  target?: { mediaType?: string; digest?: string; repository?: string; tag?: string };
  request?: { host?: string };
}

/** A push of a tagged manifest or index, or null for anything else (pulls, deletes, blobs, untagged pushes). */
export function imagePushOf(
  event: RegistryEventData | undefined,
  source: string,
  fallbackRegistry: string | undefined,
): ImagePush | null {
  const t = event?.target;
  if (event?.action !== 'push' || !t?.tag || !t.digest || !t.repository) return null;
  if (t.mediaType && !MANIFEST_TYPES.has(t.mediaType)) return null;
  const registry = event.request?.host || fallbackRegistry;
  if (!registry) return null;
  return {
    source,
    eventId: event.id || `${t.repository}:${t.tag}@${t.digest}`,
    registry,
    repository: t.repository,
    tag: t.tag,
    digest: t.digest,
    timestamp: event.timestamp ?? new Date().toISOString(),
  };
}

/** The manifest pushes in a CNCF distribution envelope (v1 or v2 media type; one or many events). */
export function distributionPushes(
  events: readonly RegistryEventData[],
  fallbackRegistry: string,
): ImagePush[] {
  return events
    .map((e) => imagePushOf(e, 'distribution', fallbackRegistry))
    .filter((p): p is ImagePush => p !== null);
}

/** An Event Grid or CloudEvents 1.0 event as delivered (the fields Refit reads). */
export interface GridEvent {
  id?: string;
  eventType?: string;
  type?: string;
  topic?: string;
  source?: string;
  data?: unknown;
}

/**
 * The push in a `Microsoft.ContainerRegistry.ImagePushed` event, in either schema; `data` may arrive as a JSON
 * string (as ACR has been seen to send it). The registry host comes from `data.request.host`, else from the
 * registry name in the topic or source.
 */
export function imagePushOfGridEvent(event: GridEvent): ImagePush | null {
  const type = event.eventType ?? event.type;
  if (type !== 'Microsoft.ContainerRegistry.ImagePushed') return null;
  let data = event.data;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data) as unknown;
    } catch {
      return null;
    }
  }
  const topic = event.topic ?? event.source ?? '';
  const name = /\/registries\/([^/]+)/i.exec(topic)?.[1];
  const push = imagePushOf(
    data as RegistryEventData,
    'eventgrid',
    name ? `${name.toLowerCase()}.azurecr.io` : undefined,
  );
  return push && { ...push, eventId: event.id ?? push.eventId };
}

interface DockerHubPayload {
  push_data?: { tag?: string; pushed_at?: number };
  repository?: { repo_name?: string };
}

/**
 * A Docker Hub repository webhook: it carries no digest (the decision resolves it from the registry before
 * deciding) and no auth of its own (the secret travels in the URL).
 */
export function dockerHubPush(payload: unknown): ImagePush | null {
  const p = payload as DockerHubPayload;
  const repository = p?.repository?.repo_name;
  const tag = p?.push_data?.tag;
  if (!repository || !tag) return null;
  const pushedAt = p.push_data?.pushed_at;
  return {
    source: 'dockerhub',
    eventId: `${repository}:${tag}@${pushedAt ?? Date.now()}`,
    registry: 'docker.io',
    repository: repository.includes('/') ? repository : `library/${repository}`,
    tag,
    digest: '',
    timestamp: pushedAt ? new Date(pushedAt * 1000).toISOString() : new Date().toISOString(),
  };
}

interface HarborPayload {
  id?: string;
  type?: string;
  occur_at?: number;
  time?: string;
  event_data?: HarborData;
  data?: HarborData;
}
interface HarborData {
  resources?: { digest?: string; tag?: string; resource_url?: string }[];
  repository?: { repo_full_name?: string };
}

/** Harbor's PUSH_ARTIFACT (Default format) or harbor.artifact.pushed (CloudEvents): one push per tagged resource. */
export function harborPushes(payload: unknown): ImagePush[] | null {
  const p = payload as HarborPayload;
  if (p?.type !== 'PUSH_ARTIFACT' && p?.type !== 'harbor.artifact.pushed') return null;
  const data = p.event_data ?? p.data;
  const repository = data?.repository?.repo_full_name;
  if (!repository) return [];
  const timestamp =
    p.time ?? (p.occur_at ? new Date(p.occur_at * 1000).toISOString() : new Date().toISOString());
  return (data.resources ?? []).flatMap((r) => {
    if (!r.digest || !r.tag || r.tag.startsWith('sha256:') || !r.resource_url) return [];
    const registry = r.resource_url.split('/')[0]!;
    return [
      {
        source: 'harbor',
        eventId: p.id ?? `${repository}:${r.tag}@${r.digest}`,
        registry,
        repository,
        tag: r.tag,
        digest: r.digest,
        timestamp,
      },
    ];
  });
}
