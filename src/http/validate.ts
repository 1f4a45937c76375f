import type { z } from 'zod';
import { ValidationError } from '../errors';

function path(issuePath: readonly PropertyKey[]): string {
  return issuePath.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  );
}

/** The value at `issuePath` in `value` (own properties only); undefined when it is absent or null. */
function valueAt(value: unknown, issuePath: readonly PropertyKey[]): unknown {
  let at: unknown = value;
  for (const key of issuePath) {
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at ?? undefined;
}

/** Parses `value` with `schema`; the first problem becomes a {@link ValidationError} naming the field. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what = 'request body',
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = path(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (field ? `${field}.${k}` : k));
    throw new ValidationError(
      `${what} has unknown propert${keys.length > 1 ? 'ies' : 'y'} ${keys.map((k) => `'${k}'`).join(', ')}`,
      keys[0],
    );
  }
  // zod does not report the input by default: read it at the issue's path, so that a value of the wrong type is
  // named as such and only an absent (or null) one is "required".
  if (issue.code === 'invalid_type' && valueAt(value, issue.path) === undefined) {
    throw new ValidationError(`${field || what} is required`, field || undefined);
  }
  throw new ValidationError(
    field ? `${field}: ${issue.message}` : `${what}: ${issue.message}`,
    field || undefined,
  );
}

/**
 * Any request value as text for an error message. `String(v)` is not safe on input: a JSON object with a
 * `toString` key makes it throw a TypeError.
 */
export function shown(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}
