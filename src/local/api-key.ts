// The local stack's API key and how the CLI finds it. `npm start` keeps the key in its data folder and also
// records it, by the stack's URL, in a user-level file (both mode 0600), so the `refit` CLI run from any folder
// by the same user finds it without REFIT_KEY; another local user can read neither.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

type Env = Record<string, string | undefined>;

/** The data folder's key file, created (32 random bytes, base64url, mode 0600) when missing; returns the key. */
export function ensureApiKey(file: string): string {
  if (existsSync(file)) {
    chmodSync(file, 0o600);
    const key = readFileSync(file, 'utf8').trim();
    if (key) return key;
  }
  const key = randomBytes(32).toString('base64url');
  writeFileSync(file, key + '\n', { mode: 0o600 });
  return key;
}

/** The user-level file mapping a local stack's URL to its key: `$XDG_CONFIG_HOME/refit/stack-keys.json`. */
export function stackKeysFile(env: Env = process.env): string {
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(config, 'refit', 'stack-keys.json');
}

// 127.0.0.1 and localhost name the same loopback stack: a key is found under either.
function origins(url: string): string[] {
  const parsed = new URL(url);
  const origin = parsed.origin.toLowerCase();
  const port = parsed.port ? `:${parsed.port}` : '';
  if (parsed.hostname === '127.0.0.1' || parsed.hostname === 'localhost')
    return [
      ...new Set([origin, `${parsed.protocol}//127.0.0.1${port}`, `${parsed.protocol}//localhost${port}`]),
    ];
  return [origin];
}

function readKeys(file: string): Record<string, string> {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return Object.fromEntries(
        Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'),
      );
    }
  } catch {
    // missing or unreadable: no keys yet
  }
  return {};
}

/** Records a stack's key under its URL in the user-level file (mode 0600, folder 0700); returns the file. */
export function rememberStackKey(url: string, key: string, env: Env = process.env): string {
  const file = stackKeysFile(env);
  const dir = join(file, '..');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = readKeys(file);
  for (const origin of origins(url)) keys[origin] = key;
  // Written beside, then renamed: a CLI reading at the same moment sees the old file or the new, never half.
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
  renameSync(temp, file);
  return file;
}

/** The key `npm start` recorded for the stack at `url`, if any. */
export function findStackKey(url: string, env: Env = process.env): string | undefined {
  const keys = readKeys(stackKeysFile(env));
  for (const origin of origins(url)) if (keys[origin]) return keys[origin];
  return undefined;
}

/** The key to send to the stack at `url`: REFIT_KEY when set, otherwise the one npm start recorded for it. */
export function apiKeyFor(url: string, env: Env = process.env): string | undefined {
  return env.REFIT_KEY || findStackKey(url, env);
}

const BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * The API key a request to the local host carries: the `x-functions-key` header; else `Authorization: Bearer <key>`,
 * as the Azure SDKs send their credential's token; else the `code` query, which Azure Functions accepts too. The
 * first one present is the one checked: a wrong x-functions-key is not rescued by another.
 */
export function requestApiKey(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  query: URLSearchParams,
): string | null {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  const given = first(headers['x-functions-key']);
  if (given !== undefined) return given;
  const authorization = first(headers.authorization);
  const bearer = authorization === undefined ? null : BEARER.exec(authorization);
  if (bearer) return bearer[1]!;
  return query.get('code');
}
