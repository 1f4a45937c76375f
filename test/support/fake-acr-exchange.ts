// A fake of ACR's token exchange (`POST /oauth2/exchange`, Azure/acr docs/AAD-OAuth.md) answering in the shapes of
// test/fixtures/acr, and a managed identity's TokenCredential handing out locally made Entra tokens.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';

const FIXTURES = join(__dirname, '..', 'fixtures', 'acr');
const example = JSON.parse(readFileSync(join(FIXTURES, 'PostRefreshToken.json'), 'utf8')) as {
  responses: { 200: { body: { refresh_token: string } } };
};
type Answer = { status: number; headers: Record<string, string>; body: unknown };
const errors = JSON.parse(readFileSync(join(FIXTURES, 'errors.json'), 'utf8')) as { unauthorized: Answer };

const KEY = randomBytes(32);
const b64url = (s: string): string => Buffer.from(s).toString('base64url');

/** A JWT made here (HS256 with a throwaway key): Refit reads its claims, as it does ACR's, and never verifies it. */
export function localJwt(claims: Record<string, unknown>): string {
  const signing = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signing}.${createHmac('sha256', KEY).update(signing).digest('base64url')}`;
}

/** A user-assigned managed identity: an Entra token per identity (a local JWT), every request recorded. */
export class FakeIdentity implements TokenCredential {
  /** The scopes of every token request. */
  readonly requests: string[][] = [];
  /** Thrown by the next token requests (the identity endpoint down, no identity attached). */
  failure: Error | undefined;
  /** The Entra token it hands out. */
  readonly token: string;

  constructor(readonly clientId: string) {
    this.token = localJwt({
      aud: 'https://containerregistry.azure.net',
      appid: clientId,
      exp: Math.floor(Date.now() / 1000) + 3600,
    });
  }

  getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken | null> {
    this.requests.push(Array.isArray(scopes) ? scopes : [scopes]);
    if (this.failure) return Promise.reject(this.failure);
    return Promise.resolve({ token: this.token, expiresOnTimestamp: Date.now() + 3600_000 });
  }
}

/** One exchange request as the fake read it (its form fields). */
export interface ExchangeRequest {
  readonly contentType: string | undefined;
  readonly grantType: string | null;
  readonly service: string | null;
  readonly tenant: string | null;
  readonly accessToken: string | null;
}

/**
 * ACR's `/oauth2/exchange` for the registries named `services`: 200 `{"refresh_token"}` to an Entra token of an
 * identity given a role (`allow`), 401 with ACR's error body to any other, 400 to a request that is not the
 * documented form.
 */
export class FakeAcrExchange {
  readonly requests: ExchangeRequest[] = [];
  /** Refresh tokens handed out, in order. */
  readonly issued: string[] = [];
  /** Answers sent instead of the normal ones, in order (a 429, a 503, a 200 without a token). */
  readonly outages: Answer[] = [];
  private readonly allowed = new Set<string>();

  constructor(
    private readonly services: readonly string[],
    /** The refresh token to hand out (default: a new JWT living three hours, with `exp` as ACR's carry). */
    private readonly refreshToken: () => string = () =>
      localJwt({
        jti: randomUUID(),
        iss: 'Azure Container Registry',
        exp: Math.floor(Date.now() / 1000) + 3 * 3600,
      }),
  ) {}

  /** Gives the identity whose Entra token this is a role on the registry (AcrPull or more). */
  allow(entraToken: string): void {
    this.allowed.add(entraToken);
  }

  /** Answers `POST /oauth2/exchange`; false for any other request (a proxy in front of a registry passes it on). */
  handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://x').pathname !== '/oauth2/exchange')
      return false;
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const request: ExchangeRequest = {
        contentType: req.headers['content-type'],
        grantType: form.get('grant_type'),
        service: form.get('service'),
        tenant: form.get('tenant'),
        accessToken: form.get('access_token'),
      };
      this.requests.push(request);
      const outage = this.outages.shift();
      if (outage) return send(res, outage);
      if (
        request.contentType !== 'application/x-www-form-urlencoded' ||
        request.grantType !== 'access_token' ||
        !request.service ||
        !this.services.includes(request.service) ||
        !request.accessToken
      )
        return send(res, {
          status: 400,
          headers: { 'content-type': 'application/json' },
          body: {
            errors: [
              { code: 'BAD_REQUEST', message: 'the form is not an access_token exchange for this registry' },
            ],
          },
        });
      if (!this.allowed.has(request.accessToken)) return send(res, errors.unauthorized);
      const refreshToken = this.refreshToken();
      this.issued.push(refreshToken);
      send(res, {
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: { ...example.responses[200].body, refresh_token: refreshToken },
      });
    });
    return true;
  };
}

function send(res: ServerResponse, answer: Answer): void {
  res.writeHead(answer.status, answer.headers);
  res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
}

/** Serves only the exchange on loopback (port 0: any free one); `host` is what a client names as the registry. */
export async function serveAcrExchange(
  fake: (services: string[]) => FakeAcrExchange,
): Promise<{ fake: FakeAcrExchange; host: string; port: number; stop(): Promise<void> }> {
  // The fake is made once the port (part of the registry's name) is known.
  const made: { fake?: FakeAcrExchange } = {};
  const server = createServer((req, res) => {
    if (!made.fake?.handle(req, res)) {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const instance = fake([`127.0.0.1:${port}`, `localhost:${port}`]);
  made.fake = instance;
  return {
    fake: instance,
    host: `127.0.0.1:${port}`,
    port,
    stop: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
