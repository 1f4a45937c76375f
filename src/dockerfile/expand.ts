/**
 * Expands `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}` and `${VAR+alt}` as BuildKit does in
 * FROM lines; `\$` is a literal `$`. An unset variable expands to nothing.
 */
export function expandVariables(
  text: string,
  vars: ReadonlyMap<string, string | undefined>,
  depth = 0,
): string {
  // Each nested `${A:-${B:-…}}` recurses once: bounded, so that a crafted line is a clear error, not a stack overflow.
  if (depth > MAX_NESTING)
    throw new Error(`'${text.slice(0, 40)}…' nests \${…} more than ${MAX_NESTING} deep`);
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '\\' && text[i + 1] === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    if (text[i + 1] === '{') {
      const close = matchingBrace(text, i + 1);
      if (close < 0) throw new Error(`'${text}' has an unterminated \${`);
      const inner = text.slice(i + 2, close);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-+])(.*))?$/s.exec(inner);
      if (!m) throw new Error(`'\${${inner}}' is not a variable reference this scanner understands`);
      const [, name, colon, op, word = ''] = m;
      const value = vars.get(name!);
      const set = colon ? value !== undefined && value !== '' : value !== undefined;
      if (op === '-') out += set ? value! : expandVariables(word, vars, depth + 1);
      else if (op === '+') out += set ? expandVariables(word, vars, depth + 1) : '';
      else out += value ?? '';
      i = close + 1;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (!m) {
      out += '$';
      i++;
      continue;
    }
    out += vars.get(m[0]) ?? '';
    i += 1 + m[0].length;
  }
  return out;
}

const MAX_NESTING = 32;

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}
