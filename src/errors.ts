/** The base of every error Refit raises on purpose; `code` is stable and lands in the ARM error envelope. */
export class RefitError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly target?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that does not fit: a 400 naming the field at fault. */
export class ValidationError extends RefitError {
  constructor(message: string, target?: string) {
    super('InvalidRequest', message, 400, target);
  }
}

/** A resource that does not exist: 404. */
export class NotFoundError extends RefitError {
  constructor(message: string, target?: string) {
    super('ResourceNotFound', message, 404, target);
  }
}

/** A request that clashes with the resource's current state: 409. */
export class ConflictError extends RefitError {
  constructor(message: string, target?: string) {
    super('Conflict', message, 409, target);
  }
}

/** Missing or wrong credentials: 401. */
export class UnauthorizedError extends RefitError {
  constructor(message: string) {
    super('Unauthorized', message, 401);
  }
}

/** A request Refit will not serve whoever sends it (a foreign Origin or Host): 403. */
export class ForbiddenError extends RefitError {
  constructor(message: string) {
    super('Forbidden', message, 403);
  }
}

/** A body larger than the API takes: 413. */
export class PayloadTooLargeError extends RefitError {
  constructor(message: string) {
    super('PayloadTooLarge', message, 413);
  }
}

/** A body in a media type the endpoint does not read: 415. */
export class UnsupportedMediaTypeError extends RefitError {
  constructor(message: string) {
    super('UnsupportedMediaType', message, 415);
  }
}

/** A dependency (registry, storage) that answered 429/5xx or not at all: the caller backs off. */
export class UpstreamUnavailableError extends RefitError {
  constructor(
    message: string,
    target?: string,
    /** The upstream's Retry-After, in seconds, when it sent one. */
    readonly retryAfter?: number,
  ) {
    super('UpstreamUnavailable', message, 503, target);
  }
}

/** A setting that is missing or malformed: raised once, at start-up. */
export class ConfigError extends RefitError {
  constructor(message: string, setting: string) {
    super('ConfigurationError', message, 500, setting);
  }
}

/** A server-side fetch to a destination Refit must not reach (metadata, link-local, private in Azure): 400. */
export class DestinationRefusedError extends RefitError {
  constructor(message: string, target?: string) {
    super('DestinationRefused', message, 400, target);
  }
}

/** An answer from an outside server larger than the limit Refit reads (the setting is named in the message): 502. */
export class ResponseTooLargeError extends RefitError {
  constructor(message: string, setting: string) {
    super('ResponseTooLarge', message, 502, setting);
  }
}

/** Refit's own storage (or the network to it) failed or is overloaded: 503 with Retry-After, the client retries. */
export class ServiceUnavailableError extends RefitError {
  constructor(message: string) {
    super('ServiceUnavailable', message, 503);
  }
}

/** Node's error codes for a connection that failed, dropped or timed out: nothing the request itself did wrong. */
const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'REQUEST_SEND_ERROR',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Whether an error is a storage or transport failure that a retry can cure: an Azure SDK `RestError` with no HTTP
 * status (the request never got an answer) or with 408, 429 or a 5xx, a connection refused, reset or timed out, or
 * an aborted (timed-out) call, here or in its `cause`.
 */
export function isTransientFailure(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const { name, code, statusCode } = e as { name?: unknown; code?: unknown; statusCode?: unknown };
    if (name === 'RestError') {
      if (statusCode === undefined) return true;
      if (typeof statusCode === 'number')
        return statusCode === 408 || statusCode === 429 || (statusCode >= 500 && statusCode !== 501);
    }
    if (typeof code === 'string' && TRANSPORT_CODES.has(code)) return true;
    if (name === 'AbortError' || name === 'TimeoutError') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
