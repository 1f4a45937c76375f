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
