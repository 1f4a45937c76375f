// Shared by the property-based tests (test/unit/fuzz, test/integration/fuzz-http.test.ts): the seed and case
// counts, the corpus under test/fixtures/fuzz, mutations of real payloads, and the "refused cleanly" check.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';

/** `npm test` runs every property with this seed, so a run is reproducible; `npm run fuzz` draws a new one. */
const FIXED_SEED = 20261129;

/** True under `npm run fuzz` (FUZZ_LONG=1): more cases, a random seed unless FUZZ_SEED is given. */
export const LONG_FUZZ = process.env.FUZZ_LONG === '1';

function seed(): number {
  if (process.env.FUZZ_SEED) return Number(process.env.FUZZ_SEED);
  return LONG_FUZZ ? (Math.random() * 2 ** 31) | 0 : FIXED_SEED;
}

/** The seed of this test file's properties (printed with the counts so a failure can be replayed). */
export const FUZZ_SEED = seed();
// Printed at once too, so that a run that hangs or dies can still be replayed with FUZZ_SEED.
if (LONG_FUZZ) process.stdout.write(`fuzz: seed ${FUZZ_SEED}, FUZZ_SEED=${FUZZ_SEED} replays it\n`);

/** How many cases a property runs: `quick` in `npm test`; FUZZ_RUNS (default 10 × quick) under `npm run fuzz`. */
export function caseCount(quick: number): number {
  if (!LONG_FUZZ) return quick;
  return process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : quick * 10;
}

const counts = new Map<string, number>();

/** fast-check's parameters for a property: the seed, the count, and a count of the cases that ran. */
export function params(name: string, quick: number): fc.Parameters<unknown> {
  return {
    seed: FUZZ_SEED,
    numRuns: caseCount(quick),
    // No shrinking: a failing case can be slow by nature, and the raw input is what goes into the corpus.
    endOnFailure: true,
    reporter: (details) => {
      counts.set(name, (counts.get(name) ?? 0) + details.numRuns);
      if (details.failed) {
        const cause = details.errorInstance as Error | undefined;
        let report: string;
        try {
          report = fc.defaultReportMessage(details).slice(0, 2000);
        } catch (err) {
          // fast-check's printer itself throws on some generated values (an array whose `constructor` was replaced):
          // the cause and the seed must still be seen.
          report = `(fast-check could not print the counterexample: ${(err as Error).message}; seed ${details.seed}, path ${details.counterexamplePath ?? ''})`;
        }
        throw new Error(`${cause?.message ?? ''}\n\n${report}`);
      }
    },
  };
}

/** Records corpus replays in the same count. */
export function countReplay(name: string, n: number): void {
  counts.set(`${name} (corpus)`, (counts.get(`${name} (corpus)`) ?? 0) + n);
}

/** Prints the cases each property ran, with the seed (call from afterAll). */
export function printCounts(file: string): void {
  const lines = [...counts].map(([name, n]) => `  ${name}: ${n}`);
  process.stdout.write(`fuzz ${file} (seed ${FUZZ_SEED}):\n${lines.join('\n')}\n`);
}

/** The folder of the committed corpus. */
export const CORPUS_DIR = join(__dirname, '..', 'fixtures', 'fuzz');

/** One corpus entry: a seed (a real input) or an input that once failed, with a note saying which. */
export interface CorpusCase {
  readonly file: string;
  readonly note: string;
  readonly input: unknown;
}

/** The corpus of a property: every `*.json` under test/fixtures/fuzz/<name>/ (`{ note, input }`). */
export function corpus(name: string): CorpusCase[] {
  const dir = join(CORPUS_DIR, name);
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files.sort().map((file) => {
    const entry = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { note?: string; input: unknown };
    return { file, note: entry.note ?? '', input: entry.input };
  });
}

/** A committed fixture file, parsed. */
export function fixture(path: string): unknown {
  return JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', path), 'utf8'));
}

/** How much CPU one case may take before it counts as a hang (a catastrophic regex, a quadratic loop). */
export const SLOW_CASE_MS = Number(process.env.FUZZ_SLOW_MS ?? 5000);

/** An error class a boundary may throw on purpose. */
export type ErrorClass = abstract new (...args: never[]) => Error;

function describeInput(input: unknown): string {
  const text = typeof input === 'string' ? JSON.stringify(input) : safeJson(input);
  return text.length > 400 ? `${text.slice(0, 400)}… (${text.length} characters)` : text;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * Runs `fn(input)`: it must return, or throw one of `allowed` (never a TypeError, RangeError or anything else), and
 * finish within {@link SLOW_CASE_MS}. Returns what `fn` returned, or undefined when it refused.
 */
export async function refusesCleanly<T>(
  input: unknown,
  fn: () => T | Promise<T>,
  allowed: readonly ErrorClass[],
): Promise<T | undefined> {
  // CPU time, not wall time: the machine may be busy with other work; what matters is what this input costs.
  const started = process.cpuUsage();
  let result: T | undefined;
  try {
    result = await fn();
  } catch (err) {
    if (!allowed.some((c) => err instanceof c)) {
      const e = err as Error;
      throw new Error(
        `unexpected ${e?.name ?? typeof err}: ${e?.message ?? String(err)}\ninput: ${describeInput(input)} (in full: ${keep(input)})\n${e?.stack ?? ''}`,
      );
    }
  }
  const used = process.cpuUsage(started);
  const ms = (used.user + used.system) / 1000;
  if (ms > SLOW_CASE_MS)
    throw new Error(
      `slow case: ${Math.round(ms)} ms of CPU (limit ${SLOW_CASE_MS})\ninput: ${describeInput(input)} (in full: ${keep(input)})`,
    );
  return result;
}

/** Writes a failing input to a file (the messages only show its start), ready to be copied into the corpus. */
function keep(input: unknown): string {
  const file = join(tmpdir(), `refit-fuzz-case-${process.pid}-${Date.now()}.json`);
  writeFileSync(file, `${JSON.stringify({ note: '', input }, null, 2)}\n`);
  return file;
}

/** Strings that have broken parsers before: empty, huge, unicode, control characters, prototype keys. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    '\u0000',
    '\uFEFF',
    '\uD800',
    '💥',
    '%',
    '%E0%A4%A',
    "'",
    '"',
    '\\',
    '{{',
    '}}',
    '${',
    '$(',
    '../..',
    '/etc/passwd',
    'refs/heads/',
    'refs/tags/',
    'sha256:',
    'NaN',
    '-1',
    '1e400',
    'null',
  ),
  fc.nat({ max: 200_000 }).map((n) => 'a'.repeat(n)),
  fc.nat({ max: 20_000 }).map((n) => '{'.repeat(n)),
  fc.nat({ max: 20_000 }).map((n) => '$'.repeat(n) + '{'),
);

/** Values of every JSON type and then some: huge numbers, deep nesting, objects with prototype keys. */
export const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 3 },
  { arbitrary: nastyString, weight: 3 },
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER,
    2 ** 53 + 1,
    [],
    {},
    [null],
    [[]],
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.nat({ max: 3000 }).map(deepArray),
  fc.nat({ max: 3000 }).map(deepObject),
  fc.constantFrom(
    JSON.parse('{"__proto__":{"polluted":true}}') as unknown,
    JSON.parse('{"constructor":{"prototype":{"polluted":true}}}') as unknown,
    JSON.parse('{"toString":"x","valueOf":1,"hasOwnProperty":null}') as unknown,
  ),
);

/** `[[[…]]]`, `depth` deep. */
export function deepArray(depth: number): unknown {
  let v: unknown = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** `{"a":{"a":…}}`, `depth` deep. */
export function deepObject(depth: number): unknown {
  let v: unknown = {};
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

type Path = (string | number)[];

function paths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  // Deeply nested values are mutated as a whole: walking into them would only overflow the walker's own stack.
  if (out.length > 2000 || prefix.length > 64) return out;
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

/** Sets an own property, as JSON.parse does (so `__proto__` becomes a key, not the prototype). */
function setOwn(target: Record<string | number, unknown>, key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** One change to a JSON document: replace a node, delete it, or add a key next to it. */
export type Mutation =
  | { readonly kind: 'replace'; readonly at: number; readonly value: unknown }
  | { readonly kind: 'delete'; readonly at: number }
  | { readonly kind: 'addKey'; readonly at: number; readonly key: string; readonly value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: nastyValue }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('addKey' as const),
      at: fc.nat(),
      key: fc.oneof(nastyString, fc.constantFrom('__proto__', 'constructor', 'type', 'events', 'data')),
      value: nastyValue,
    }),
    weight: 1,
  },
);

/** A deep copy of a JSON value (structuredClone recurses, and overflows on the deeply nested ones). */
function copy(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** Applies mutations to a copy of a JSON document. */
export function mutate(document: unknown, mutations: readonly Mutation[]): unknown {
  let doc = copy(document);
  for (const m of mutations) {
    const all = paths(doc);
    const path = all[m.at % all.length]!;
    if (path.length === 0) {
      // Values are copied in: a shared constant inserted twice would make a cycle.
      if (m.kind === 'replace') doc = copy(m.value);
      else if (m.kind === 'addKey' && doc !== null && typeof doc === 'object')
        setOwn(doc as Record<string, unknown>, m.key, copy(m.value));
      continue;
    }
    let parent = doc as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    const last = path[path.length - 1]!;
    if (m.kind === 'replace') setOwn(parent, last, copy(m.value));
    else if (m.kind === 'delete') {
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
    } else {
      const node = parent[last];
      if (node !== null && typeof node === 'object' && !Array.isArray(node))
        setOwn(node as Record<string, unknown>, m.key, copy(m.value));
      // An array with a named key is no JSON document (JSON.parse never makes one): keys go on objects only.
      else if (!Array.isArray(parent)) setOwn(parent, m.key, copy(m.value));
    }
  }
  return doc;
}

/** Real documents (seeds) with 0–4 mutations each: mostly-valid input that reaches deep into a parser. */
export function mutated(seeds: readonly unknown[]): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.array(mutation, { maxLength: 4 }))
    .map(([seedDoc, mutations]) => mutate(seedDoc, mutations));
}

/** Text with a few lines cut, doubled, swapped or replaced by nasty text: mutated Dockerfiles and task files. */
export function mutatedText(seeds: readonly string[], extra: fc.Arbitrary<string> = nastyString) {
  const edit = fc.record({
    line: fc.nat(),
    kind: fc.constantFrom('drop', 'dup', 'insert', 'splice'),
    text: extra,
  });
  return fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { maxLength: 4 })).map(([text, edits]) => {
    const lines = text.split('\n');
    for (const e of edits) {
      const i = lines.length ? e.line % lines.length : 0;
      if (e.kind === 'drop') lines.splice(i, 1);
      else if (e.kind === 'dup') lines.splice(i, 0, lines[i] ?? '');
      else if (e.kind === 'insert') lines.splice(i, 0, e.text);
      else {
        const line = lines[i] ?? '';
        const at = e.line % (line.length + 1);
        lines[i] = line.slice(0, at) + e.text + line.slice(at);
      }
    }
    return lines.join('\n');
  });
}

/** One `it` per corpus case of `name` (none when the folder is empty), each checked by `check`. */
export function itReplaysCorpus(
  name: string,
  property: string,
  check: (input: unknown) => Promise<unknown>,
): void {
  const cases = corpus(name);
  if (cases.length === 0) return;
  it.each(cases.map((c) => [c.file, c] as const))('replays corpus case %s', async (_file, c) => {
    countReplay(property, 1);
    await check(c.input);
  });
}
