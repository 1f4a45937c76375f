import { z } from 'zod';
import type { ImagePush } from './image-update';

// Permissive schemas (third-party payloads): only the fields read, unknown ones ignored, and a field of the wrong
// type counts as absent, so a malformed event is ignored instead of crashing the decision with a non-string.
const text = z.string().optional().catch(undefined);
/** Epoch seconds that make a valid date (a larger number is a RangeError in toISOString). */
const epochSeconds = z.number().min(0).max(253402300799).optional().catch(undefined);

// The distribution spec's grammar (reference.go): a push whose names do not fit it names no image Refit could
// build from, so it is ignored rather than queued (a name of megabytes would also not fit in a queue message).
const REGISTRY =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const MAX_NAME = 255;
const MAX_EVENT_ID = 512;

/** Whether a push names a well-formed image (registry, repository, tag, digest when known) and a bounded event ID. */
function wellFormed(push: ImagePush): boolean {
  return (
    push.registry.length <= MAX_NAME &&
    REGISTRY.test(push.registry) &&
    push.repository.length <= MAX_NAME &&
    REPOSITORY.test(push.repository) &&
    TAG.test(push.tag) &&
    (push.digest === '' || (push.digest.length <= 256 && DIGEST.test(push.digest))) &&
    push.eventId.length <= MAX_EVENT_ID
  );
}

const MANIFEST_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
]);

const registryEventSchema = z.object({
  id: text,
  timestamp: text,
  action: text,
  target: z
    .object({ mediaType: text, digest: text, repository: text, tag: text })
    .optional()
    .catch(undefined),
  request: z.object({ host: text }).optional().catch(undefined),
});

/** The fields Refit reads of a distribution (or ACR) registry event; everything else is ignored. */
export type RegistryEventData = z.output<typeof registryEventSchema>;

/** A push of a tagged manifest or index, or null for anything else (pulls, deletes, blobs, untagged pushes). */
export function imagePushOf(
  raw: unknown,
  source: string,
  fallbackRegistry: string | undefined,
): ImagePush | null {
  const parsed = registryEventSchema.safeParse(raw);
  if (!parsed.success) return null;
  const event = parsed.data;
  const t = event.target;
  if (event.action !== 'push' || !t?.tag || !t.digest || !t.repository) return null;
  if (t.mediaType && !MANIFEST_TYPES.has(t.mediaType)) return null;
  const registry = event.request?.host || fallbackRegistry;
  if (!registry) return null;
  const push: ImagePush = {
    source,
    eventId: event.id || `${t.repository}:${t.tag}@${t.digest}`,
    registry,
    repository: t.repository,
    tag: t.tag,
    digest: t.digest,
    timestamp: event.timestamp ?? new Date().toISOString(),
  };
  return wellFormed(push) ? push : null;
}

/** The manifest pushes in a CNCF distribution envelope (v1 or v2 media type; one or many events). */
export function distributionPushes(events: readonly unknown[], fallbackRegistry: string): ImagePush[] {
  return events
    .map((e) => imagePushOf(e, 'distribution', fallbackRegistry))
    .filter((p): p is ImagePush => p !== null);
}

const gridEventSchema = z.object({
  id: text,
  eventType: text,
  type: text,
  topic: text,
  source: text,
  data: z.unknown(),
});

/** An Event Grid or CloudEvents 1.0 event as delivered (the fields Refit reads). */
export type GridEvent = z.output<typeof gridEventSchema>;

/**
 * The push in a `Microsoft.ContainerRegistry.ImagePushed` event, in either schema; `data` may arrive as a JSON
 * string (as ACR has been seen to send it). The registry host comes from `data.request.host`, else from the
 * registry name in the topic or source.
 */
export function imagePushOfGridEvent(raw: unknown): ImagePush | null {
  const parsed = gridEventSchema.safeParse(raw);
  if (!parsed.success) return null;
  const event = parsed.data;
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
  const push = imagePushOf(data, 'eventgrid', name ? `${name.toLowerCase()}.azurecr.io` : undefined);
  const withId = push && { ...push, eventId: event.id ?? push.eventId };
  return withId && wellFormed(withId) ? withId : null;
}

const dockerHubSchema = z.object({
  push_data: z.object({ tag: z.string().min(1), pushed_at: epochSeconds }),
  repository: z.object({ repo_name: z.string().min(1) }),
});

/**
 * A Docker Hub repository webhook: it carries no digest (the decision resolves it from the registry before
 * deciding) and no auth of its own (the secret travels in the URL).
 */
export function dockerHubPush(payload: unknown): ImagePush | null {
  const parsed = dockerHubSchema.safeParse(payload);
  if (!parsed.success) return null;
  const p = parsed.data;
  const repository = p.repository.repo_name;
  const tag = p.push_data.tag;
  const pushedAt = p.push_data.pushed_at;
  const push: ImagePush = {
    source: 'dockerhub',
    eventId: `${repository}:${tag}@${pushedAt ?? Date.now()}`,
    registry: 'docker.io',
    repository: repository.includes('/') ? repository : `library/${repository}`,
    tag,
    digest: '',
    timestamp: pushedAt ? new Date(pushedAt * 1000).toISOString() : new Date().toISOString(),
  };
  return wellFormed(push) ? push : null;
}

const harborDataSchema = z
  .object({
    resources: z
      .array(z.object({ digest: text, tag: text, resource_url: text }).nullable().catch(null))
      .optional()
      .catch(undefined),
    repository: z.object({ repo_full_name: text }).optional().catch(undefined),
  })
  .optional()
  .catch(undefined);
const harborSchema = z.object({
  id: text,
  type: text,
  occur_at: epochSeconds,
  time: text,
  event_data: harborDataSchema,
  data: harborDataSchema,
});

/** Harbor's PUSH_ARTIFACT (Default format) or harbor.artifact.pushed (CloudEvents): one push per tagged resource. */
export function harborPushes(payload: unknown): ImagePush[] | null {
  const parsed = harborSchema.safeParse(payload);
  if (!parsed.success) return null;
  const p = parsed.data;
  if (p.type !== 'PUSH_ARTIFACT' && p.type !== 'harbor.artifact.pushed') return null;
  const data = p.event_data ?? p.data;
  const repository = data?.repository?.repo_full_name;
  if (!repository) return [];
  const timestamp =
    p.time ?? (p.occur_at ? new Date(p.occur_at * 1000).toISOString() : new Date().toISOString());
  return (data.resources ?? []).flatMap((r) => {
    if (!r?.digest || !r.tag || r.tag.startsWith('sha256:') || !r.resource_url) return [];
    const push: ImagePush = {
      source: 'harbor',
      eventId: p.id ?? `${repository}:${r.tag}@${r.digest}`,
      registry: r.resource_url.split('/')[0]!,
      repository,
      tag: r.tag,
      digest: r.digest,
      timestamp,
    };
    return wellFormed(push) ? [push] : [];
  });
}
