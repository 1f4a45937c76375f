// The local stand-in for the Azure Functions host: it serves the same function table Azure registers.
// It is the one place outside functions/ that touches @azure/functions, because it plays the host's part.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { HttpRequest, HttpResponse, InvocationContext, type Timer } from '@azure/functions';
import type { QueueClient } from '@azure/storage-queue';
import { Cron } from 'croner';
import type {
  EventGridFunction,
  FunctionDefinition,
  HttpFunction,
  QueueFunction,
  TimerFunction,
} from '../../functions/definitions';
import { log } from '../log';
import { secretMatches } from '../secrets';

/** What the local host needs to know. */
export interface LocalHostOptions {
  readonly host: string;
  readonly port: number;
  readonly apiKey: string | undefined;
  readonly maxBodyBytes: number;
  readonly queue: (name: string) => QueueClient;
  /** Tries before a queue message moves to `<queue>-poison` (host.json maxDequeueCount). */
  readonly maxDequeueCount?: number;
  /** How long a failed message stays invisible before it is tried again (host.json visibilityTimeout), in seconds. */
  readonly retryVisibilitySeconds?: number;
}

interface CompiledRoute {
  readonly fn: HttpFunction;
  readonly pattern: RegExp;
  readonly params: string[];
}

function compileRoute(fn: HttpFunction): CompiledRoute {
  const params: string[] = [];
  const source = fn.route
    .split('/')
    .map((segment) => {
      const m = /^\{(\w+)\??\}$/.exec(segment);
      if (m) {
        params.push(m[1]!);
        return '([^/]+)';
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { fn, pattern: new RegExp(`^/api/${source}/?$`, 'i'), params };
}

function armError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify({ error: { code, message } }));
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return 'too-large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Serves HTTP functions on a port, polls queue functions and fires timer functions. */
export class LocalHost {
  private readonly routes: CompiledRoute[];
  private server: Server | undefined;
  private readonly pollers: { stop: () => void; wake: () => void }[] = [];
  private readonly crons: Cron[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly definitions: readonly FunctionDefinition[],
    private readonly options: LocalHostOptions,
  ) {
    this.routes = definitions.filter((d): d is HttpFunction => d.kind === 'http').map(compileRoute);
  }

  /** Starts serving; resolves once the port is bound. */
  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.serve(req, res));
    this.server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.options.port, this.options.host, () => resolve());
    });
    for (const fn of this.definitions) {
      if (fn.kind === 'queue') this.pollers.push(this.pollQueue(fn));
      if (fn.kind === 'timer') this.crons.push(this.schedule(fn));
    }
  }

  /** Polls every queue at once (called after a message is sent, so dispatch does not wait for the back-off). */
  wake(): void {
    for (const poller of this.pollers) poller.wake();
  }

  /** Stops accepting work and waits for the handlers under way. */
  async stop(): Promise<void> {
    for (const poller of this.pollers) poller.stop();
    for (const cron of this.crons) cron.stop();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await Promise.allSettled([...this.inFlight]);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise)).catch(() => undefined);
    return promise;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(
        req.url ?? '/',
        `http://${req.headers.host ?? `${this.options.host}:${this.options.port}`}`,
      );
      const method = (req.method ?? 'GET').toUpperCase();
      if (url.pathname === '/runtime/webhooks/eventgrid')
        return await this.serveEventGrid(req, res, url, method);
      const matches = this.routes
        .map((r) => ({ route: r, m: r.pattern.exec(url.pathname) }))
        .filter((x): x is { route: CompiledRoute; m: RegExpExecArray } => x.m !== null);
      if (matches.length === 0) return armError(res, 404, 'NotFound', `no API operation at ${url.pathname}`);
      const match = matches.find((x) => (x.route.fn.methods as readonly string[]).includes(method));
      if (!match) {
        const allowed = [...new Set(matches.flatMap((x) => x.route.fn.methods))].join(', ');
        return armError(
          res,
          405,
          'MethodNotAllowed',
          `${method} is not allowed on ${url.pathname}; use ${allowed}`,
          { allow: allowed },
        );
      }
      const { fn } = match.route;
      if (fn.authLevel === 'function' && this.options.apiKey) {
        const given = req.headers['x-functions-key'];
        const key = (Array.isArray(given) ? given[0] : given) ?? url.searchParams.get('code');
        if (!secretMatches(key ?? null, this.options.apiKey)) {
          return armError(
            res,
            401,
            'Unauthorized',
            'this API needs a key: send it as the x-functions-key header (REFIT_KEY)',
          );
        }
      }
      const body =
        method === 'GET' || method === 'HEAD'
          ? Buffer.alloc(0)
          : await readBody(req, this.options.maxBodyBytes);
      if (body === 'too-large') {
        res.setHeader('connection', 'close');
        return armError(
          res,
          413,
          'PayloadTooLarge',
          `the body is larger than the limit of ${this.options.maxBodyBytes} bytes`,
        );
      }
      let params: Record<string, string>;
      try {
        params = Object.fromEntries(
          match.route.params.map((p, i) => [p, decodeURIComponent(match.m[i + 1]!)]),
        );
      } catch {
        // decodeURIComponent throws a URIError on malformed percent-encoding (`/runs/%ff`).
        return armError(
          res,
          400,
          'InvalidRequest',
          `the path ${url.pathname} has malformed percent-encoding`,
        );
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const request = new HttpRequest({
        method,
        url: url.toString(),
        headers,
        query: Object.fromEntries(url.searchParams),
        params,
        ...(body.length ? { body: { bytes: body } } : {}),
      });
      const context = new InvocationContext({
        functionName: fn.name,
        invocationId: randomUUID(),
        logHandler: () => undefined,
      });
      const init = await this.track(fn.handler(request, context));
      const response = init instanceof HttpResponse ? init : new HttpResponse(init);
      const outHeaders: Record<string, string> = {};
      response.headers.forEach((value, key) => (outHeaders[key] = value));
      res.writeHead(response.status, outHeaders);
      if (!response.body) return void res.end();
      const stream = Readable.fromWeb(response.body);
      res.on('close', () => stream.destroy());
      stream.on('error', () => res.destroy());
      stream.pipe(res);
      this.wake();
    } catch (err) {
      log.error('local host failed to serve a request', { error: (err as Error).stack });
      if (!res.headersSent)
        armError(res, 500, 'InternalServerError', 'An internal error occurred; see the host log.');
      else res.destroy();
    }
  }

  // The Functions host's Event Grid webhook: both validation handshakes, then one handler call per event.
  // An event that fails is logged and does not fail the others (Event Grid would resend the whole batch).
  private async serveEventGrid(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    method: string,
  ): Promise<void> {
    const fn = this.definitions.find(
      (d): d is EventGridFunction =>
        d.kind === 'eventGrid' && d.name === url.searchParams.get('functionName'),
    );
    if (!fn)
      return armError(
        res,
        404,
        'NotFound',
        `no Event Grid function named '${url.searchParams.get('functionName') ?? ''}'`,
      );
    if (this.options.apiKey && !secretMatches(url.searchParams.get('code'), this.options.apiKey)) {
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
    const body = await readBody(req, this.options.maxBodyBytes);
    if (body === 'too-large')
      return armError(
        res,
        413,
        'PayloadTooLarge',
        `the body is larger than the limit of ${this.options.maxBodyBytes} bytes`,
      );
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
    const kind = req.headers['aeg-event-type'];
    if (
      kind === 'SubscriptionValidation' ||
      events[0]?.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent'
    ) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ validationResponse: events[0]?.data?.validationCode }));
    }
    if (kind === 'Unsubscribe') return void res.writeHead(202).end();
    if (kind !== undefined && kind !== 'Notification')
      return armError(res, 400, 'InvalidRequest', `aeg-event-type '${String(kind)}' is not understood`);
    for (const event of events) {
      const context = new InvocationContext({
        functionName: fn.name,
        invocationId: randomUUID(),
        logHandler: () => undefined,
      });
      try {
        await this.track(fn.handler(event, context));
      } catch (err) {
        log.error('event grid handler failed for one event', {
          function: fn.name,
          error: (err as Error).message,
        });
      }
    }
    res.writeHead(202).end();
  }

  private pollQueue(fn: QueueFunction): { stop: () => void; wake: () => void } {
    const queue = this.options.queue(fn.queueName);
    const poison = this.options.queue(`${fn.queueName}-poison`);
    const maxDequeue = this.options.maxDequeueCount ?? 5;
    const retryAfter = this.options.retryVisibilitySeconds ?? 10;
    let stopped = false;
    let delay = 50;
    let timer: NodeJS.Timeout | undefined;
    let polling = false;

    const handle = async (message: {
      messageId: string;
      popReceipt: string;
      messageText: string;
      dequeueCount: number;
      insertedOn: Date;
      expiresOn: Date;
      nextVisibleOn: Date;
    }): Promise<void> => {
      if (message.dequeueCount > maxDequeue) {
        log.warn('queue message moved to the poison queue', {
          queue: fn.queueName,
          messageId: message.messageId,
          dequeueCount: message.dequeueCount,
        });
        await poison.sendMessage(message.messageText);
        await queue.deleteMessage(message.messageId, message.popReceipt);
        return;
      }
      let payload: unknown = message.messageText;
      try {
        payload = JSON.parse(message.messageText);
      } catch {
        // not JSON: the handler gets the text, as the Functions host does
      }
      const context = new InvocationContext({
        functionName: fn.name,
        invocationId: randomUUID(),
        logHandler: () => undefined,
        triggerMetadata: {
          id: message.messageId,
          dequeueCount: message.dequeueCount,
          insertionTime: message.insertedOn.toISOString(),
          expirationTime: message.expiresOn.toISOString(),
          nextVisibleTime: message.nextVisibleOn.toISOString(),
          popReceipt: message.popReceipt,
        },
      });
      try {
        await fn.handler(payload, context);
        await queue.deleteMessage(message.messageId, message.popReceipt);
      } catch (err) {
        log.warn('queue handler failed; the message will be retried', {
          queue: fn.queueName,
          messageId: message.messageId,
          error: (err as Error).message,
        });
        await queue
          .updateMessage(message.messageId, message.popReceipt, undefined, retryAfter)
          .catch(() => undefined);
      }
    };

    const poll = async (): Promise<void> => {
      if (stopped || polling) return;
      polling = true;
      timer = undefined;
      try {
        const { receivedMessageItems } = await queue.receiveMessages({
          numberOfMessages: 16,
          visibilityTimeout: 60,
        });
        if (receivedMessageItems.length > 0) {
          delay = 50;
          await Promise.all(receivedMessageItems.map((m) => this.track(handle(m))));
        } else {
          delay = Math.min(delay * 2, 2000);
        }
      } catch (err) {
        delay = 2000;
        if (!stopped) log.warn('queue poll failed', { queue: fn.queueName, error: (err as Error).message });
      } finally {
        polling = false;
      }
      if (!stopped) timer = setTimeout(() => void poll(), delay);
    };
    void poll();
    return {
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
      wake: () => {
        delay = 50;
        if (timer && !polling) {
          clearTimeout(timer);
          void poll();
        }
      },
    };
  }

  private schedule(fn: TimerFunction): Cron {
    let last: Date | undefined;
    const cron: Cron = new Cron(fn.schedule, { timezone: 'UTC', protect: true }, async () => {
      const timer: Timer = {
        isPastDue: false,
        schedule: { adjustForDST: false },
        scheduleStatus: {
          last: (last ?? new Date()).toISOString(),
          next: cron.nextRun()?.toISOString() ?? '',
          lastUpdated: new Date().toISOString(),
        },
      };
      last = new Date();
      const context = new InvocationContext({
        functionName: fn.name,
        invocationId: randomUUID(),
        logHandler: () => undefined,
      });
      try {
        await this.track(fn.handler(timer, context));
      } catch (err) {
        log.error('timer function failed', { function: fn.name, error: (err as Error).message });
      }
    });
    return cron;
  }
}
