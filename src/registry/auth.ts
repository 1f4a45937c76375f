// Registry authentication: the WWW-Authenticate challenge (RFC 7235 §4.1, with RFC 6750's Bearer parameters), Basic
// credentials, and the distribution token flow's cache. The parser is our own: `auth-header` merges several
// challenges into one (two `realm`s in one list) and `http-auth-utils` refuses parameters it does not know (and is
// ESM-only); Renovate, the model for this folder, also tokenises the header itself (lib/util/http/www-authenticate.ts).
import { createHash } from 'node:crypto';
import { RefitError } from '../errors';

/** One challenge of a WWW-Authenticate header: its scheme, and its parameters (names lower-cased, values as sent). */
export interface AuthChallenge {
  /** The scheme as sent, e.g. `Bearer`; compare it case-insensitively. */
  readonly scheme: string;
  /** The auth-params; names are case-insensitive, so they are lower-cased here. */
  readonly params: Readonly<Record<string, string>>;
  /** The token68 form (`Negotiate abc==`), when the challenge has one instead of parameters. */
  readonly token68?: string;
}

/** A user name and password (or token) for one registry. */
export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/** A WWW-Authenticate header that does not follow RFC 7235: the registry cannot be authenticated to. */
export class MalformedChallengeError extends RefitError {
  constructor(why: string, target?: string) {
    super('MalformedChallenge', `the WWW-Authenticate header is malformed: ${why}`, 502, target);
  }
}

// RFC 7230 §3.2.6 tchar, and RFC 7235 §2.1 token68.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))/;

/**
 * Parses a WWW-Authenticate header into its challenges, in order: quoted values (with `\` escapes), commas inside
 * quotes, several challenges in one header, token68; throws {@link MalformedChallengeError} otherwise.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  let i = 0;
  const at = (): string => header[i] ?? '';
  const skipSpace = (): void => {
    while (at() === ' ' || at() === '\t') i++;
  };
  const skipListSeparators = (): void => {
    while (at() === ' ' || at() === '\t' || at() === ',') i++;
  };
  const token = (): string | undefined => {
    const m = TOKEN.exec(header.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const quoted = (): string => {
    let value = '';
    for (i++; i < header.length; i++) {
      const c = header[i]!;
      if (c === '"') {
        i++;
        return value;
      }
      if (c === '\\') i++;
      if (i < header.length) value += header[i];
    }
    throw new MalformedChallengeError(`a quoted value is not closed (at ${position(header, i)})`);
  };

  const challenges: AuthChallenge[] = [];
  skipListSeparators();
  if (i >= header.length) throw new MalformedChallengeError('it has no challenge');
  while (i < header.length) {
    const scheme = token();
    if (!scheme) throw new MalformedChallengeError(`expected an auth scheme at ${position(header, i)}`);
    if (i < header.length && at() !== ' ' && at() !== '\t' && at() !== ',')
      throw new MalformedChallengeError(`expected a space after the scheme '${scheme}'`);
    skipSpace();
    const t68 = TOKEN68.exec(header.slice(i));
    if (t68) {
      i += t68[0].length;
      challenges.push({ scheme, params: {}, token68: t68[0] });
      skipListSeparators();
      continue;
    }
    const params: Record<string, string> = {};
    while (i < header.length && at() !== ',') {
      const name = token();
      if (!name) throw new MalformedChallengeError(`expected a parameter name at ${position(header, i)}`);
      skipSpace();
      if (at() !== '=') throw new MalformedChallengeError(`expected '=' after '${name}'`);
      i++;
      skipSpace();
      const value = at() === '"' ? quoted() : token();
      if (value === undefined)
        throw new MalformedChallengeError(`the parameter '${name}' has no value (at ${position(header, i)})`);
      const key = name.toLowerCase();
      if (key in params) throw new MalformedChallengeError(`the parameter '${key}' appears twice`);
      params[key] = value;
      skipSpace();
      if (i >= header.length) break;
      if (at() !== ',') throw new MalformedChallengeError(`expected ',' at ${position(header, i)}`);
      skipListSeparators();
      // After a comma comes another parameter (a token and '='), or the scheme of the next challenge.
      const next = TOKEN.exec(header.slice(i));
      if (next && !/^[ \t]*=/.test(header.slice(i + next[0].length))) break;
    }
    challenges.push({ scheme, params });
    skipListSeparators();
  }
  return challenges;
}

function position(header: string, i: number): string {
  return i >= header.length ? 'the end' : `character ${i + 1}`;
}

/** The Authorization header value for Basic credentials (RFC 7617). */
export function basicAuthorization(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}

/** Who asks: a stable, one-way identity for credentials (a cache key must not hold the password itself). */
export function credentialIdentity(credentials: RegistryCredentials | undefined): string {
  if (!credentials) return 'anonymous';
  return createHash('sha256').update(`${credentials.username}\0${credentials.password}`).digest('hex');
}

/** The distribution spec's default (and minimum) token lifetime, when the token answer has no `expires_in`. */
export const DEFAULT_TOKEN_SECONDS = 60;
// A token is dropped this long before it expires, so a request never leaves with one about to lapse.
const EXPIRY_MARGIN_MS = 5000;

/** Bearer tokens kept per (registry, service, scope, credential) until they expire. */
export class TokenCache {
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  private static key(registry: string, service: string, scope: string, credential: string): string {
    return JSON.stringify([registry, service, scope, credential]);
  }

  /** The cached token, unless it has expired (or is about to). */
  get(registry: string, service: string, scope: string, credential: string): string | undefined {
    const key = TokenCache.key(registry, service, scope, credential);
    const entry = this.tokens.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt - EXPIRY_MARGIN_MS <= this.now()) {
      this.tokens.delete(key);
      return undefined;
    }
    return entry.token;
  }

  /** Keeps a token for `expiresIn` seconds from `issuedAt` (the token service's clock), or from now. */
  set(
    registry: string,
    service: string,
    scope: string,
    credential: string,
    token: { token: string; expiresIn?: number | undefined; issuedAt?: string | undefined },
  ): void {
    const seconds = Math.max(token.expiresIn ?? DEFAULT_TOKEN_SECONDS, DEFAULT_TOKEN_SECONDS);
    const issued = token.issuedAt ? Date.parse(token.issuedAt) : NaN;
    // A token service's clock may differ from ours: never count from an issue time in our future.
    const from = Number.isFinite(issued) ? Math.min(issued, this.now()) : this.now();
    this.tokens.set(TokenCache.key(registry, service, scope, credential), {
      token: token.token,
      expiresAt: from + seconds * 1000,
    });
  }

  /** Forgets a token the registry refused. */
  delete(registry: string, service: string, scope: string, credential: string): void {
    this.tokens.delete(TokenCache.key(registry, service, scope, credential));
  }
}
