import { timingSafeEqual } from 'node:crypto';

/** Compares a secret someone sent with the expected one in constant time; a missing one never matches. */
export function secretMatches(given: string | null | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
