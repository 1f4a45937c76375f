// A fake of Key Vault's secrets data plane for the real @azure/keyvault-secrets client (its HttpClient), and a fake
// TokenCredential: answers in the shapes of test/fixtures/key-vault (Microsoft's example and recorded answers).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createHttpHeaders,
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';

const FIXTURES = join(__dirname, '..', 'fixtures', 'key-vault');
const example = JSON.parse(readFileSync(join(FIXTURES, 'GetSecret-example.json'), 'utf8')) as {
  responses: { 200: { body: Record<string, unknown> } };
};
type Answer = { status: number; headers: Record<string, string>; body: unknown };
const errors = JSON.parse(readFileSync(join(FIXTURES, 'errors.json'), 'utf8')) as {
  challenge: Answer;
  notFound: Answer;
  forbidden: Answer;
};

/** A request the fake received (no secret value in it: a GET has no body). */
export interface KeyVaultRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
}

/** A token request the fake credential received. */
export interface TokenRequest {
  readonly clientId: string;
  readonly scopes: readonly string[];
  readonly tenantId: string | undefined;
}

/** The token the fake credential hands out for an identity. */
export const tokenOf = (clientId: string): string => `fake-token-for-${clientId}`;

/** A Key Vault with secrets in vaults and the identities allowed to get them. */
export class FakeKeyVault implements HttpClient {
  readonly requests: KeyVaultRequest[] = [];
  readonly tokenRequests: TokenRequest[] = [];
  private readonly secrets = new Map<string, { version: string; value: string }[]>();
  private readonly readers = new Map<string, Set<string>>();
  /** Answers to send instead of the normal ones, in order (a 503, a 429), for any request with a token. */
  readonly outages: Answer[] = [];

  /** Sets a secret (a new current version) in `vault` (its host name); returns its version. */
  setSecret(vaultHost: string, name: string, value: string): string {
    const version = randomBytes(16).toString('hex');
    const key = `${vaultHost}/${name.toLowerCase()}`;
    this.secrets.set(key, [...(this.secrets.get(key) ?? []), { version, value }]);
    return version;
  }

  /** Lets the identity `clientId` get secrets of `vaultHost`. */
  allow(clientId: string, vaultHost: string): void {
    this.readers.set(vaultHost, new Set([...(this.readers.get(vaultHost) ?? []), clientId.toLowerCase()]));
  }

  /** The credential of a user-assigned identity: hands out a token naming it, records what was asked. */
  credential = (clientId: string): TokenCredential => ({
    getToken: async (scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> => {
      this.tokenRequests.push({
        clientId,
        scopes: typeof scopes === 'string' ? [scopes] : scopes,
        tenantId: options?.tenantId,
      });
      return { token: tokenOf(clientId.toLowerCase()), expiresOnTimestamp: Date.now() + 3600_000 };
    },
  });

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    const authorization = request.headers.get('authorization');
    this.requests.push({ method: request.method, url: request.url, authorization });
    const url = new URL(request.url);
    const answer = (a: Answer): PipelineResponse => ({
      request,
      status: a.status,
      headers: createHttpHeaders(a.headers),
      bodyAsText: JSON.stringify(a.body),
    });
    // Key Vault answers a request without a token with the challenge that names the resource to ask a token for.
    if (!authorization) return answer(errors.challenge);
    const outage = this.outages.shift();
    if (outage) return answer(outage);
    const clientId = /^Bearer fake-token-for-(.+)$/.exec(authorization)?.[1];
    if (!clientId)
      return answer({
        ...errors.challenge,
        body: { error: { code: 'Unauthorized', message: 'AKV10032: Invalid issuer.' } },
      });
    if (!this.readers.get(url.hostname)?.has(clientId)) return answer(errors.forbidden);
    const match = /^\/secrets\/([^/]+)(?:\/([^/]*))?\/?$/.exec(url.pathname);
    if (request.method !== 'GET' || !match || !url.searchParams.get('api-version'))
      return answer({
        status: 400,
        headers: errors.notFound.headers,
        body: { error: { code: 'BadParameter', message: 'unexpected request' } },
      });
    const [, name, version] = match as unknown as [string, string, string | undefined];
    const versions = this.secrets.get(`${url.hostname}/${name.toLowerCase()}`) ?? [];
    const found = version ? versions.find((v) => v.version === version) : versions[versions.length - 1];
    if (!found) return answer(errors.notFound);
    const body = {
      ...example.responses[200].body,
      value: found.value,
      id: `https://${url.hostname}/secrets/${name}/${found.version}`,
    };
    return answer({ status: 200, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body });
  }
}
