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
  constructor(message: string, target?: string) {
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
