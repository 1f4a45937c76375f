import type { InvocationContext } from '@azure/functions';
import { UnauthorizedError, UpstreamUnavailableError, ValidationError } from '../src/errors';
import { handleImagePush, type ImagePush, type ImageUpdateRecord } from '../src/triggers/image-update';
import {
  distributionPushes,
  dockerHubPush,
  harborPushes,
  type RegistryEventData,
} from '../src/triggers/registry-events';
import { api, json, readJson, type ApiHandler } from './http';
import { imageUpdateDeps, refit, type Refit } from '../src/refit';
import { secretMatches } from '../src/secrets';

/**
 * Queues every push for the decision and returns at once: registries and Event Grid want a quick 2xx (a slow
 * answer is a failed delivery, resent), and the decision for a base with thousands of dependents takes a while.
 */
export function queueImagePushes(r: Refit, pushes: readonly ImagePush[]): Promise<number> {
  return r.queueImagePushes(pushes);
}

/** The image-pushes queue trigger: the base-image update decision for one push (idempotent). */
export async function decideImagePush(message: unknown): Promise<ImageUpdateRecord | null> {
  const r = await refit();
  let push = message as ImagePush;
  if (!push.digest) {
    // Docker Hub says which tag moved, not to what: ask the registry (an unreachable one throws, and the
    // message is retried, then parked in the poison queue).
    const resolved = await r.registry.resolve(
      { ...push, digest: null },
      { os: 'Linux', architecture: 'amd64' },
    );
    if (!resolved)
      throw new UpstreamUnavailableError(
        `${push.registry}/${push.repository}:${push.tag} could not be resolved`,
        push.registry,
      );
    push = { ...push, digest: resolved.digest };
  }
  return handleImagePush(push, imageUpdateDeps(r));
}

// CNCF distribution notifications, authenticated by the bearer token the registry is configured to send.
// Manifest pushes with a tag are queued for the base-image update decision; the rest gets 200.
const handleRegistryNotification: ApiHandler = async (request, r) => {
  const secret = r.config.registryWebhookSecret;
  // Fails closed: with no secret configured nothing can be verified, so nothing is taken.
  if (!secret)
    throw new UnauthorizedError(
      'no registry webhook secret is configured (REFIT_REGISTRY_WEBHOOK_SECRET): notifications cannot be verified',
    );
  // A bearer header (distribution, Harbor) or, for Docker Hub, which sends no headers of its own, ?secret= in the URL.
  const header = (request.headers.get('authorization') ?? '').replace(/^Bearer\s+/i, '');
  const given = header || request.query.get('secret') || '';
  if (!secretMatches(given, secret)) {
    throw new UnauthorizedError(
      'the registry notification has no valid secret (Authorization: Bearer, or ?secret= for Docker Hub)',
    );
  }
  const body = await readJson(request, r.config.maxBodyBytes, { typeOptional: true });
  const hub = dockerHubPush(body);
  if (hub)
    return json(200, { source: 'dockerhub', manifestPushes: 1, queued: await queueImagePushes(r, [hub]) });
  const harbor = harborPushes(body);
  if (harbor)
    return json(200, {
      source: 'harbor',
      manifestPushes: harbor.length,
      queued: await queueImagePushes(r, harbor),
    });
  const events = (body as { events?: unknown } | null)?.events;
  if (!Array.isArray(events)) {
    throw new ValidationError(
      'not a registry notification: expected a distribution envelope (events), a Docker Hub or a Harbor webhook',
      'events',
    );
  }
  const pushes = distributionPushes(events as RegistryEventData[], r.config.homeRegistry);
  return json(200, {
    received: events.length,
    manifestPushes: pushes.length,
    queued: await queueImagePushes(r, pushes),
  });
};

/**
 * POST /hooks/registry: CNCF distribution, Docker Hub and Harbor notifications, in their senders' Content-Type.
 */
export const registryHook = api(handleRegistryNotification, { ownContentType: true });

/** The queue function's handler. */
export async function imageUpdate(message: unknown, _context: InvocationContext): Promise<void> {
  await decideImagePush(message);
}

/** The update-notifications queue function: POSTs a base-image trigger's updateTriggerEndpoint. */
export async function updateNotification(message: unknown, _context: InvocationContext): Promise<void> {
  await (await refit()).notifier.deliver(message);
}
