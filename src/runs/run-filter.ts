import { ValidationError } from '../errors';
import type { Run } from './run';

/** The text fields `$filter` may compare, in the case the table stores them (matched case-insensitively). */
const TEXT_FIELDS: Record<string, string> = {
  runid: 'runId',
  status: 'status',
  runtype: 'runType',
  taskname: 'taskName',
};

/** The time fields: stored as ISO text of one format, which sorts as time, so the table compares them itself. */
const TIME_FIELDS: Record<string, string> = { createtime: 'createTime', finishtime: 'finishTime' };

const OPERATORS = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);

/** Parentheses nest at most this deep: the parser recurses once per level, and a query string is up to 16 KiB. */
const MAX_NESTING = 32;

/** A bare OData date-time literal (`2026-01-31T10:00:00Z`), as ACR's own filters write them. */
const BARE_TIME = /^\d{4}-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?)?/;

type Token = { kind: 'ident' | 'string' | 'time' | 'lparen' | 'rparen' | 'comma'; text: string };

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < filter.length) {
    const ch = filter[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')' || ch === ',') {
      tokens.push({ kind: ch === '(' ? 'lparen' : ch === ')' ? 'rparen' : 'comma', text: ch });
      i++;
    } else if (ch === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= filter.length) throw new ValidationError('$filter has an unterminated string', '$filter');
        if (filter[i] === "'") {
          if (filter[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += filter[i++]!;
      }
      tokens.push({ kind: 'string', text: value });
    } else {
      const time = BARE_TIME.exec(filter.slice(i));
      if (time) {
        tokens.push({ kind: 'time', text: time[0] });
        i += time[0].length;
        continue;
      }
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(filter.slice(i));
      if (!m)
        throw new ValidationError(
          `$filter has an unexpected character '${ch}' at position ${i + 1}`,
          '$filter',
        );
      tokens.push({ kind: 'ident', text: m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

function quote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** A compiled Runs_List `$filter`: what the table can answer, and what must be checked on each run it returns. */
export interface RunFilter {
  /** A Table storage filter that every matching run satisfies (exact unless {@link matches} is set). */
  readonly query: string;
  /** Set when the filter uses `contains(outputImageManifests, …)`, which the table cannot evaluate. */
  readonly matches: ((run: Run) => boolean) | undefined;
}

/** The names a run's output images answer to in `contains(outputImageManifests, …)`. */
function manifestNames(run: Run): Set<string> {
  const names = new Set<string>();
  for (const image of run.outputImages) {
    for (const repo of [image.repository, `${image.registry}/${image.repository}`]) {
      if (image.tag) names.add(`${repo}:${image.tag}`);
      names.add(`${repo}@${image.digest}`);
    }
  }
  return names;
}

type Predicate = (run: Run) => boolean;

/**
 * Compiles Runs_List's `$filter`: `eq`/`ne` on runId, status, runType, taskName; `eq`, `ne`, `gt`, `ge`, `lt`, `le`
 * on createTime and finishTime (a quoted or bare ISO 8601 time, or `datetime'…'`); `contains(outputImageManifests,
 * 'repo:tag')` (or `'repo@sha256:…'`, with or without the registry: true when a run pushed that image); joined by
 * `and`/`or`, with parentheses. Anything else is a 400 naming what is not supported.
 */
export function compileRunFilter(filter: string): RunFilter {
  const tokens = tokenize(filter);
  let pos = 0;
  let depth = 0;
  let usesContains = false;
  const peek = (): Token | undefined => tokens[pos];
  const isWord = (t: Token | undefined, word: string): boolean =>
    t?.kind === 'ident' && t.text.toLowerCase() === word;

  function time(field: string, op: string): string {
    let t = tokens[pos++];
    if (isWord(t, 'datetime') && tokens[pos]?.kind === 'string') t = tokens[pos++];
    if (t?.kind !== 'string' && t?.kind !== 'time')
      throw new ValidationError(`$filter expects a time after '${field} ${op}'`, '$filter');
    const ms = Date.parse(t.text);
    if (Number.isNaN(ms))
      throw new ValidationError(
        `$filter: '${t.text}' after '${field} ${op}' is not an ISO 8601 time (e.g. 2026-01-31T10:00:00Z)`,
        '$filter',
      );
    return new Date(ms).toISOString();
  }

  function contains(): [string, Predicate] {
    if (tokens[pos++]?.kind !== 'lparen')
      throw new ValidationError("$filter expects '(' after 'contains'", '$filter');
    const field = tokens[pos++];
    if (field?.kind !== 'ident' || field.text.toLowerCase() !== 'outputimagemanifests')
      throw new ValidationError(
        `$filter supports contains only on outputImageManifests, got '${field?.text ?? 'end of filter'}'`,
        '$filter',
      );
    if (tokens[pos++]?.kind !== 'comma')
      throw new ValidationError("$filter expects ',' after 'contains(outputImageManifests'", '$filter');
    const value = tokens[pos++];
    if (value?.kind !== 'string')
      throw new ValidationError(
        "$filter expects a quoted image ('repo:tag' or 'repo@sha256:…') in contains",
        '$filter',
      );
    if (tokens[pos++]?.kind !== 'rparen')
      throw new ValidationError("$filter is missing a ')' after contains(…", '$filter');
    usesContains = true;
    const image = value.text;
    // The table narrows to runs that pushed something; the image itself is checked on each run.
    return [`outputImages ne '[]'`, (run) => manifestNames(run).has(image)];
  }

  function comparison(): [string, Predicate] {
    const t = tokens[pos++];
    if (t?.kind === 'lparen') {
      if (++depth > MAX_NESTING)
        throw new ValidationError(`$filter nests parentheses more than ${MAX_NESTING} deep`, '$filter');
      const [inner, test] = disjunction();
      depth--;
      if (tokens[pos++]?.kind !== 'rparen') throw new ValidationError("$filter is missing a ')'", '$filter');
      return [`(${inner})`, test];
    }
    if (isWord(t, 'contains')) return contains();
    if (t?.kind !== 'ident')
      throw new ValidationError(
        '$filter expects a field name (runId, status, runType, taskName, createTime, finishTime) or contains(…)',
        '$filter',
      );
    const name = t.text.toLowerCase();
    const textField = TEXT_FIELDS[name];
    const timeField = TIME_FIELDS[name];
    const field = textField ?? timeField;
    if (!field) {
      throw new ValidationError(
        `$filter cannot filter on '${t.text}': use runId, status, runType, taskName, createTime, finishTime or contains(outputImageManifests, '…')`,
        '$filter',
      );
    }
    const opToken = tokens[pos++];
    const op = opToken?.kind === 'ident' ? opToken.text.toLowerCase() : '';
    if (!OPERATORS.has(op) || (textField && op !== 'eq' && op !== 'ne')) {
      throw new ValidationError(
        `$filter supports ${textField ? "'eq' and 'ne'" : "'eq', 'ne', 'gt', 'ge', 'lt' and 'le'"} after '${t.text}', got '${opToken?.text ?? 'end of filter'}'`,
        '$filter',
      );
    }
    let value: string;
    if (timeField) {
      value = time(t.text, op);
    } else {
      const v = tokens[pos++];
      if (v?.kind !== 'string')
        throw new ValidationError(`$filter expects a quoted value after '${t.text} ${op}'`, '$filter');
      value = v.text;
    }
    const read = (run: Run): string | undefined =>
      (run as unknown as Record<string, string | undefined>)[field];
    const compare: Record<string, (a: string, b: string) => boolean> = {
      eq: (a, b) => a === b,
      ne: (a, b) => a !== b,
      gt: (a, b) => a > b,
      ge: (a, b) => a >= b,
      lt: (a, b) => a < b,
      le: (a, b) => a <= b,
    };
    const test = compare[op]!;
    // As the table does: a run without the field (finishTime of a running run) matches no comparison.
    const predicate: Predicate = (run) => {
      const actual = field === 'taskName' ? (read(run) ?? '') : read(run);
      return actual !== undefined && test(actual, value);
    };
    return [`${field} ${op} ${quote(value)}`, predicate];
  }
  function conjunction(): [string, Predicate] {
    const parts = [comparison()];
    while (isWord(peek(), 'and')) {
      pos++;
      parts.push(comparison());
    }
    return [parts.map((p) => p[0]).join(' and '), (run) => parts.every((p) => p[1](run))];
  }
  function disjunction(): [string, Predicate] {
    const parts = [conjunction()];
    while (isWord(peek(), 'or')) {
      pos++;
      parts.push(conjunction());
    }
    return [parts.map((p) => p[0]).join(' or '), (run) => parts.some((p) => p[1](run))];
  }

  if (tokens.length === 0) throw new ValidationError('$filter is empty', '$filter');
  const [query, predicate] = disjunction();
  if (pos < tokens.length)
    throw new ValidationError(`$filter has unexpected text at '${tokens[pos]!.text}'`, '$filter');
  return { query, matches: usesContains ? predicate : undefined };
}
