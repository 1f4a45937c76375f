import type { z } from 'zod';
import { ValidationError } from '../errors';

function path(issuePath: readonly PropertyKey[]): string {
  return issuePath.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  );
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
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    throw new ValidationError(`${field || what} is required`, field || undefined);
  }
  throw new ValidationError(
    field ? `${field}: ${issue.message}` : `${what}: ${issue.message}`,
    field || undefined,
  );
}
