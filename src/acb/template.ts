/**
 * The Go-template subset acb task files use: `{{ .Run.ID }}`, `{{ .Values.a.b }}`, `{{ .Secrets.id }}`, string
 * literals, pipelines into Sprig's common functions (`{{ .Run.ID | upper }}`, `{{ .Values.tag | default "latest" }}`),
 * calls (`{{ upper .Run.ID }}`), trim markers (`{{-`, `-}}`) and comments. As in acb (missingkey=zero), a missing
 * value renders as an empty string. Control actions (if, range, with, define) are refused with a clear error.
 */

/** What a template can refer to. */
export interface TemplateData {
  readonly Run: Readonly<Record<string, string>>;
  readonly Values: Readonly<Record<string, unknown>>;
  readonly Secrets?: Readonly<Record<string, string>>;
}

/** A template that cannot be rendered: names the action at fault and its line. */
export class TemplateError extends Error {}

type Fn = (...args: unknown[]) => unknown;

const text = (v: unknown): string => {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
};

const empty = (v: unknown): boolean =>
  v === undefined ||
  v === null ||
  v === '' ||
  v === 0 ||
  v === false ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && Object.keys(v).length === 0);

/** Sprig's common string functions (the ones acb's docs and samples use). */
const FUNCTIONS: Readonly<Record<string, Fn>> = {
  upper: (s) => text(s).toUpperCase(),
  lower: (s) => text(s).toLowerCase(),
  title: (s) => text(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  trim: (s) => text(s).trim(),
  trimPrefix: (p, s) => (text(s).startsWith(text(p)) ? text(s).slice(text(p).length) : text(s)),
  trimSuffix: (p, s) =>
    text(s).endsWith(text(p)) ? text(s).slice(0, -text(p).length || undefined) : text(s),
  replace: (from, to, s) => text(s).split(text(from)).join(text(to)),
  quote: (...xs) => xs.map((x) => JSON.stringify(text(x))).join(' '),
  squote: (...xs) => xs.map((x) => `'${text(x)}'`).join(' '),
  b64enc: (s) => Buffer.from(text(s)).toString('base64'),
  b64dec: (s) => Buffer.from(text(s), 'base64').toString('utf8'),
  default: (d, v) => (empty(v) ? d : v),
  print: (...xs) => xs.map(text).join(''),
  toJson: (v) => JSON.stringify(v ?? null),
};

const CONTROL = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block']);

/** Splits a pipeline command into words: strings (quoted or raw), fields, identifiers. */
function words(command: string, where: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|[^\s"`]+)/y;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(command))) {
    out.push(m[1]!);
    last = re.lastIndex;
  }
  if (command.slice(last).trim())
    throw new TemplateError(`${where}: cannot read '${command.slice(last).trim()}'`);
  return out;
}

function field(path: string, data: TemplateData): unknown {
  let value: unknown = data;
  for (const part of path.split('.').filter(Boolean)) {
    // Own keys only: `.Values.constructor` must be a missing value, not Object's constructor function.
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function operand(word: string, data: TemplateData, where: string): unknown {
  if (word.startsWith('"')) {
    try {
      return JSON.parse(word) as string;
    } catch {
      throw new TemplateError(`${where}: ${word} is not a valid string (an unknown escape?)`);
    }
  }
  if (word.startsWith('`')) return word.slice(1, -1);
  if (word.startsWith('.')) {
    if (word === '.Build.ID') return data.Run.ID;
    return field(word, data);
  }
  if (/^-?\d+(\.\d+)?$/.test(word)) return Number(word);
  if (word === 'true' || word === 'false') return word === 'true';
  if (word === 'nil') return undefined;
  throw new TemplateError(`${where}: '${word}' is not a value (use .Run.X, .Values.X or a quoted string)`);
}

/** Splits an action on the `|` that are outside quotes. */
function splitPipeline(action: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quote: string | null = null;
  for (let i = 0; i < action.length; i++) {
    const c = action[i]!;
    if (quote) {
      current += c;
      if (c === '\\' && quote === '"') current += action[++i] ?? '';
      else if (c === quote) quote = null;
    } else if (c === '"' || c === '`') {
      quote = c;
      current += c;
    } else if (c === '|') {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

function evaluate(action: string, data: TemplateData, where: string): unknown {
  const commands = splitPipeline(action).map((c) => c.trim());
  let piped: { value: unknown } | undefined;
  for (const command of commands) {
    if (!command) throw new TemplateError(`${where}: an empty command in the pipeline`);
    const [head, ...rest] = words(command, where);
    let value: unknown;
    if (head && Object.hasOwn(FUNCTIONS, head)) {
      const args = rest.map((w) => operand(w, data, where));
      if (piped) args.push(piped.value);
      value = FUNCTIONS[head]!(...args);
    } else if (head && /^[a-zA-Z_]\w*$/.test(head) && !/^(true|false|nil)$/.test(head)) {
      if (CONTROL.has(head))
        throw new TemplateError(`${where}: '{{ ${head} }}' actions are not supported in task files`);
      throw new TemplateError(`${where}: unknown function '${head}'`);
    } else {
      if (rest.length > 0 || piped) throw new TemplateError(`${where}: '${command}' is not a function call`);
      value = operand(head!, data, where);
    }
    piped = { value };
  }
  return piped?.value;
}

/** Renders a template. */
export function renderTemplate(template: string, data: TemplateData): string {
  let out = '';
  let i = 0;
  for (;;) {
    const open = template.indexOf('{{', i);
    if (open < 0) {
      out += template.slice(i);
      break;
    }
    const close = template.indexOf('}}', open + 2);
    const line = template.slice(0, open).split('\n').length;
    if (close < 0) throw new TemplateError(`line ${line}: '{{' is never closed`);
    let before = template.slice(i, open);
    let inner = template.slice(open + 2, close);
    let next = close + 2;
    if (inner.startsWith('-') && /^-\s/.test(inner)) {
      before = before.replace(/\s+$/, '');
      inner = inner.slice(1);
    }
    if (inner.endsWith('-') && /\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      const rest = template.slice(next);
      next += rest.length - rest.replace(/^\s+/, '').length;
    }
    out += before;
    const action = inner.trim();
    if (!(action.startsWith('/*') && action.endsWith('*/'))) {
      const where = `line ${line}, {{ ${action} }}`;
      if (!action) throw new TemplateError(`line ${line}: an empty action '{{}}'`);
      out += text(evaluate(action, data, where)).replace(/<no value>/g, '');
    }
    i = next;
  }
  return out;
}
