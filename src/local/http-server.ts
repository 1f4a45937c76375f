import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { HttpRequest, HttpResponse, InvocationContext } from '@azure/functions';
import type { FunctionDefinition, HttpFunction } from '../../functions/definitions';
import { log } from '../log';
import { secretMatches } from '../secrets';
import { armError } from './arm-error';
import { serveEventGrid } from './event-grid-endpoint';
import type { HostContext } from './host-context';
import { compileRoute, type CompiledRoute } from './http-routes';
import { readBody } from './request-body';

/** The host's request listener: routes to the HTTP functions (key check, body) and to the Event Grid endpoint. */
export function httpRequestListener(
  definitions: readonly FunctionDefinition[],
  ctx: HostContext,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const routes = definitions.filter((d): d is HttpFunction => d.kind === 'http').map(compileRoute);
  const { options } = ctx;
  return async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', `http://${req.headers.host ?? `${options.host}:${options.port}`}`);
      const method = (req.method ?? 'GET').toUpperCase();
      if (url.pathname === '/runtime/webhooks/eventgrid')
        return await serveEventGrid(definitions, ctx, req, res, url, method);
      const matches = routes
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
      if (fn.authLevel === 'function' && options.apiKey) {
        const given = req.headers['x-functions-key'];
        const key = (Array.isArray(given) ? given[0] : given) ?? url.searchParams.get('code');
        if (!secretMatches(key ?? null, options.apiKey)) {
          return armError(
            res,
            401,
            'Unauthorized',
            'this API needs a key: send it as the x-functions-key header (REFIT_KEY)',
          );
        }
      }
      const body =
        method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(req, options.maxBodyBytes);
      if (body === 'too-large') {
        res.setHeader('connection', 'close');
        return armError(
          res,
          413,
          'PayloadTooLarge',
          `the body is larger than the limit of ${options.maxBodyBytes} bytes`,
        );
      }
      const params = Object.fromEntries(
        match.route.params.map((p, i) => [p, decodeURIComponent(match.m[i + 1]!)]),
      );
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
      const init = await ctx.track(fn.handler(request, context));
      const response = init instanceof HttpResponse ? init : new HttpResponse(init);
      const outHeaders: Record<string, string> = {};
      response.headers.forEach((value, key) => (outHeaders[key] = value));
      res.writeHead(response.status, outHeaders);
      if (!response.body) return void res.end();
      const stream = Readable.fromWeb(response.body);
      res.on('close', () => stream.destroy());
      stream.on('error', () => res.destroy());
      stream.pipe(res);
      ctx.wake();
    } catch (err) {
      log.error('local host failed to serve a request', { error: (err as Error).stack });
      if (!res.headersSent)
        armError(res, 500, 'InternalServerError', 'An internal error occurred; see the host log.');
      else res.destroy();
    }
  };
}
