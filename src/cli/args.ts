import { readFile } from 'node:fs/promises';
import { Option } from 'commander';
import { CliError } from './client';

/** Collects a repeatable option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `K=V`, or `K` alone, which takes its value from the environment as az does. */
export function keyValue(entry: string, flag: string): { name: string; value: string } {
  const eq = entry.indexOf('=');
  const name = eq < 0 ? entry : entry.slice(0, eq);
  if (!name) throw new CliError(`${flag} '${entry}' has no name: use NAME=VALUE`);
  const value = eq < 0 ? process.env[name] : entry.slice(eq + 1);
  if (value === undefined)
    throw new CliError(`${flag} '${name}' has no value and no environment variable ${name} is set`);
  return { name, value };
}

/**
 * `--set NAME[=VALUE]` / `--set-secret`: split on the first `=` (`b===ll` is b = `==ll`); without `=` the value is
 * empty (az: no environment fallback for task values).
 */
export function setValue(entry: string, flag: string): { name: string; value: string } {
  const eq = entry.indexOf('=');
  const name = eq < 0 ? entry : entry.slice(0, eq);
  if (!name) throw new CliError(`${flag} '${entry}' has no name: use NAME=VALUE`);
  return { name, value: eq < 0 ? '' : entry.slice(eq + 1) };
}

/** A file named on the command line (`-` is standard input); a missing one is an error naming it. */
export async function readLocal(path: string, what: string): Promise<string> {
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  return readFile(path, 'utf8').catch(() => {
    throw new CliError(`${what} '${path}' was not found`);
  });
}

/** A whole-number option (seconds, CPUs), or undefined when not given. */
export function intOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new CliError(`${flag} must be a whole number, got '${value}'`);
  return n;
}

/** `OS[/ARCH[/VARIANT]]` as az takes --platform. */
export function parsePlatform(text: string): { os: string; architecture: string; variant?: string } {
  const [os, architecture = 'amd64', variant] = text.split('/');
  if (!os) throw new CliError(`--platform '${text}' must be OS[/ARCH[/VARIANT]], e.g. linux/amd64`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** Prints a value as indented JSON, az's default output. */
export function print(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** `-o json|table|tsv`. */
export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format')
    .choices(['json', 'table', 'tsv'])
    .default('json');
}
