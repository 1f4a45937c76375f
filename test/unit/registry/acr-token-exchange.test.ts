import { DestinationRefusedError, UpstreamUnavailableError } from '../../../src/errors';
import { loadConfig } from '../../../src/config';
import { createRefit } from '../../../src/refit';
import { parseImageReference } from '../../../src/registry/image-reference';
import { LOCAL_POLICY } from '../../../src/net/address-policy';
import { GuardedFetch } from '../../../src/net/guarded-fetch';
import {
  ACR_ENTRA_SCOPE,
  ACR_REFRESH_TOKEN_USERNAME,
  AcrTokenExchange,
  AcrTokenExchangeError,
  azureHomeRegistryCredentials,
  homeRegistryCredentials,
  isAcrRegistry,
  type AcrTokenExchangeOptions,
} from '../../../src/registry/acr-token-exchange';
import { RegistryProtocolError } from '../../../src/registry/client';
import { FakeAcrExchange, FakeIdentity, localJwt, serveAcrExchange } from '../../support/fake-acr-exchange';

const CLIENT_ID = '6f1c2a9e-4b7d-4c1e-9a3f-2d8b7e6c5a41';
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A fake ACR exchange on loopback, an identity with (or without) a role on it, and an exchange signed in as it. */
async function setup(
  options: {
    allowed?: boolean;
    refreshToken?: () => string;
    exchange?: Partial<AcrTokenExchangeOptions>;
  } = {},
): Promise<{
  fake: FakeAcrExchange;
  host: string;
  port: number;
  identity: FakeIdentity;
  exchange: AcrTokenExchange;
}> {
  const served = await serveAcrExchange((services) => new FakeAcrExchange(services, options.refreshToken));
  closers.push(() => served.stop());
  const identity = new FakeIdentity(CLIENT_ID);
  if (options.allowed !== false) served.fake.allow(identity.token);
  const http = new GuardedFetch(LOCAL_POLICY);
  closers.push(() => http.close());
  const exchange = new AcrTokenExchange({
    credential: identity,
    identity: CLIENT_ID,
    http,
    maxResponseBytes: 1 << 16,
    insecure: [served.host, `localhost:${served.port}`],
    ...options.exchange,
  });
  return { ...served, identity, exchange };
}

const HOUR = 3600_000;

describe('registry/acr-token-exchange', () => {
  describe('AcrTokenExchange.credentials', () => {
    it("exchanges the identity's Entra token for the null GUID and ACR's refresh token, in the documented form", async () => {
      const { fake, host, identity, exchange } = await setup();

      const credentials = await exchange.credentials(host);

      expect(credentials).toEqual({ username: ACR_REFRESH_TOKEN_USERNAME, password: fake.issued[0] });
      expect(ACR_REFRESH_TOKEN_USERNAME).toBe('00000000-0000-0000-0000-000000000000');
      expect(identity.requests).toEqual([[ACR_ENTRA_SCOPE]]);
      expect(fake.requests).toEqual([
        {
          contentType: 'application/x-www-form-urlencoded',
          grantType: 'access_token',
          service: host,
          tenant: null,
          accessToken: identity.token,
        },
      ]);
    });

    it('sends the tenant when one is configured', async () => {
      const { fake, host, exchange } = await setup({
        exchange: { tenantId: 'a1b2c3d4-0000-4000-8000-000000000001' },
      });

      await exchange.credentials(host);

      expect(fake.requests[0]!.tenant).toBe('a1b2c3d4-0000-4000-8000-000000000001');
    });

    it('keeps the credentials until shortly before the refresh token expires, then exchanges again', async () => {
      let now = Date.parse('2026-11-30T00:00:00Z');
      const exp = Math.floor(now / 1000) + 3 * 3600;
      const { fake, host, exchange } = await setup({
        refreshToken: () => localJwt({ exp, n: Math.random() }),
        exchange: { now: () => now },
      });
      const first = await exchange.credentials(host);

      now += 2 * HOUR;
      const later = await exchange.credentials(host);
      now = exp * 1000 - 4 * 60_000;
      const nearExpiry = await exchange.credentials(host);

      expect(later).toEqual(first);
      expect(fake.requests).toHaveLength(2);
      expect(nearExpiry.password).toBe(fake.issued[1]);
      expect(nearExpiry.password).not.toBe(first.password);
    });

    it('keeps a refresh token whose expiry cannot be read for a short time only', async () => {
      let now = Date.parse('2026-11-30T00:00:00Z');
      const { fake, host, exchange } = await setup({
        refreshToken: () => `opaque-${fake.issued.length}`,
        exchange: { now: () => now },
      });

      await exchange.credentials(host);
      now += 9 * 60_000;
      await exchange.credentials(host);
      expect(fake.requests).toHaveLength(1);
      now += 2 * 60_000;
      const renewed = await exchange.credentials(host);

      expect(fake.requests).toHaveLength(2);
      expect(renewed.password).toBe('opaque-1');
    });

    it('runs one exchange at a time per registry, and one per registry', async () => {
      const { fake, host, port, exchange } = await setup();

      const same = await Promise.all([1, 2, 3, 4, 5].map(() => exchange.credentials(host)));
      const other = await exchange.credentials(`localhost:${port}`);

      expect(new Set(same.map((c) => c.password)).size).toBe(1);
      expect(fake.requests.map((r) => r.service)).toEqual([host, `localhost:${port}`]);
      expect(other.password).toBe(fake.issued[1]);
    });

    it('raises AcrTokenExchangeError naming the registry, the identity and the missing role when ACR answers 401', async () => {
      const { host, identity, exchange } = await setup({ allowed: false });

      const error = await exchange.credentials(host).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(AcrTokenExchangeError);
      const message = (error as Error).message;
      expect(message).toContain(host);
      expect(message).toContain(CLIENT_ID);
      expect(message).toContain(`the identity has no AcrPull on ${host}`);
      expect(message).toContain('401 UNAUTHORIZED');
      expect(message).not.toContain(identity.token);
      expect(error).toMatchObject({ code: 'AcrTokenExchangeRefused', target: host });
    });

    it('keeps no refusal: once the role is granted, the next call signs in', async () => {
      const { fake, host, identity, exchange } = await setup({ allowed: false });
      await expect(exchange.credentials(host)).rejects.toThrow(AcrTokenExchangeError);

      fake.allow(identity.token);
      const credentials = await exchange.credentials(host);

      expect(credentials.password).toBe(fake.issued[0]);
    });

    it.each([
      [429, '7', 7],
      [503, undefined, undefined],
    ])(
      'raises UpstreamUnavailableError when ACR answers %d (Retry-After %s)',
      async (status, header, retryAfter) => {
        const { fake, host, exchange } = await setup();
        fake.outages.push({
          status,
          headers: header ? { 'retry-after': header } : {},
          body: { errors: [{ code: 'TOOMANYREQUESTS' }] },
        });

        const error = await exchange.credentials(host).catch((e: unknown) => e);

        expect(error).toBeInstanceOf(UpstreamUnavailableError);
        expect(error).toMatchObject({ retryAfter });
        expect((error as Error).message).toContain(`${host} answered ${status} to the token exchange`);
      },
    );

    it('raises UpstreamUnavailableError naming the identity when it gets no Entra token', async () => {
      const { fake, host, identity, exchange } = await setup();
      identity.failure = new Error('ManagedIdentityCredential: no managed identity endpoint found');

      const error = await exchange.credentials(host).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect((error as Error).message).toContain(
        `managed identity '${CLIENT_ID}' could not get an Entra token`,
      );
      expect(fake.requests).toHaveLength(0);
    });

    it('raises RegistryProtocolError when a 200 carries no refresh_token', async () => {
      const { fake, host, exchange } = await setup();
      fake.outages.push({ status: 200, headers: { 'content-type': 'application/json' }, body: {} });

      await expect(exchange.credentials(host)).rejects.toThrow(RegistryProtocolError);
    });

    it('sends the exchange through the guard: a destination the policy refuses is never reached', async () => {
      const http = new GuardedFetch({ privateAllowed: false, allowedHosts: [] });
      closers.push(() => http.close());
      const { fake, host, exchange } = await setup({ exchange: { http } });

      await expect(exchange.credentials(host)).rejects.toThrow(DestinationRefusedError);
      expect(fake.requests).toHaveLength(0);
    });
  });

  describe('homeRegistryCredentials', () => {
    it('gives the exchanged credentials for every name of the home registry and none for other registries', async () => {
      const { fake, host, port, exchange } = await setup();
      const credentialsFor = homeRegistryCredentials([host, `LOCALHOST:${port}`], exchange);

      const home = await credentialsFor.credentials(host);
      const alias = await credentialsFor.credentials(`localhost:${port}`);
      const other = await credentialsFor.credentials('ghcr.io');

      expect(home?.username).toBe(ACR_REFRESH_TOKEN_USERNAME);
      expect(alias?.username).toBe(ACR_REFRESH_TOKEN_USERNAME);
      expect(other).toBeUndefined();
      expect(fake.requests.map((r) => r.service)).toEqual([host, `localhost:${port}`]);
    });
    it('forgets the credentials of a home registry that refused them (the next call exchanges again), of no other', async () => {
      const { fake, host, exchange } = await setup();
      const home = homeRegistryCredentials([host], exchange);
      await home.credentials(host);

      home.refused('ghcr.io');
      await home.credentials(host);
      home.refused(host);
      const renewed = await home.credentials(host);

      expect(fake.requests).toHaveLength(2);
      expect(renewed?.password).toBe(fake.issued[1]);
    });
  });

  describe('azureHomeRegistryCredentials', () => {
    const env = {
      REFIT_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
      REFIT_STORAGE: 'UseDevelopmentStorage=true',
      REFIT_ACI_SUBSCRIPTION_ID: '00000000-0000-4000-8000-000000000001',
      REFIT_ACI_RESOURCE_GROUP: 'rg-builds',
      REFIT_ACI_LOCATION: 'eastus',
      REFIT_ACI_IDENTITY_ID:
        '/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/builder',
      REFIT_ACI_IDENTITY_CLIENT_ID: '00000000-0000-4000-8000-000000000002',
      REFIT_IDENTITY_CLIENT_ID: CLIENT_ID,
    };
    const http = new GuardedFetch(LOCAL_POLICY);
    afterAll(() => http.close());

    it('is undefined on a local stack: the home registry stays anonymous', () => {
      const config = loadConfig({ ...env, REFIT_REGISTRY: 'myreg.azurecr.io' });

      expect(azureHomeRegistryCredentials(config, http, new FakeIdentity(CLIENT_ID))).toBeUndefined();
    });

    it('is undefined under REFIT_EXECUTOR=aci when the home registry is not an ACR', () => {
      const config = loadConfig({ ...env, REFIT_EXECUTOR: 'aci', REFIT_REGISTRY: 'registry.example.com' });

      expect(azureHomeRegistryCredentials(config, http, new FakeIdentity(CLIENT_ID))).toBeUndefined();
    });

    it('signs in to an ACR home registry under REFIT_EXECUTOR=aci, and to nothing else', async () => {
      const identity = new FakeIdentity(CLIENT_ID);
      const config = loadConfig({ ...env, REFIT_EXECUTOR: 'aci', REFIT_REGISTRY: 'myreg.azurecr.io' });

      const credentialsFor = azureHomeRegistryCredentials(config, http, identity);

      expect(credentialsFor).toBeDefined();
      expect(await credentialsFor!.credentials('docker.io')).toBeUndefined();
      expect(identity.requests).toHaveLength(0);
    });

    it("is the registry client's default in createRefit: a lookup of the home registry signs in as the identity first", async () => {
      const identity = new FakeIdentity(CLIENT_ID);
      // The identity cannot get a token, so nothing leaves the machine: the error says which step failed.
      identity.failure = new Error('ManagedIdentityCredential: no managed identity endpoint found');
      const config = loadConfig({ ...env, REFIT_EXECUTOR: 'aci', REFIT_REGISTRY: 'myreg.azurecr.io' });
      const refit = createRefit(config, { azure: { credential: identity } });

      const error = await refit.registry
        .head(parseImageReference('myreg.azurecr.io/baseimages/node:20'))
        .catch((e: unknown) => e);

      expect(identity.requests).toEqual([[ACR_ENTRA_SCOPE]]);
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect((error as Error).message).toContain(
        `managed identity '${CLIENT_ID}' could not get an Entra token to sign in to myreg.azurecr.io`,
      );
    });
  });

  describe('isAcrRegistry', () => {
    it.each([
      ['myreg.azurecr.io', true],
      ['MyReg.AzureCR.io', true],
      ['myreg.azurecr.cn', true],
      ['myreg.azurecr.us', true],
      ['myreg.azurecr.io:443', true],
      ['azurecr.io', false],
      ['myreg.azurecr.io.example.com', false],
      ['127.0.0.1:5000', false],
      ['docker.io', false],
    ])('%s → %s', (registry, expected) => {
      expect(isAcrRegistry(registry)).toBe(expected);
    });
  });
});
