import fc from 'fast-check';
import { UpstreamUnavailableError, ValidationError } from '../../../src/errors';
import { KeyVaultSecretError, KeyVaultSecrets, parseSecretUri } from '../../../src/secrets/key-vault';
import { FakeKeyVault, tokenOf } from '../../support/fake-key-vault';

const IDENTITY = '11111111-2222-3333-4444-555555555555';
const OTHER = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const VAULT = 'myvault.vault.azure.net';

function refusal(uri: string): ValidationError {
  try {
    parseSecretUri(uri, 'f.password.value');
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error(`'${uri}' was accepted`);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('resolved');
}

describe('secrets/key-vault', () => {
  describe('parseSecretUri', () => {
    it('takes a secret URI apart, with or without a version, in the public and sovereign clouds', () => {
      expect(parseSecretUri('https://MyVault.vault.azure.net/secrets/db-password', 'f')).toEqual({
        uri: 'https://myvault.vault.azure.net/secrets/db-password',
        vaultUrl: 'https://myvault.vault.azure.net',
        vault: 'myvault',
        name: 'db-password',
      });
      expect(
        parseSecretUri(
          'https://myvault.vault.azure.net/secrets/mysecretname/4387e9f3d6e14c459867679a90fd0f79/',
          'f',
        ),
      ).toMatchObject({ name: 'mysecretname', version: '4387e9f3d6e14c459867679a90fd0f79' });
      expect(parseSecretUri('https://kv-1.vault.azure.cn/secrets/a', 'f').vaultUrl).toBe(
        'https://kv-1.vault.azure.cn',
      );
      expect(parseSecretUri('https://kv-1.vault.usgovcloudapi.net/secrets/a', 'f').vault).toBe('kv-1');
    });

    it.each([
      ['not a url', 'it is not a URL'],
      ['http://myvault.vault.azure.net/secrets/a', 'https only'],
      ['https://user:pw@myvault.vault.azure.net/secrets/a', 'credentials'],
      ['https://myvault.vault.azure.net:8443/secrets/a', 'port'],
      ['https://myvault.vault.azure.net/secrets/a?api-version=7.4', 'query'],
      ['https://myvault.vault.azure.net/secrets/a#x', 'fragment'],
      [
        'https://myvault.vault.azure.net.evil.example/secrets/a',
        "host 'myvault.vault.azure.net.evil.example'",
      ],
      ['https://vault.azure.net/secrets/a', "host 'vault.azure.net'"],
      ['https://127.0.0.1/secrets/a', "host '127.0.0.1'"],
      ['https://a.b.vault.azure.net/secrets/a', "'a.b' is not a vault name"],
      ['https://my--vault.vault.azure.net/secrets/a', "'my--vault' is not a vault name"],
      ['https://1vault.vault.azure.net/secrets/a', "'1vault' is not a vault name"],
      ['https://myvault.vault.azure.net/keys/a', '/secrets/<name>'],
      ['https://myvault.vault.azure.net/secrets', '/secrets/<name>'],
      ['https://myvault.vault.azure.net/secrets/a/b/c', '/secrets/<name>'],
      ['https://myvault.vault.azure.net/secrets/a_b', "'a_b' is not a secret name"],
      ['https://myvault.vault.azure.net/secrets/a/latest', "'latest' is not a secret version"],
    ])('refuses %s, naming the field and what is wrong', (uri, why) => {
      const err = refusal(uri);
      expect(err.target).toBe('f.password.value');
      expect(err.message).toContain(why);
      expect(err.status).toBe(400);
    });

    it('accepts exactly the URIs that Key Vault names a secret by, and returns them in canonical form', () => {
      const vaultName = fc.stringMatching(/^[a-z][a-z0-9]{1,22}[a-z0-9]$/);
      const secretName = fc.stringMatching(/^[0-9A-Za-z-]{1,127}$/);
      const version = fc.option(fc.stringMatching(/^[0-9a-f]{32}$/), { nil: undefined });
      fc.assert(
        fc.property(vaultName, secretName, version, (vault, name, v) => {
          const uri = `https://${vault}.vault.azure.net/secrets/${name}${v ? `/${v}` : ''}`;
          const ref = parseSecretUri(uri, 'f');
          expect(ref).toMatchObject({ vault, name, uri });
          expect(parseSecretUri(ref.uri, 'f')).toEqual(ref);
        }),
        { seed: 12, numRuns: 300 },
      );
    });

    it('refuses any host that is not a vault under a Key Vault suffix', () => {
      fc.assert(
        fc.property(fc.domain(), (host) => {
          fc.pre(!/\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net)$/.test(host));
          expect(() => parseSecretUri(`https://${host}/secrets/a`, 'f')).toThrow(ValidationError);
        }),
        { seed: 12, numRuns: 300 },
      );
    });
  });

  describe('KeyVaultSecrets', () => {
    function setup(options: { cacheMs?: number; now?: () => number } = {}) {
      const vault = new FakeKeyVault();
      const secrets = new KeyVaultSecrets({
        clientId: IDENTITY,
        credential: vault.credential,
        httpClient: vault,
        maxRetries: 0,
        ...options,
      });
      return { vault, secrets };
    }

    it("gets a secret's current value through Key Vault's challenge, with a token of the deployment's identity for Key Vault's resource", async () => {
      const { vault, secrets } = setup();
      vault.setSecret(VAULT, 'db-password', 'old value');
      vault.setSecret(VAULT, 'db-password', 's3cr3t-value');
      vault.allow(IDENTITY, VAULT);
      const value = await secrets.resolve(`https://${VAULT}/secrets/db-password`, { field: 'f' });
      expect(value).toBe('s3cr3t-value');
      // The SDK first sends no token, learns the resource from the 401 challenge, then asks the identity for it.
      expect(vault.requests.map((r) => r.authorization)).toEqual([undefined, `Bearer ${tokenOf(IDENTITY)}`]);
      expect(vault.requests[1]!.url).toMatch(
        /^https:\/\/myvault\.vault\.azure\.net\/secrets\/db-password\/\?api%2Dversion=/,
      );
      expect(vault.tokenRequests).toEqual([
        {
          clientId: IDENTITY,
          scopes: ['https://vault.azure.net/.default'],
          tenantId: '12345678-1234-1234-1234-123456789012',
        },
      ]);
    });

    it('gets the version the URI names, and reads with the identity acb names in clientID', async () => {
      const { vault, secrets } = setup();
      const first = vault.setSecret(VAULT, 'key', 'first');
      vault.setSecret(VAULT, 'key', 'second');
      vault.allow(OTHER, VAULT);
      const value = await secrets.resolve(`https://${VAULT}/secrets/key/${first}`, {
        field: 'f',
        clientId: OTHER,
      });
      expect(value).toBe('first');
      expect(vault.tokenRequests.map((t) => t.clientId)).toEqual([OTHER]);
    });

    it('reuses a value for a short time, then asks Key Vault again (a rotated secret is seen)', async () => {
      let now = 1_000_000;
      const { vault, secrets } = setup({ cacheMs: 60_000, now: () => now });
      vault.setSecret(VAULT, 'key', 'one');
      vault.allow(IDENTITY, VAULT);
      const uri = `https://${VAULT}/secrets/key`;
      expect(await secrets.resolve(uri, { field: 'f' })).toBe('one');
      vault.setSecret(VAULT, 'key', 'two');
      now += 59_000;
      expect(await secrets.resolve(uri, { field: 'f' })).toBe('one');
      const asked = vault.requests.length;
      now += 2_000;
      expect(await secrets.resolve(uri, { field: 'f' })).toBe('two');
      expect(vault.requests.length).toBeGreaterThan(asked);
    });

    it('says the identity lacks get on secrets of that vault when Key Vault answers 403, and does not keep the failure', async () => {
      const { vault, secrets } = setup();
      vault.setSecret(VAULT, 'key', 'the-value');
      const uri = `https://${VAULT}/secrets/key`;
      const err = await failure(secrets.resolve(uri, { field: 'properties.x' }));
      expect(err).toBeInstanceOf(KeyVaultSecretError);
      expect((err as KeyVaultSecretError).target).toBe('properties.x');
      expect(err.message).toContain(`managed identity '${IDENTITY}' lacks the get permission on secrets`);
      expect(err.message).toContain("secret 'key' of vault 'myvault'");
      expect(err.message).toContain('Forbidden');
      vault.allow(IDENTITY, VAULT);
      expect(await secrets.resolve(uri, { field: 'f' })).toBe('the-value');
    });

    it('says there is no such secret when Key Vault answers 404, naming the version', async () => {
      const { vault, secrets } = setup();
      vault.allow(IDENTITY, VAULT);
      const err = await failure(
        secrets.resolve(`https://${VAULT}/secrets/gone/0123456789abcdef0123456789abcdef`, { field: 'f' }),
      );
      expect(err).toBeInstanceOf(KeyVaultSecretError);
      expect(err.message).toContain(
        "Key Vault has no secret 'gone' (version 0123456789abcdef0123456789abcdef) of vault 'myvault' (SecretNotFound",
      );
    });

    it('reports Key Vault throttling or outage as an upstream failure with its Retry-After', async () => {
      const { vault, secrets } = setup();
      vault.allow(IDENTITY, VAULT);
      vault.setSecret(VAULT, 'key', 'v');
      vault.outages.push({
        status: 429,
        headers: { 'Retry-After': '7', 'Content-Type': 'application/json' },
        body: {
          error: {
            code: 'Throttled',
            message: 'Request was not processed because too many requests were received.',
          },
        },
      });
      const err = await failure(secrets.resolve(`https://${VAULT}/secrets/key`, { field: 'f' }));
      expect(err).toBeInstanceOf(UpstreamUnavailableError);
      expect((err as UpstreamUnavailableError).retryAfter).toBe(7);
    });

    it('refuses a malformed URI before any request is sent', async () => {
      const { vault, secrets } = setup();
      await expect(secrets.resolve('https://evil.example/secrets/a', { field: 'f' })).rejects.toThrow(
        ValidationError,
      );
      expect(vault.requests).toEqual([]);
    });
  });
});
