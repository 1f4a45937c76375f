import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { PayloadTooLargeError, RefitError, UnsupportedMediaTypeError, ValidationError } from '../src/errors';
import { log } from '../src/log';
import { refit, type Refit } from '../src/refit';

/** An HTTP handler of the core's API, given the wired Refit. */
export type ApiHandler = (
  request: HttpRequest,
  r: Refit,
  context: InvocationContext,
) => Promise<HttpResponseInit>;

/** The ARM error envelope for any error: a RefitError keeps its status; anything else is a logged 500 with no internals. */
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
    return { status: 503, jsonBody: { error: { code: err.code, message: err.message } } };
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

/** Wraps a handler: wires Refit, maps every error to the ARM envelope. */
export function api(
  handler: ApiHandler,
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (request, context) => {
    try {
      return await handler(request, await refit(), context);
    } catch (err) {
      return errorResponse(err, context);
    }
  };
}

/** Reads a JSON body: 415 for another media type, 413 past the limit, 400 for malformed JSON or an empty body. */
export async function readJson(request: HttpRequest, maxBytes: number): Promise<unknown> {
  const type = request.headers.get('content-type');
  if (type && !/^application\/([\w.+-]*\+)?json\b/i.test(type)) {
    throw new UnsupportedMediaTypeError(`Content-Type must be application/json, got '${type}'`);
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes)
    throw new PayloadTooLargeError(`the body is ${declared} bytes; the limit is ${maxBytes}`);
  const text = Buffer.from(await request.arrayBuffer());
  if (text.length > maxBytes)
    throw new PayloadTooLargeError(`the body is ${text.length} bytes; the limit is ${maxBytes}`);
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
