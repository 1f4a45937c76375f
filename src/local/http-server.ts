import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { HttpRequest, HttpResponse } from '@azure/functions';
import type { FunctionDefinition, HttpFunction } from '../../functions/definitions';
import { ValidationError } from '../errors';
import { checkUrlEscapes } from '../http/url-escapes';
import { log } from '../log';
import { secretMatches } from '../secrets';
import { requestApiKey } from './api-key';
import { armError } from './arm-error';
import { serveEventGrid } from './event-grid-endpoint';
import { invocationContext, type HostContext } from './host-context';
import { compileRoute, type CompiledRoute } from './http-routes';
import { readBody } from './request-body';
import { hostHeaderAllowed, isLoopbackName, originAllowed } from '../net/request-trust';

/** The host's request listener: routes to the HTTP functions (key check, body) and to the Event Grid endpoint. */
export function httpRequestListener(
  definitions: readonly FunctionDefinition[],
  ctx: HostContext,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const routes = definitions.filter((d): d is HttpFunction => d.kind === 'http').map(compileRoute);
  const { options } = ctx;
  const loopbackOnly = isLoopbackName(options.host);
  return async (req, res) => {
    try {
      // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 reaches this port under its
      // own name, so a name that is not ours is refused before anything else.
      if (loopbackOnly && !hostHeaderAllowed(req.headers.host, options.port, options.publicHost))
        return armError(
          res,
          403,
          'Forbidden',
          `the Host header '${req.headers.host ?? ''}' is not a name of this host (a loopback name, or REFIT_PUBLIC_HOST)`,
        );
      const origin = req.headers.origin;
      if (!originAllowed(origin, options.allowedOrigins))
        return armError(
          res,
          403,
          'Forbidden',
          `requests from origin '${origin}' are not allowed (REFIT_ALLOWED_ORIGINS)`,
        );
      const method = (req.method ?? 'GET').toUpperCase();
      if (origin !== undefined) {
        // Only a listed origin gets here: CORS headers are sent to it and to no one else.
        res.setHeader('access-control-allow-origin', origin);
        res.setHeader('vary', 'Origin');
        if (method === 'OPTIONS' && req.headers['access-control-request-method']) {
          res.writeHead(204, {
            'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE',
            'access-control-allow-headers': 'authorization, content-type, x-functions-key',
            'access-control-max-age': '600',
          });
          return void res.end();
        }
      }
      let url: URL;
      try {
        url = new URL(req.url ?? '/', `http://${req.headers.host ?? `${options.host}:${options.port}`}`);
      } catch {
        return armError(res, 400, 'InvalidRequest', 'the request target or the Host header is malformed');
      }
      try {
        checkUrlEscapes(url);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        return armError(res, 400, err.code, err.message);
      }
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
      if (fn.authLevel === 'function') {
        if (!secretMatches(requestApiKey(req.headers, url.searchParams), options.apiKey)) {
          return armError(
            res,
            401,
            'Unauthorized',
            'this API needs a key: send it as the x-functions-key header or as Authorization: Bearer <key> (npm start keeps it in <data folder>/api.key, REFIT_KEY overrides it)',
          );
        }
      }
      const params: Record<string, string> = {};
      for (const [i, name] of match.route.params.entries()) {
        // checkUrlEscapes has made sure every segment decodes.
        params[name] = decodeURIComponent(match.m[i + 1] ?? '');
      }
      const limit = fn.maxBodyBytes ?? options.maxBodyBytes;
      const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(req, limit);
      if (body === 'too-large') {
        res.setHeader('connection', 'close');
        const declared = req.headers['content-length'];
        return armError(
          res,
          413,
          'PayloadTooLarge',
          declared !== undefined
            ? `the body is ${declared} bytes; the limit of ${fn.name} is ${limit} bytes`
            : `the body is larger than the limit of ${fn.name}, ${limit} bytes`,
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
      const context = invocationContext(fn.name);
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
