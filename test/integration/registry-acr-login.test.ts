// Refit as its own identity on an ACR-like home registry: a CNCF registry behind token auth whose token server takes
// the null GUID and an ACR refresh token (as ACR's does), fronted by a fake of ACR's /oauth2/exchange on the same host.
// The client is given no credentials: it signs in through the home registry's default credentials, exchanged for an
// Entra token of the identity. Deletes go to the same registry, and to one with deletes disabled.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_POLICY } from '../../src/net/address-policy';
import { GuardedFetch } from '../../src/net/guarded-fetch';
import {
  ACR_REFRESH_TOKEN_USERNAME,
  AcrTokenExchange,
  homeRegistryCredentials,
} from '../../src/registry/acr-token-exchange';
import { RegistryAccessDeniedError, RegistryClient, RegistryProtocolError } from '../../src/registry/client';
import { parseImageReference } from '../../src/registry/image-reference';
import { FakeAcrExchange, FakeIdentity, localJwt } from '../support/fake-acr-exchange';
import {
  makeSigningCert,
  pushImage,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  testPort,
  type FaultProxy,
  type PushedImage,
  type RunningRegistry,
  type TokenServer,
} from '../support/private-registry';

const PUSHER = { user: 'pusher', password: 'pusher-password' };
const CLIENT_ID = '6f1c2a9e-4b7d-4c1e-9a3f-2d8b7e6c5a41';
const amd64 = { os: 'Linux' as const, architecture: 'amd64' as const };

let dir: string;
let pushSide: RunningRegistry;
let tokenSide: RunningRegistry;
let noDeletes: RunningRegistry;
let tokens: TokenServer;
let home: FaultProxy;
let exchangeFake: FakeAcrExchange;
let identity: FakeIdentity;
let base: PushedImage;
const http = new GuardedFetch(LOCAL_POLICY);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refit-acr-login-'));
  const { key, cert } = makeSigningCert(dir);
  const service = 'refit-acr-home';
  const issuer = 'Azure Container Registry';
  // ACR's refresh tokens are JWTs living hours; this one is what the exchange hands out and the token server takes.
  const refreshToken = localJwt({ iss: issuer, exp: Math.floor(Date.now() / 1000) + 3 * 3600 });
  tokens = await startTokenServer(testPort(500), {
    issuer,
    service,
    user: ACR_REFRESH_TOKEN_USERNAME,
    password: refreshToken,
    key,
    cert,
    expiresIn: 300,
  });
  [pushSide, tokenSide, noDeletes] = await Promise.all([
    // The same storage behind two auth schemes: the test pushes with Basic, Refit reads with tokens.
    startRegistry(dir, 'push', testPort(501), { htpasswd: PUSHER }),
    startRegistry(dir, 'home', testPort(502), { token: { realm: tokens.realm, service, issuer, cert } }),
    startRegistry(join(dir, 'no-deletes'), 'no-deletes', testPort(503), null, { deleteEnabled: false }),
  ]);
  const homeHost = `127.0.0.1:${testPort(504)}`;
  exchangeFake = new FakeAcrExchange([homeHost], () => refreshToken);
  identity = new FakeIdentity(CLIENT_ID);
  exchangeFake.allow(identity.token);
  home = await startFaultProxy(testPort(504), tokenSide.host, exchangeFake.handle);
  base = await pushImage(pushSide.host, 'baseimages/node', '20', PUSHER, ['linux/amd64'], 'base');
});

afterAll(async () => {
  await Promise.all([
    pushSide?.stop(),
    tokenSide?.stop(),
    noDeletes?.stop(),
    tokens?.stop(),
    home?.stop(),
    http.close(),
  ]);
  rmSync(dir, { recursive: true, force: true });
});

/** Refit's registry client in Azure mode: the home registry (and only it) signed in to as `who`. */
function azureClient(who: FakeIdentity = identity): RegistryClient {
  const exchange = new AcrTokenExchange({
    credential: who,
    identity: who.clientId,
    http,
    maxResponseBytes: 1 << 20,
    insecure: [home.host],
  });
  return new RegistryClient([home.host, noDeletes.host], http, 1 << 20, {
    defaultCredentials: homeRegistryCredentials([home.host], exchange),
  });
}

describe('registry/client', () => {
  describe("RegistryClient with the home registry's default credentials (ACR token exchange)", () => {
    it("resolves an image on the home registry as Refit's identity when the caller gives no credentials", async () => {
      const before = exchangeFake.requests.length;
      const client = azureClient();
      const ref = parseImageReference(`${home.host}/baseimages/node:20`);

      const resolved = await client.resolve(ref, amd64);
      const digest = await client.head(ref);
      const anonymously = await new RegistryClient([home.host], http, 1 << 20).head(ref);

      expect(resolved).toEqual({ digest: base.digest, platformDigest: base.digest });
      expect(digest).toBe(base.digest);
      expect(anonymously).toBeNull(); // the registry refuses anyone else: the identity's credentials did it
      // One exchange for both lookups, and the token server saw the exchanged credentials.
      expect(exchangeFake.requests.length - before).toBe(1);
      expect(tokens.requests).toContainEqual({
        scope: 'repository:baseimages/node:pull',
        authenticated: true,
      });
    });

    it('raises the exchange refusal when the identity has no role on the home registry', async () => {
      const stranger = new FakeIdentity('0b6c3e1f-2222-4a4a-8b8b-1234567890ab');

      await expect(
        azureClient(stranger).head(parseImageReference(`${home.host}/baseimages/node:20`)),
      ).rejects.toThrow(`the identity has no AcrPull on ${home.host}`);
    });
  });

  describe('RegistryClient.deleteImage', () => {
    it("deletes a run-scoped image by tag with the scope 'delete', and a second delete is no error", async () => {
      const pushed = await pushImage(
        pushSide.host,
        'refit-runs/ab12/app',
        'step1',
        PUSHER,
        ['linux/amd64'],
        'run',
      );
      const client = azureClient();
      const ref = parseImageReference(`${home.host}/refit-runs/ab12/app:step1`);

      const deleted = await client.deleteImage(ref);
      const again = await client.deleteImage(ref);
      const byDigest = await client.deleteImage(
        parseImageReference(`${home.host}/refit-runs/ab12/app@${pushed.digest}`),
      );

      expect([deleted, again, byDigest]).toEqual([true, false, false]);
      expect(
        await client.head(parseImageReference(`${home.host}/refit-runs/ab12/app@${pushed.digest}`)),
      ).toBeNull();
      expect(tokens.requests).toContainEqual({
        scope: 'repository:refit-runs/ab12/app:delete',
        authenticated: true,
      });
    });

    it('deletes by digest', async () => {
      const pushed = await pushImage(
        pushSide.host,
        'refit-runs/cd34/app',
        'step2',
        PUSHER,
        ['linux/amd64'],
        'dig',
      );
      const client = azureClient();

      const deleted = await client.deleteImage(
        parseImageReference(`${home.host}/refit-runs/cd34/app@${pushed.digest}`),
      );

      expect(deleted).toBe(true);
      expect(await client.head(parseImageReference(`${home.host}/refit-runs/cd34/app:step2`))).toBeNull();
    });

    it('raises RegistryProtocolError saying so when the registry has deletes disabled (405)', async () => {
      await pushImage(noDeletes.host, 'refit-runs/ef56/app', 'step1', PUSHER, ['linux/amd64'], 'keep');
      const ref = parseImageReference(`${noDeletes.host}/refit-runs/ef56/app:step1`);

      const error = await azureClient()
        .deleteImage(ref)
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(RegistryProtocolError);
      expect((error as Error).message).toContain(`${noDeletes.host} does not allow deletes (405`);
      expect(await azureClient().head(ref)).not.toBeNull();
    });

    it('raises RegistryAccessDeniedError when the registry refuses the caller', async () => {
      await pushImage(pushSide.host, 'refit-runs/gh78/app', 'step1', PUSHER, ['linux/amd64'], 'refused');
      const anonymous = new RegistryClient([home.host], http, 1 << 20);

      await expect(
        anonymous.deleteImage(parseImageReference(`${home.host}/refit-runs/gh78/app:step1`)),
      ).rejects.toThrow(RegistryAccessDeniedError);
    });
  });
});
