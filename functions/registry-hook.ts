import { timingSafeEqual } from 'node:crypto';
import { UnauthorizedError, ValidationError } from '../src/errors';
import { log } from '../src/log';
import { api, json, readJson } from './http';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * POST /hooks/registry: CNCF distribution notifications. Authenticated by the bearer token the registry is
 * configured to send, then acknowledged so the registry's queue never stalls; manifest pushes are logged.
 * (Acting on them — base-image triggers — is a later piece of work.)
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
  let pushes = 0;
  for (const event of events as {
    action?: string;
    target?: { tag?: string; digest?: string; repository?: string };
  }[]) {
    if (event?.action === 'push' && event.target?.tag) {
      pushes++;
      log.info('image pushed', {
        repository: event.target.repository,
        tag: event.target.tag,
        digest: event.target.digest,
      });
    }
  }
  return json(200, { received: events.length, manifestPushes: pushes });
});
