import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DestinationRefusedError, ResponseTooLargeError } from '../../../src/errors';
import { LOCAL_POLICY } from '../../../src/net/address-policy';
import { GuardedFetch } from '../../../src/net/guarded-fetch';
import type { ImageReference } from '../../../src/registry/image-reference';
import { RegistryClient } from '../../../src/registry/client';

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

function client(host: string, maxBytes = 4096): RegistryClient {
  const http = new GuardedFetch(LOCAL_POLICY);
  closers.push(() => http.close());
  return new RegistryClient([host], http, maxBytes);
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
});
