import { parse as parseYaml } from 'yaml';
import { AcbError } from './errors';
import { scalar } from './scalar';
import { checkYamlLimits } from './yaml-limits';

/** The `$` aliases every v1.1.0 task file has (acb's global defaults); there is no `$TaskName`, as in acb. */
export const GLOBAL_ALIASES: Readonly<Record<string, string>> = {
  ID: '{{.Run.ID}}',
  SharedVolume: '{{.Run.SharedVolume}}',
  Registry: '{{.Run.Registry}}',
  RegistryName: '{{.Run.RegistryName}}',
  Date: '{{.Run.Date}}',
  OS: '{{.Run.OS}}',
  Architecture: '{{.Run.Architecture}}',
  Commit: '{{.Run.Commit}}',
  Branch: '{{.Run.Branch}}',
};

/** Image aliases usable as the first word of a `cmd` (acb's Linux defaults). */
export const IMAGE_ALIASES: Readonly<Record<string, string>> = {
  acr: 'mcr.microsoft.com/acr/acr-cli:0.19',
  az: 'mcr.microsoft.com/acr/azure-cli:2ff604c',
  bash: 'mcr.microsoft.com/acr/bash:2ff604c',
  curl: 'mcr.microsoft.com/acr/curl:2ff604c',
  cssc: 'mcr.microsoft.com/acr/cssc:2ff604c',
};

/** A task file's `alias:` block. */
export interface AliasBlock {
  readonly values?: Readonly<Record<string, string>>;
  readonly src?: readonly string[];
  readonly directive?: string;
}

/**
 * Cuts the top-level `alias:` block out of a task file: it runs to the next top-level key. Returns the block's
 * body (its lines, as YAML) and the rest of the file.
 */
export function separateAliases(text: string): { block: string | undefined; rest: string } {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^alias\s*:/.test(l));
  if (start < 0) return { block: undefined, rest: text };
  let end = start + 1;
  while (end < lines.length && !/^[^\s:#-][^:]*:/.test(lines[end]!)) end++;
  return {
    block: lines.slice(start, end).join('\n'),
    rest: [...lines.slice(0, start), ...lines.slice(end)].join('\n'),
  };
}

/** Reads an alias block (already rendered) into a map of aliases, checking keys and the directive. */
export function parseAliasBlock(block: string): AliasBlock {
  checkYamlLimits(block, 'alias');
  let parsed: unknown;
  try {
    parsed = parseYaml(block);
  } catch (err) {
    throw new AcbError(`alias: the block is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const alias = (parsed as { alias?: unknown } | null)?.alias ?? {};
  if (typeof alias !== 'object' || alias === null || Array.isArray(alias))
    throw new AcbError('alias: must be a map with values, src and directive');
  const { values, src, directive } = alias as Record<string, unknown>;
  const out: { values?: Record<string, string>; src?: string[]; directive?: string } = {};
  if (values !== undefined && values !== null) {
    if (typeof values !== 'object' || Array.isArray(values))
      throw new AcbError('alias.values: must be a map of name: value');
    out.values = Object.fromEntries(
      Object.entries(values as Record<string, unknown>).map(([k, v]) => [k, scalar(v)]),
    );
  }
  if (src !== undefined && src !== null) {
    if (!Array.isArray(src) || src.some((s) => typeof s !== 'string'))
      throw new AcbError('alias.src: must be a list of files or URLs');
    out.src = src as string[];
  }
  if (directive !== undefined && directive !== null) {
    const d = scalar(directive);
    if ([...d].length !== 1)
      throw new AcbError(`alias.directive '${d}': $ directive can only be overwritten by a single character`);
    if (/^[a-zA-Z0-9]$/.test(d))
      throw new AcbError(`alias.directive '${d}': overwritten directives may not be alphanumeric characters`);
    out.directive = d;
  }
  return out;
}

/** Parses an alias file (from `src`): a map of name: value. */
export function parseAliasFile(text: string, name: string): Record<string, string> {
  checkYamlLimits(text, `alias file '${name}'`);
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    throw new AcbError(`alias file '${name}' is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new AcbError(`alias file '${name}' must be a map of name: value`);
  return Object.fromEntries(
    Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, scalar(v)]),
  );
}

/**
 * The effective aliases: inline values first, then the `src` files (a later file beats an earlier one), then the
 * global defaults; an alias once defined is never overwritten.
 */
export function mergeAliases(
  inline: Readonly<Record<string, string>>,
  files: readonly Readonly<Record<string, string>>[],
  globals: Readonly<Record<string, string>> = { ...GLOBAL_ALIASES, ...IMAGE_ALIASES },
): Record<string, string> {
  const merged: Record<string, string> = {};
  const add = (map: Readonly<Record<string, string>>): void => {
    for (const [k, v] of Object.entries(map)) {
      if (!/^[a-zA-Z0-9]+$/.test(k))
        throw new AcbError(`alias '${k}': alias key names only support alphanumeric characters`);
      if (!(k in merged)) merged[k] = v;
    }
  };
  add(inline);
  for (const file of [...files].reverse()) add(file);
  add(globals);
  return merged;
}

/**
 * Replaces `<directive><name>` with the alias's value: the name is the longest alphanumeric run after the
 * directive; an unknown name is left as it is; a doubled directive is a literal one.
 */
export function expandAliases(
  text: string,
  aliases: Readonly<Record<string, string>>,
  directive = '$',
): string {
  const chars = [...text];
  let out = '';
  for (let i = 0; i < chars.length;) {
    const c = chars[i]!;
    if (c !== directive) {
      out += c;
      i++;
      continue;
    }
    if (chars[i + 1] === directive) {
      out += directive;
      i += 2;
      continue;
    }
    let j = i + 1;
    while (j < chars.length && /^[a-zA-Z0-9]$/.test(chars[j]!)) j++;
    const name = chars.slice(i + 1, j).join('');
    out += name && name in aliases ? aliases[name] : directive + name;
    i = j;
  }
  return out;
}
