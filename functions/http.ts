import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import {
  ForbiddenError,
  isTransientFailure,
  PayloadTooLargeError,
  RefitError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../src/errors';
import { checkUrlEscapes } from '../src/http/url-escapes';
import { originAllowed } from '../src/net/request-trust';
import { log } from '../src/log';
import { refit, type Refit } from '../src/refit';

/** An HTTP handler of the core's API, given the wired Refit. */
export type ApiHandler = (
  request: HttpRequest,
  r: Refit,
  context: InvocationContext,
) => Promise<HttpResponseInit>;

/** Seconds a client is asked to wait before retrying a 503 (ARM clients honour Retry-After on 503 and 429). */
export const RETRY_AFTER_SECONDS = 5;

/**
 * The ARM error envelope for any error: a RefitError keeps its status; a storage or transport failure
 * ({@link isTransientFailure}) is a 503 with Retry-After; anything else is a logged 500. Neither of the last two
 * carries the underlying message, which may name hosts, accounts or SDK internals: that goes to the log.
 */
export function errorResponse(err: unknown, context?: InvocationContext): HttpResponseInit {
  if (err instanceof RefitError && err.status < 500) {
    return {
      status: err.status,
      jsonBody: {
        error: { code: err.code, message: err.message, ...(err.target ? { target: err.target } : {}) },
      },
    };
  }
  if (err instanceof RefitError && err.status === 503) {
    return {
      status: 503,
      headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
      jsonBody: { error: { code: err.code, message: err.message } },
    };
  }
  if (isTransientFailure(err)) {
    log.warn('storage or network unavailable', {
      function: context?.functionName,
      error: (err as Error)?.message ?? String(err),
    });
    return errorResponse(
      new ServiceUnavailableError(
        `Refit's storage or a service it depends on could not be reached; retry after ${RETRY_AFTER_SECONDS} seconds`,
      ),
    );
  }
  log.error('unhandled error', {
    function: context?.functionName,
    error: (err as Error)?.stack ?? String(err),
  });
  return {
    status: 500,
    jsonBody: {
      error: { code: 'InternalServerError', message: 'An internal error occurred; see the host log.' },
    },
  };
}

/** How {@link api} treats a request before its handler. */
export interface ApiOptions {
  /** Webhooks: their senders pick the Content-Type, and the handler checks it with the signature. */
  readonly ownContentType?: boolean;
}

const JSON_TYPE = /^application\/([\w.+-]*\+)?json\s*(;|$)/i;

/** Whether a request carries a body: a non-zero Content-Length, or a chunked one. */
export function hasBody(request: HttpRequest): boolean {
  const length = request.headers.get('content-length');
  if (length !== null) return Number(length) > 0;
  return request.headers.get('transfer-encoding') !== null;
}

/**
 * The checks every API request passes, in Azure and locally: a browser's cross-site call (an `Origin` not in
 * REFIT_ALLOWED_ORIGINS) is refused, and a mutating request with a body must say it is JSON, which a page can
 * only send after a CORS preflight. A POST with no body at all needs no Content-Type: ARM clients send none on
 * bodyless POSTs (listBuildSourceUploadUrl, cancel), and the key and the Origin check stop a page there anyway.
 */
export function checkRequest(
  request: HttpRequest,
  allowedOrigins: readonly string[],
  options: ApiOptions,
): void {
  checkUrlEscapes(new URL(request.url));
  const origin = request.headers.get('origin');
  if (!originAllowed(origin, allowedOrigins))
    throw new ForbiddenError(`requests from origin '${origin}' are not allowed (REFIT_ALLOWED_ORIGINS)`);
  if (options.ownContentType || !['POST', 'PUT', 'PATCH'].includes(request.method.toUpperCase())) return;
  if (!hasBody(request)) return;
  const type = request.headers.get('content-type');
  if (!type || !JSON_TYPE.test(type))
    throw new UnsupportedMediaTypeError(
      `Content-Type must be application/json, got ${type ? `'${type}'` : 'none'}`,
    );
}

/** Wraps a handler: wires Refit, checks the request ({@link checkRequest}), maps every error to the ARM envelope. */
export function api(
  handler: ApiHandler,
  options: ApiOptions = {},
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (request, context) => {
    try {
      const r = await refit();
      checkRequest(request, r.config.allowedOrigins, options);
      return await handler(request, r, context);
    } catch (err) {
      return errorResponse(err, context);
    }
  };
}

/**
 * Reads a body, counting while it streams: past `maxBytes` it stops and throws a 413, whether or not a
 * Content-Length was sent (a declared one over the limit is refused before reading).
 */
export async function readBody(request: HttpRequest, maxBytes: number, what = 'the body'): Promise<Buffer> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes)
    throw new PayloadTooLargeError(`${what} is ${declared} bytes; the limit is ${maxBytes}`);
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
    if (done || !value) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new PayloadTooLargeError(`${what} is larger than the limit of ${maxBytes} bytes`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

/**
 * Reads a JSON body: 415 for another media type (or none, unless `typeOptional` for a webhook whose sender may
 * omit it), 413 past the limit, 400 for malformed JSON or an empty body.
 */
export async function readJson(
  request: HttpRequest,
  maxBytes: number,
  { typeOptional = false }: { readonly typeOptional?: boolean } = {},
): Promise<unknown> {
  const type = request.headers.get('content-type');
  if (type ? !JSON_TYPE.test(type) : !typeOptional && hasBody(request)) {
    throw new UnsupportedMediaTypeError(
      `Content-Type must be application/json, got ${type ? `'${type}'` : 'none'}`,
    );
  }
  const text = await readBody(request, maxBytes);
  if (text.length === 0) throw new ValidationError('the request has no body: a JSON object is required');
  try {
    return JSON.parse(text.toString('utf8')) as unknown;
  } catch (err) {
    throw new ValidationError(`the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** A JSON response. */
export function json(status: number, body: unknown): HttpResponseInit {
  return { status, jsonBody: body };
}

/** A path parameter, which the route guarantees. */
export function param(request: HttpRequest, name: string): string {
  return request.params[name] ?? '';
}

/** `$top` of a list operation: 1 to 1000, 100 when absent. */
export function topParam(query: URLSearchParams): number {
  const raw = query.get('$top');
  if (raw === null) return 100;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new ValidationError(`$top must be a whole number from 1 to 1000, got '${raw}'`, '$top');
  }
  return n;
}
