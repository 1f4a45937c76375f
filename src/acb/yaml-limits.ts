import { Parser } from 'yaml';
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

interface CstNode {
  readonly type?: string;
  readonly key?: unknown;
  readonly value?: unknown;
  readonly items?: readonly { readonly key?: unknown; readonly value?: unknown }[];
}

const COLLECTIONS = new Set(['block-map', 'block-seq', 'flow-collection']);

/** The deepest nesting of collections, from the yaml library's CST parser (which keeps its own stack, no recursion). */
function nestingDepth(text: string): number {
  let max = 0;
  const pending: [unknown, number][] = [];
  for (const token of new Parser().parse(text)) pending.push([token, 0]);
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [node, depth] = next as [CstNode | null, number];
    if (!node || typeof node !== 'object') continue;
    const d = node.type && COLLECTIONS.has(node.type) ? depth + 1 : depth;
    if (d > max) max = d;
    if (max > MAX_YAML_DEPTH) return max;
    pending.push([node.key, d], [node.value, d]);
    for (const item of node.items ?? []) pending.push([item.key, d], [item.value, d]);
  }
  return max;
}

/** Refuses a YAML text larger than {@link MAX_YAML_BYTES} or nesting deeper than {@link MAX_YAML_DEPTH}, naming it. */
export function checkYamlLimits(text: string, what: string): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_YAML_BYTES)
    throw new AcbError(`${what} is ${bytes} bytes; the limit is ${MAX_YAML_BYTES} (64 KiB)`);
  if (nestingDepth(text) > MAX_YAML_DEPTH)
    throw new AcbError(`${what} nests lists or maps more than ${MAX_YAML_DEPTH} deep`);
}
