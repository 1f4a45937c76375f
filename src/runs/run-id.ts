// ACR's run IDs count in a 32-symbol alphabet that reaches w, x, y (…cax, cay, ca10): digits and letters
// without i, l, o (easily misread) and z.
const ALPHABET = '0123456789abcdefghjkmnpqrstuvwxy';
const ROW_KEY_WIDTH = 13;
const MAX = Number.MAX_SAFE_INTEGER;

/** The run ID of the n-th run (n ≥ 1) of a deployment whose prefix is `prefix`: `aa1`, `aa2`, … `aay`, `aa10`. */
export function formatRunId(prefix: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`run counter out of range: ${n}`);
  let digits = '';
  for (let v = n; v > 0; v = Math.floor(v / 32)) digits = ALPHABET[v % 32]! + digits;
  return prefix + digits;
}

/** The counter behind a run ID, or a 404-worthy null when the text is not a run ID of this deployment. */
export function parseRunId(prefix: string, runId: string): number | null {
  if (!runId.startsWith(prefix) || runId.length <= prefix.length || runId.length > prefix.length + 11)
    return null;
  let n = 0;
  for (const ch of runId.slice(prefix.length)) {
    const d = ALPHABET.indexOf(ch);
    if (d < 0) return null;
    n = n * 32 + d;
  }
  // Eleven symbols can exceed 2^53 (`aaaaaaaaaaaaa`): no run has such a counter, and formatRunId would throw.
  return n >= 1 && Number.isSafeInteger(n) && formatRunId(prefix, n) === runId ? n : null;
}

/** A table row key that sorts newer runs first. */
export function runRowKey(n: number): string {
  return String(MAX - n).padStart(ROW_KEY_WIDTH + 3, '0');
}
