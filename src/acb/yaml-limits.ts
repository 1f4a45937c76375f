import { AcbError } from './errors';

/**
 * The largest task, values or alias file Refit parses. The yaml library spends tens of microseconds per character
 * on malformed flow collections (`{{ "a" }}` repeated), so a body-sized file would hold the host for seconds; real
 * acb files are a few KiB.
 */
export const MAX_YAML_BYTES = 64 * 1024;

/**
 * How deep collections may nest. The yaml library composes recursively and catches its own stack overflow
 * (`- - - …` or `[[[…` thousands deep), and after a few such catches V8 aborts the whole process
 * ("RegExpCompiler Allocation failed"): one request could stop the host. Real acb files nest fewer than 10 deep.
 */
export const MAX_YAML_DEPTH = 64;

/**
 * An upper bound of how deep a text's collections nest, read without the yaml library (whose parsers recurse too):
 * the open `[` and `{` at any point, plus the `- `, `? ` and `: ` that open block collections on one line. Quotes are
 * not followed, so brackets inside strings count: only a file with dozens of them unclosed is refused.
 */
function nestingBound(text: string): number {
  let flow = 0;
  let max = 0;
  for (const line of text.split('\n')) {
    let block = 0;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (c === '[' || c === '{') flow++;
      else if ((c === ']' || c === '}') && flow > 0) flow--;
      else if ((c === '-' || c === '?' || c === ':') && (line[i + 1] === ' ' || line[i + 1] === '\t'))
        block++;
      if (flow + block > max) max = flow + block;
    }
  }
  return max;
}

/** Refuses a YAML text larger than {@link MAX_YAML_BYTES} or nesting deeper than {@link MAX_YAML_DEPTH}, naming it. */
export function checkYamlLimits(text: string, what: string): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_YAML_BYTES)
    throw new AcbError(`${what} is ${bytes} bytes; the limit is ${MAX_YAML_BYTES} (64 KiB)`);
  if (nestingBound(text) > MAX_YAML_DEPTH)
    throw new AcbError(`${what} nests lists or maps more than ${MAX_YAML_DEPTH} deep`);
}
