import { timingSafeEqual } from 'node:crypto';
import { UnauthorizedError, ValidationError } from '../src/errors';
import { handleImagePush, type ImagePush, type ImageUpdateRecord } from '../src/triggers/image-update';
import { distributionPushes, type RegistryEventData } from '../src/triggers/registry-events';
import { api, json, readJson } from './http';
import type { Refit } from '../src/refit';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Runs the decision for every push; one bad event never fails the batch (the registry would resend it all). */
export async function decideImagePushes(
  r: Refit,
  pushes: readonly ImagePush[],
): Promise<ImageUpdateRecord[]> {
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
  const pushes = distributionPushes(events as RegistryEventData[], r.config.homeRegistry);
  const updates = await decideImagePushes(r, pushes);
  return json(200, { received: events.length, manifestPushes: pushes.length, updates });
});
