import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DestinationRefusedError,
  ResponseTooLargeError,
  UpstreamUnavailableError,
} from '../../../src/errors';
import { LOCAL_POLICY } from '../../../src/net/address-policy';
import { GuardedFetch } from '../../../src/net/guarded-fetch';
import type { ImageReference } from '../../../src/registry/image-reference';
import {
  parseRetryAfter,
  RegistryClient,
  registryHost,
  repositoryPath,
  type RegistryClientOptions,
} from '../../../src/registry/client';

const linux = { os: 'Linux' as const, architecture: 'amd64' as const };
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A registry stand-in on loopback: a real HTTP server answering as the test says. */
async function registry(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((r) => server.close(r)));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(host: string, maxBytes = 4096, options: RegistryClientOptions = {}): RegistryClient {
  const http = new GuardedFetch(LOCAL_POLICY);
  closers.push(() => http.close());
  return new RegistryClient([host], http, maxBytes, options);
}

const ref = (host: string): ImageReference => ({
  registry: host,
  repository: 'base',
  tag: '1',
  digest: null,
});
const manifest = JSON.stringify({ schemaVersion: 2, layers: [] });

describe('registry/client', () => {
  describe('RegistryClient.resolve', () => {
    it('follows the anonymous token flow to a realm on an allowed address', async () => {
      let host = '';
      host = await registry((req, res) => {
        if (req.url?.startsWith('/token')) return res.end(JSON.stringify({ token: 'anon' }));
        if (req.headers.authorization !== 'Bearer anon') {
          res.statusCode = 401;
          res.setHeader('www-authenticate', `Bearer realm="http://${host}/token",service="r",scope="s"`);
          return res.end();
        }
        res.setHeader('content-type', 'application/vnd.oci.image.manifest.v1+json');
        res.setHeader('docker-content-digest', 'sha256:aa');
        res.end(manifest);
      });

      const resolved = await client(host).resolve(ref(host), linux);

      expect(resolved).toEqual({ digest: 'sha256:aa', platformDigest: 'sha256:aa' });
    });

    it('refuses a token realm on the metadata address, at once and as a refusal (not "unavailable")', async () => {
      const host = await registry((_req, res) => {
        res.statusCode = 401;
        res.setHeader(
          'www-authenticate',
          'Bearer realm="http://169.254.169.254/latest/meta-data/",service="x"',
        );
        res.end();
      });

      const err = await client(host)
        .resolve(ref(host), linux)
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(DestinationRefusedError);
      expect((err as Error).message).toContain('169.254.169.254 is a cloud metadata address');
    });

    it('refuses a manifest redirected to a link-local address', async () => {
      const host = await registry((_req, res) => {
        res.statusCode = 307;
        res.setHeader('location', 'http://169.254.10.1/manifest');
        res.end();
      });

      const err = await client(host)
        .resolve(ref(host), linux)
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(DestinationRefusedError);
      expect((err as Error).message).toContain('a link-local address');
    });

    it('fails a manifest larger than the limit, naming the setting', async () => {
      const host = await registry((_req, res) => {
        res.setHeader('content-type', 'application/vnd.oci.image.index.v1+json');
        res.setHeader('docker-content-digest', 'sha256:bb');
        res.end(JSON.stringify({ manifests: [], padding: 'x'.repeat(10000) }));
      });

      const err = await client(host, 4096)
        .resolve(ref(host), linux)
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(ResponseTooLargeError);
      expect((err as Error).message).toContain('4096 bytes (REFIT_MAX_REGISTRY_RESPONSE_BYTES)');
    });

    it('fails a token answer larger than the limit, naming the setting', async () => {
      let host = '';
      host = await registry((req, res) => {
        if (req.url?.startsWith('/token')) return res.end(JSON.stringify({ token: 'x'.repeat(10000) }));
        res.statusCode = 401;
        res.setHeader('www-authenticate', `Bearer realm="http://${host}/token"`);
        res.end();
      });

      const err = await client(host, 4096)
        .resolve(ref(host), linux)
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(ResponseTooLargeError);
    });
  });
  describe('RegistryClient.head', () => {
    it('records the rate-limit headers of the last answer, per registry', async () => {
      const host = await registry((_req, res) => {
        res.setHeader('docker-content-digest', 'sha256:cc');
        res.setHeader('ratelimit-limit', '100;w=21600');
        res.setHeader('ratelimit-remaining', '42;w=21600');
        res.end();
      });
      const c = client(host, 4096, { now: () => 1234 });

      await c.head(ref(host));

      expect(c.rateLimit(host)).toEqual({ limit: 100, remaining: 42, windowSeconds: 21600, seenAt: 1234 });
      expect(c.rateLimit('elsewhere:5000')).toBeUndefined();
    });

    it('speaks plain HTTP to a registry on loopback that is not listed as insecure', async () => {
      const host = await registry((_req, res) => {
        res.setHeader('docker-content-digest', 'sha256:dd');
        res.end();
      });
      const http = new GuardedFetch(LOCAL_POLICY);
      closers.push(() => http.close());

      expect(await new RegistryClient([], http, 4096).head(ref(host))).toBe('sha256:dd');
    });

    it('sends all four manifest media types in Accept, as a HEAD', async () => {
      const seen: { method: string | undefined; accept: string | undefined }[] = [];
      const host = await registry((req, res) => {
        seen.push({ method: req.method, accept: req.headers.accept });
        res.setHeader('docker-content-digest', 'sha256:dd');
        res.end();
      });

      await client(host).head(ref(host));

      expect(seen[0]?.method).toBe('HEAD');
      expect(seen[0]?.accept?.split(', ').sort()).toEqual([
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.oci.image.manifest.v1+json',
      ]);
    });

    it('asks for a new token when the cached one has expired, and when the registry refuses it', async () => {
      let host = '';
      let issued = 0;
      let revoked = '';
      host = await registry((req, res) => {
        if (req.url?.startsWith('/token')) {
          issued++;
          return res.end(JSON.stringify({ access_token: `t${issued}`, expires_in: 120 }));
        }
        const auth = req.headers.authorization ?? '';
        if (!auth.startsWith('Bearer t') || auth === revoked) {
          res.statusCode = 401;
          res.setHeader('www-authenticate', `Bearer realm="http://${host}/token",service="s"`);
          return res.end();
        }
        res.setHeader('docker-content-digest', 'sha256:ee');
        res.end();
      });
      let now = 0;
      const c = client(host, 4096, { now: () => now });

      await c.head(ref(host));
      await c.head(ref(host));
      expect(issued).toBe(1);
      now += 121_000;
      await c.head(ref(host));
      expect(issued).toBe(2);
      revoked = 'Bearer t2';
      expect(await c.head(ref(host))).toBe('sha256:ee');
      expect(issued).toBe(3);
    });

    it('raises UpstreamUnavailableError when the token service answers 503, with its Retry-After as an HTTP date', async () => {
      let host = '';
      host = await registry((req, res) => {
        if (req.url?.startsWith('/token')) {
          res.statusCode = 503;
          res.setHeader('retry-after', new Date(Date.now() + 30_000).toUTCString());
          return res.end();
        }
        res.statusCode = 401;
        res.setHeader('www-authenticate', `Bearer realm="http://${host}/token"`);
        res.end();
      });

      const err = await client(host)
        .head(ref(host))
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(UpstreamUnavailableError);
      expect((err as UpstreamUnavailableError).retryAfter).toBeGreaterThanOrEqual(28);
      expect((err as UpstreamUnavailableError).retryAfter).toBeLessThanOrEqual(30);
    });

    it('never puts the password in a log line, an error message or a URL', async () => {
      const password = 'S3cret-Pa55';
      let host = '';
      const urls: string[] = [];
      host = await registry((req, res) => {
        urls.push(req.url ?? '');
        if (req.url?.startsWith('/token')) {
          res.statusCode = 429;
          return res.end();
        }
        res.statusCode = 401;
        res.setHeader('www-authenticate', `Bearer realm="http://${host}/token",service="s"`);
        res.end();
      });
      const logged: string[] = [];
      const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
        logged.push(String(chunk));
        return true;
      });

      const err = await client(host)
        .head(ref(host), { username: 'u', password })
        .catch((e: unknown) => e)
        .finally(() => write.mockRestore());

      expect(err).toBeInstanceOf(UpstreamUnavailableError);
      expect(logged.length).toBeGreaterThan(0);
      for (const text of [...logged, (err as Error).message, ...urls]) expect(text).not.toContain(password);
    });
  });

  describe('RegistryClient with defaultCredentials', () => {
    /** A registry stand-in taking Basic `refit:<password>` for the current password only. */
    async function basicRegistry(password: () => string): Promise<string> {
      return registry((req, res) => {
        const expected = `Basic ${Buffer.from(`refit:${password()}`).toString('base64')}`;
        if (req.headers.authorization !== expected) {
          res.statusCode = 401;
          res.setHeader('www-authenticate', 'Basic realm="r"');
          return res.end();
        }
        res.setHeader('docker-content-digest', 'sha256:aa');
        res.end();
      });
    }

    it('signs in with the default credentials of a registry when the call gives none, and not over given ones', async () => {
      const host = await basicRegistry(() => 'identity');
      const asked: string[] = [];
      const c = client(host, 4096, {
        defaultCredentials: {
          credentials: (registry) => {
            asked.push(registry);
            return Promise.resolve({ username: 'refit', password: 'identity' });
          },
          refused: () => undefined,
        },
      });

      const byDefault = await c.head(ref(host));
      const given = await c.head(ref(host), { username: 'refit', password: 'a-task-password' });

      expect(byDefault).toBe('sha256:aa');
      expect(given).toBeNull();
      expect(asked).toEqual([host]);
    });

    it('tells the default credentials a registry refused them, so the next call signs in with new ones', async () => {
      let current = 'old';
      const host = await basicRegistry(() => current);
      let issued = 'old';
      const refused: string[] = [];
      const c = client(host, 4096, {
        defaultCredentials: {
          credentials: () => Promise.resolve({ username: 'refit', password: issued }),
          refused: (registry) => {
            refused.push(registry);
            issued = current;
          },
        },
      });
      expect(await c.head(ref(host))).toBe('sha256:aa');

      current = 'rotated';
      const refusedOnce = await c.head(ref(host));
      const renewed = await c.head(ref(host));

      expect(refusedOnce).toBeNull();
      expect(refused).toEqual([host]);
      expect(renewed).toBe('sha256:aa');
    });
  });

  describe('registryHost and repositoryPath', () => {
    it.each([
      ['docker.io', 'node', 'registry-1.docker.io', 'library/node'],
      ['docker.io', 'bitnami/redis', 'registry-1.docker.io', 'bitnami/redis'],
      ['ghcr.io', 'owner/image', 'ghcr.io', 'owner/image'],
      ['127.0.0.1:5000', 'base', '127.0.0.1:5000', 'base'],
    ])('maps %s/%s to %s/%s', (reg, repository, host, path) => {
      const r = { registry: reg, repository, tag: 'latest', digest: null };

      expect([registryHost(reg), repositoryPath(r)]).toEqual([host, path]);
    });
  });

  describe('parseRetryAfter', () => {
    it.each([
      ['120', 120],
      [' 0 ', 0],
      ['Thu, 01 Jan 2026 00:01:00 GMT', 60],
      ['Wed, 31 Dec 2025 23:00:00 GMT', 0],
      ['soon', undefined],
      [undefined, undefined],
    ])('reads %p as %p seconds', (value, seconds) => {
      expect(parseRetryAfter(value, Date.parse('2026-01-01T00:00:00Z'))).toBe(seconds);
    });
  });
});
