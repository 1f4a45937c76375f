import { ValidationError } from '../errors';

/** The fields `$filter` may name, in the case the table stores them (matched case-insensitively). */
const FIELDS: Record<string, string> = {
  runid: 'runId',
  status: 'status',
  runtype: 'runType',
  taskname: 'taskName',
};

/** Parentheses nest at most this deep: the parser recurses once per level, and a query string is up to 16 KiB. */
const MAX_NESTING = 32;

type Token = { kind: 'ident' | 'string' | 'lparen' | 'rparen'; text: string };

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < filter.length) {
    const ch = filter[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ kind: ch === '(' ? 'lparen' : 'rparen', text: ch });
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

/**
 * Turns Runs_List's `$filter` (`eq` on runId, status, runType, taskName, joined by `and`/`or`, with parentheses)
 * into a Table storage filter. Anything else is a 400 naming what is not supported.
 */
export function runFilterToTableQuery(filter: string): string {
  const tokens = tokenize(filter);
  let pos = 0;
  let depth = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isWord = (t: Token | undefined, word: string): boolean =>
    t?.kind === 'ident' && t.text.toLowerCase() === word;

  function comparison(): string {
    const t = tokens[pos++];
    if (t?.kind === 'lparen') {
      if (++depth > MAX_NESTING)
        throw new ValidationError(`$filter nests parentheses more than ${MAX_NESTING} deep`, '$filter');
      const inner = disjunction();
      depth--;
      if (tokens[pos++]?.kind !== 'rparen') throw new ValidationError("$filter is missing a ')'", '$filter');
      return `(${inner})`;
    }
    if (t?.kind !== 'ident')
      throw new ValidationError('$filter expects a field name (runId, status, runType, taskName)', '$filter');
    const field = FIELDS[t.text.toLowerCase()];
    if (!field) {
      throw new ValidationError(
        `$filter cannot filter on '${t.text}': use runId, status, runType or taskName`,
        '$filter',
      );
    }
    const op = tokens[pos++];
    if (!isWord(op, 'eq')) {
      throw new ValidationError(
        `$filter supports only 'eq', got '${op?.text ?? 'end of filter'}' after '${t.text}'`,
        '$filter',
      );
    }
    const value = tokens[pos++];
    if (value?.kind !== 'string')
      throw new ValidationError(`$filter expects a quoted value after '${t.text} eq'`, '$filter');
    return `${field} eq ${quote(value.text)}`;
  }
  function conjunction(): string {
    const parts = [comparison()];
    while (isWord(peek(), 'and')) {
      pos++;
      parts.push(comparison());
    }
    return parts.join(' and ');
  }
  function disjunction(): string {
    const parts = [conjunction()];
    while (isWord(peek(), 'or')) {
      pos++;
      parts.push(conjunction());
    }
    return parts.join(' or ');
  }

  if (tokens.length === 0) throw new ValidationError('$filter is empty', '$filter');
  const query = disjunction();
  if (pos < tokens.length)
    throw new ValidationError(`$filter has unexpected text at '${tokens[pos]!.text}'`, '$filter');
  return query;
}
