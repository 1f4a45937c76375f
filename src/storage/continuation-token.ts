import { z } from 'zod';
import { ValidationError } from '../errors';

/** What the table SDK encodes in a continuation token: base64 of this JSON. */
const tokenSchema = z.object({ nextPartitionKey: z.string(), nextRowKey: z.string().optional() });

/**
 * Checks a `$skipToken` before it reaches the table SDK, which base64-decodes and JSON.parses it and throws a
 * SyntaxError (a 500) on anything it did not write itself.
 */
export function checkContinuationToken(token: string): void {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64').toString('latin1'));
  } catch {
    decoded = undefined;
  }
  if (!tokenSchema.safeParse(decoded).success)
    throw new ValidationError(
      `$skipToken '${token.slice(0, 100)}' is not a token from a nextLink`,
      '$skipToken',
    );
}
