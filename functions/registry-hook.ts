import { timingSafeEqual } from 'node:crypto';
import type { InvocationContext } from '@azure/functions';
import { UnauthorizedError, ValidationError } from '../src/errors';
import { handleImagePush, type ImagePush, type ImageUpdateRecord } from '../src/triggers/image-update';
import { distributionPushes, type RegistryEventData } from '../src/triggers/registry-events';
import { api, json, readJson } from './http';
import { refit, type Refit } from '../src/refit';
import { names } from '../src/storage/storage';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Queues every push for the decision and returns at once: registries and Event Grid want a quick 2xx (a slow
 * answer is a failed delivery, resent), and the decision for a base with thousands of dependents takes a while.
 */
export async function queueImagePushes(r: Refit, pushes: readonly ImagePush[]): Promise<number> {
  const receivedAt = new Date().toISOString();
  const queue = r.storage.queue(names.queues.imagePushes);
  for (const push of pushes) await queue.sendMessage(JSON.stringify({ ...push, receivedAt }));
  if (pushes.length) r.onEnqueued();
  return pushes.length;
}

/** The image-pushes queue trigger: the base-image update decision for one push (idempotent). */
export async function decideImagePush(message: unknown): Promise<ImageUpdateRecord | null> {
  const r = await refit();
  return handleImagePush(message as ImagePush, {
    index: r.dependencyIndex,
    tasks: r.tasks,
    runs: r.runs,
    dedupe: r.dedupe,
    registry: r.registry,
    updates: r.imageUpdates,
    homeRegistry: r.config.homeRegistry,
  });
}

/**
 * POST /hooks/registry: CNCF distribution notifications, authenticated by the bearer token the registry is
 * configured to send. Manifest pushes with a tag are queued for the base-image update decision; the rest gets 200.
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
  return json(200, {
    received: events.length,
    manifestPushes: pushes.length,
    queued: await queueImagePushes(r, pushes),
  });
});

/** The queue function's handler. */
export async function imageUpdate(message: unknown, _context: InvocationContext): Promise<void> {
  await decideImagePush(message);
}
