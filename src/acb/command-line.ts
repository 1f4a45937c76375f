import { AcbError } from './errors';

/** docker build flags that take a value (the rest are switches): needed to tell the context from flag values. */
const BUILD_VALUE_FLAGS = new Set([
  '-t',
  '--tag',
  '-f',
  '--file',
  '--build-arg',
  '--target',
  '--platform',
  '--label',
  '--network',
  '--secret',
  '--ssh',
  '--cache-from',
  '--cache-to',
  '--add-host',
  '--iidfile',
  '--output',
  '-o',
  '--progress',
  '--isolation',
  '-m',
  '--memory',
  '--shm-size',
  '--ulimit',
  '--cpu-shares',
  '--cpuset-cpus',
]);

/** A command line as a user would type it: words with spaces or shell characters single-quoted. */
export function display(words: readonly string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Splits a command line into words as a POSIX shell would quote them: single quotes, double quotes (where `\\`
 * escapes `"`, `\\`, `$` and a backtick), backslash escapes, whitespace between words. Nothing is expanded and
 * no operator or comment is special (acb hands the line to a container, not to a shell).
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new AcbError(`unterminated ' in: ${line}`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && '"\\$`'.includes(line[j + 1] ?? '')) j++;
        word += line[j];
      }
      if (j >= line.length) throw new AcbError(`unterminated " in: ${line}`);
      i = j;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** The parts of a docker build command line a build step needs to know. */
export interface BuildCommand {
  readonly tags: string[];
  readonly file: string | undefined;
  readonly target: string | undefined;
  readonly buildArgs: Record<string, string>;
  readonly context: string;
  /** Index of the context among the words (-1 when defaulted to `.`). */
  readonly contextIndex: number;
  readonly fileIndex: number;
  /** Indices of the words that hold a build argument (`NAME=VALUE` after `--build-arg`, or `--build-arg=NAME=VALUE`). */
  readonly buildArgIndices: readonly number[];
  /** Every flag the line gives, as written (`-t`, `--build-arg`, `--volume` of `--volume=x`), in order. */
  readonly flags: readonly string[];
  readonly words: string[];
}

/**
 * Reads a build step's docker build arguments (acb's parse, with the value-taking flags known). A value-less
 * `--build-arg NAME` takes its value from `env`, as buildah does from its own environment: pass the environment the
 * build gets (the allow-listed one), never Refit's own.
 */
export function parseBuildCommand(
  line: string,
  env: Readonly<Record<string, string | undefined>>,
): BuildCommand {
  const words = splitWords(line);
  const tags: string[] = [];
  const buildArgs: Record<string, string> = {};
  const buildArgIndices: number[] = [];
  const flags: string[] = [];
  let file: string | undefined;
  let fileIndex = -1;
  let target: string | undefined;
  let contextIndex = -1;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const flag = eq > 0 ? w.slice(0, eq) : w;
    if (flag.startsWith('-') && flag !== '-') {
      flags.push(flag);
      const takesValue = BUILD_VALUE_FLAGS.has(flag);
      const valueIndex = eq > 0 ? i : i + 1;
      const value = eq > 0 ? w.slice(eq + 1) : words[i + 1];
      if (takesValue) {
        if (value === undefined) throw new AcbError(`build: ${flag} needs a value`);
        if (flag === '-t' || flag === '--tag') tags.push(value);
        if (flag === '-f' || flag === '--file') {
          file = value;
          fileIndex = valueIndex;
        }
        if (flag === '--target') target = value;
        if (flag === '--build-arg') {
          const k = value.indexOf('=');
          if (k > 0) buildArgs[value.slice(0, k)] = value.slice(k + 1);
          else buildArgs[value] = env[value] ?? '';
          buildArgIndices.push(valueIndex);
        }
        if (eq < 0) i++;
      }
      continue;
    }
    contextIndex = i;
  }
  return {
    tags,
    file,
    target,
    buildArgs,
    context: contextIndex >= 0 ? words[contextIndex]! : '.',
    contextIndex,
    fileIndex,
    buildArgIndices,
    flags,
    words,
  };
}
