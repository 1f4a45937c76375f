import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventGridFunction, FunctionDefinition } from '../../functions/definitions';
import { log } from '../log';
import { secretMatches } from '../secrets';
import { armError } from './arm-error';
import { invocationContext, type HostContext } from './host-context';
import { readBody } from './request-body';

/**
 * The Functions host's Event Grid webhook: both validation handshakes, then one handler call per event. As in the
 * Functions host, a POST without `aeg-event-type` is a 400, and a batch in which any event failed is a 500, so that
 * Event Grid delivers the whole batch again (every handler is idempotent: the events that did succeed are no-ops
 * the second time).
 */
export async function serveEventGrid(
  definitions: readonly FunctionDefinition[],
  ctx: HostContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  method: string,
): Promise<void> {
  const { options } = ctx;
  const fn = definitions.find(
    (d): d is EventGridFunction => d.kind === 'eventGrid' && d.name === url.searchParams.get('functionName'),
  );
  if (!fn)
    return armError(
      res,
      404,
      'NotFound',
      `no Event Grid function named '${url.searchParams.get('functionName') ?? ''}'`,
    );
  if (!secretMatches(url.searchParams.get('code'), options.apiKey)) {
    return armError(res, 401, 'Unauthorized', 'the Event Grid webhook needs the key as ?code=');
  }
  if (method === 'OPTIONS') {
    const origin = req.headers['webhook-request-origin'];
    res.writeHead(200, {
      'webhook-allowed-origin': typeof origin === 'string' ? origin : 'eventgrid.azure.net',
      'webhook-allowed-rate': '*',
      allow: 'POST',
    });
    return void res.end();
  }
  if (method !== 'POST')
    return armError(res, 405, 'MethodNotAllowed', 'the Event Grid webhook takes POST and OPTIONS', {
      allow: 'POST, OPTIONS',
    });
  const kind = req.headers['aeg-event-type'];
  if (kind === undefined)
    return armError(
      res,
      400,
      'InvalidRequest',
      'an Event Grid delivery carries the aeg-event-type header (Notification, SubscriptionValidation or Unsubscribe)',
    );
  const body = await readBody(req, options.maxBodyBytes);
  if (body === 'too-large') {
    res.setHeader('connection', 'close');
    return armError(
      res,
      413,
      'PayloadTooLarge',
      `the body is larger than the limit of ${options.maxBodyBytes} bytes`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return armError(res, 400, 'InvalidRequest', `the body is not valid JSON: ${(err as Error).message}`);
  }
  const events = (Array.isArray(parsed) ? parsed : [parsed]) as {
    eventType?: string;
    data?: { validationCode?: string };
  }[];
  if (
    kind === 'SubscriptionValidation' ||
    events[0]?.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent'
  ) {
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.end(JSON.stringify({ validationResponse: events[0]?.data?.validationCode }));
  }
  if (kind === 'Unsubscribe') return void res.writeHead(202).end();
  if (kind !== 'Notification')
    return armError(res, 400, 'InvalidRequest', `aeg-event-type '${String(kind)}' is not understood`);
  let failed = 0;
  for (const event of events) {
    const context = invocationContext(fn.name);
    try {
      await ctx.track(fn.handler(event, context));
    } catch (err) {
      failed++;
      log.error('event grid handler failed for one event', {
        function: fn.name,
        error: (err as Error)?.message ?? String(err),
      });
    }
  }
  if (failed > 0)
    return armError(
      res,
      500,
      'InternalServerError',
      `${failed} of ${events.length} event(s) failed; Event Grid delivers the batch again (see the host log)`,
    );
  res.writeHead(202).end();
}
