import { timingSafeEqual } from 'node:crypto';
import { UnauthorizedError, ValidationError } from '../src/errors';
import { handleImagePush, type ImagePush, type ImageUpdateRecord } from '../src/triggers/image-update';
import { api, json, readJson } from './http';
import type { Refit } from '../src/refit';

const MANIFEST_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
]);

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

interface DistributionEvent {
  id?: string;
  timestamp?: string;
  action?: string;
  target?: { mediaType?: string; digest?: string; repository?: string; tag?: string };
  request?: { host?: string };
}

/** The manifest pushes with a tag in a CNCF distribution envelope (v1 or v2); pulls, deletes and blobs are not. */
export function manifestPushes(events: readonly DistributionEvent[], fallbackRegistry: string): ImagePush[] {
  return events.flatMap((e) => {
    const t = e?.target;
    if (
      e?.action !== 'push' ||
      !t?.tag ||
      !t.digest ||
      !t.repository ||
      !MANIFEST_TYPES.has(t.mediaType ?? '')
    )
      return [];
    return [
      {
        source: 'distribution',
        eventId: e.id || `${t.repository}:${t.tag}@${t.digest}`,
        registry: e.request?.host || fallbackRegistry,
        repository: t.repository,
        tag: t.tag,
        digest: t.digest,
        timestamp: e.timestamp ?? new Date().toISOString(),
      },
    ];
  });
}

/** Runs the decision for every push; one bad event never fails the batch (the registry would resend it all). */
async function decide(r: Refit, pushes: readonly ImagePush[]): Promise<ImageUpdateRecord[]> {
  const deps = {
    index: r.dependencyIndex,
    tasks: r.tasks,
    runs: r.runs,
    dedupe: r.dedupe,
    registry: r.registry,
    updates: r.imageUpdates,
    homeRegistry: r.config.homeRegistry,
  };
  const records: ImageUpdateRecord[] = [];
  for (const push of pushes) {
    const record = await handleImagePush(push, deps);
    if (record) records.push(record);
  }
  return records;
}

/**
 * POST /hooks/registry: CNCF distribution notifications, authenticated by the bearer token the registry is
 * configured to send. Manifest pushes with a tag go to the base-image update decision; everything else gets 200.
 */
export const registryHook = api(async (request, r) => {
  const secret = r.config.registryWebhookSecret;
  if (secret) {
    const header = request.headers.get('authorization') ?? '';
    const token = header.replace(/^Bearer\s+/i, '');
    if (!header || !sameSecret(token, secret))
      throw new UnauthorizedError('the registry notification has no valid bearer token');
  }
  const body = await readJson(request, r.config.maxBodyBytes);
  const events = (body as { events?: unknown } | null)?.events;
  if (!Array.isArray(events))
    throw new ValidationError('a registry notification is an object with an events array', 'events');
  const pushes = manifestPushes(events as DistributionEvent[], r.config.homeRegistry);
  const updates = await decide(r, pushes);
  return json(200, { received: events.length, manifestPushes: pushes.length, updates });
});
