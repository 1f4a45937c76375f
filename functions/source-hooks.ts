import { UnauthorizedError, UnsupportedMediaTypeError, ValidationError } from '../src/errors';
import { parseAzureDevOpsEvent, verifyAzureDevOpsAuth } from '../src/triggers/azure-devops';
import { parseGitHubEvent, verifyGitHubSignature } from '../src/triggers/github';
import { handleSourceEvent, ignoreSourceEvent } from '../src/triggers/source-event';
import type { TriggerDecision } from '../src/triggers/decisions';
import type { HttpRequest } from '@azure/functions';
import { api, json, readBody } from './http';

// Deliveries come in the sender's own Content-Type, checked by parseJson after the signature.
const WEBHOOK = { ownContentType: true } as const;

/** GitHub caps a delivery at 25 MB. */
export const HOOK_MAX_BYTES = 25 * 1024 * 1024;

function rawBody(request: HttpRequest): Promise<Buffer> {
  return readBody(request, HOOK_MAX_BYTES, 'the delivery');
}

function parseJson(raw: Buffer, request: HttpRequest): unknown {
  const type = request.headers.get('content-type') ?? '';
  if (type && !/json/i.test(type))
    throw new UnsupportedMediaTypeError(`the webhook must be sent as application/json, got '${type}'`);
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch (err) {
    throw new ValidationError(`the delivery is not valid JSON: ${(err as Error).message}`);
  }
}

/** POST /hooks/github: the signature is verified on the raw body before anything is parsed. */
export const githubHook = api(async (request, r) => {
  const secret = r.config.webhookSecret;
  if (!secret)
    throw new UnauthorizedError(
      'no webhook secret is configured (REFIT_WEBHOOK_SECRET): deliveries cannot be verified',
    );
  const raw = await rawBody(request);
  if (!verifyGitHubSignature(secret, raw, request.headers.get('x-hub-signature-256'))) {
    throw new UnauthorizedError('the X-Hub-Signature-256 header is missing or does not match the body');
  }
  const eventName = request.headers.get('x-github-event') ?? '';
  const deliveryId = request.headers.get('x-github-delivery') ?? '';
  if (!eventName || !deliveryId)
    throw new ValidationError('X-GitHub-Event and X-GitHub-Delivery are required');
  const parsed = parseGitHubEvent(eventName, deliveryId, parseJson(raw, request));
  if (parsed === 'ping') return json(200, { event: 'ping', ok: true });
  if (parsed === null)
    return json(200, { event: eventName, decisions: [], note: `'${eventName}' events build nothing` });
  const deps = { tasks: r.tasks, dedupe: r.dedupe, decisions: r.decisions };
  const decisions =
    'eventType' in parsed
      ? await handleSourceEvent(parsed, deps)
      : await ignoreSourceEvent(parsed, r.decisions);
  return json(200, { event: eventName, deliveryId, decisions });
}, WEBHOOK);

/** POST /hooks/azuredevops: `git.push` service hooks, authenticated by Basic auth or the x-refit-webhook-secret header. */
export const azureDevOpsHook = api(async (request, r) => {
  const secret = r.config.webhookSecret;
  if (!secret)
    throw new UnauthorizedError(
      'no webhook secret is configured (REFIT_WEBHOOK_SECRET): deliveries cannot be verified',
    );
  if (
    !verifyAzureDevOpsAuth(
      secret,
      request.headers.get('authorization'),
      request.headers.get('x-refit-webhook-secret'),
    )
  ) {
    throw new UnauthorizedError(
      'the service hook must send the webhook secret as the Basic auth password or the x-refit-webhook-secret header',
    );
  }
  const events = parseAzureDevOpsEvent(parseJson(await rawBody(request), request));
  if (events === null) return json(200, { decisions: [], note: 'only git.push events build' });
  const deps = { tasks: r.tasks, dedupe: r.dedupe, decisions: r.decisions };
  const decisions: TriggerDecision[] = [];
  for (const event of events)
    decisions.push(
      ...('eventType' in event
        ? await handleSourceEvent(event, deps)
        : await ignoreSourceEvent(event, r.decisions)),
    );
  return json(200, { decisions });
}, WEBHOOK);
