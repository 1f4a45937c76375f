import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DestinationRefusedError, ResponseTooLargeError } from '../../../src/errors';
import { LOCAL_POLICY, type NetworkPolicy } from '../../../src/net/address-policy';
import { GuardedFetch, type ResolveAll } from '../../../src/net/guarded-fetch';

const AZURE: NetworkPolicy = { privateAllowed: false, allowedHosts: [] };
const limit = { bytes: 1024, setting: 'REFIT_MAX_TEST_BYTES' };

/** A real HTTP server on loopback for one test. */
async function serve(handler: RequestListener): Promise<{ server: Server; url: string; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, port };
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function guarded(policy: NetworkPolicy, resolve?: ResolveAll): GuardedFetch {
  const g = new GuardedFetch(policy, resolve ? { resolve } : {});
  closers.push(() => g.close());
  return g;
}

async function server(handler: RequestListener): Promise<{ url: string; port: number }> {
  const s = await serve(handler);
  closers.push(() => new Promise((r) => s.server.close(r)));
  return s;
}

describe('guarded-fetch', () => {
  describe('GuardedFetch.fetch', () => {
    it.each([
      ['http://169.254.169.254/latest/meta-data/', 'a cloud metadata address'],
      ['http://[fe80::1]/x', 'a link-local address'],
      ['http://0.0.0.0:8080/x', 'an unspecified address'],
      ['http://[::ffff:169.254.169.254]/x', 'a cloud metadata address'],
    ])('refuses %s on every policy, at once (%s)', async (url, why) => {
      for (const policy of [LOCAL_POLICY, AZURE]) {
        const err = await guarded(policy)
          .fetch(url, { limit })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DestinationRefusedError);
        expect((err as Error).message).toContain(why);
        // Refused by address, before any connection: a connect attempt would end in a connection error or a
        // timeout (the test's bound), never in DestinationRefusedError.
      }
    });

    it('reaches a loopback server under the local policy and is refused under a policy without private ranges', async () => {
      const { url } = await server((_req, res) => res.end('hello'));

      const allowed = await guarded(LOCAL_POLICY).fetch(`${url}/x`, { limit });
      const refusedErr = await guarded(AZURE)
        .fetch(`${url}/x`, { limit })
        .catch((e: unknown) => e);

      expect(allowed.status).toBe(200);
      expect(await allowed.text()).toBe('hello');
      expect(refusedErr).toBeInstanceOf(DestinationRefusedError);
      expect((refusedErr as Error).message).toContain('loopback');
    });

    it('allows a loopback server listed in the allowed hosts when private ranges are refused', async () => {
      const { url } = await server((_req, res) => res.end('listed'));

      const res = await guarded({ privateAllowed: false, allowedHosts: ['127.0.0.0/8'] }).fetch(url, {
        limit,
      });

      expect(await res.text()).toBe('listed');
    });

    it('follows a redirect to an allowed server and refuses one to the metadata address', async () => {
      const target = await server((_req, res) => res.end('arrived'));
      const { url } = await server((req, res) => {
        res.statusCode = 302;
        res.setHeader(
          'location',
          req.url === '/good' ? `${target.url}/end` : 'http://169.254.169.254/latest',
        );
        res.end();
      });
      const g = guarded(LOCAL_POLICY);

      const followed = await g.fetch(`${url}/good`, { limit });
      const err = await g.fetch(`${url}/bad`, { limit }).catch((e: unknown) => e);

      expect(await followed.text()).toBe('arrived');
      expect(followed.url.toString()).toBe(`${target.url}/end`);
      expect(err).toBeInstanceOf(DestinationRefusedError);
      expect((err as Error).message).toContain('metadata');
    });

    it('stops after a bounded number of redirects', async () => {
      const { url } = await server((_req, res) => {
        res.statusCode = 307;
        res.setHeader('location', '/again');
        res.end();
      });

      const err = await guarded(LOCAL_POLICY)
        .fetch(url, { limit })
        .catch((e: unknown) => e);

      expect((err as Error).message).toContain('redirected more than 5 times');
    });

    it('refuses a name whose look-up yields a refused address, at connect time', async () => {
      const resolve: ResolveAll = () => Promise.resolve([{ address: '169.254.169.254', family: 4 }]);

      const err = await guarded(LOCAL_POLICY, resolve)
        .fetch('http://metadata.rebind.test/x', { limit })
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(DestinationRefusedError);
      expect((err as Error).message).toContain('metadata.rebind.test');
      expect((err as Error).message).toContain('a cloud metadata address');
    });

    it('refuses a name with one refused address among allowed ones', async () => {
      const { port } = await server((_req, res) => res.end('no'));
      const resolve: ResolveAll = () =>
        Promise.resolve([
          { address: '127.0.0.1', family: 4 },
          { address: '169.254.169.254', family: 4 },
        ]);

      const err = await guarded(LOCAL_POLICY, resolve)
        .fetch(`http://mixed.rebind.test:${port}/`, { limit })
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(DestinationRefusedError);
    });

    it('connects to the address it checked, so a rebinding name gets no second answer to exploit', async () => {
      const { port } = await server((_req, res) => res.end('from loopback'));
      const answers = ['127.0.0.1', '169.254.169.254'];
      let lookups = 0;
      // The first answer is allowed, every later one is the metadata address.
      const resolve: ResolveAll = () => {
        const address = answers[Math.min(lookups++, 1)]!;
        return Promise.resolve([{ address, family: 4 }]);
      };
      const g = guarded(LOCAL_POLICY, resolve);

      const res = await g.fetch(`http://rebind.test:${port}/`, { limit });
      const body = await res.text();

      expect(body).toBe('from loopback');
      expect(lookups).toBe(1);
      // A new connection looks the name up again and is refused on the new answer.
      await g.close();
      const again = await guarded(LOCAL_POLICY, resolve)
        .fetch(`http://rebind.test:${port}/`, { limit })
        .catch((e: unknown) => e);
      expect(again).toBeInstanceOf(DestinationRefusedError);
    });

    it.each([
      ['with a Content-Length', true],
      ['without a Content-Length (counted while streaming)', false],
    ])('fails a body over the limit, naming the limit (%s)', async (_name, withLength) => {
      const big = Buffer.alloc(4096, 'x');
      const { url } = await server((_req, res) => {
        if (withLength) res.setHeader('content-length', big.length);
        res.write(big.subarray(0, 2048));
        res.end(big.subarray(2048));
      });

      const res = await guarded(LOCAL_POLICY).fetch(url, { limit });
      const err = await res.text().catch((e: unknown) => e);

      expect(err).toBeInstanceOf(ResponseTooLargeError);
      expect((err as Error).message).toContain('1024 bytes');
      expect((err as Error).message).toContain('REFIT_MAX_TEST_BYTES');
    });

    it('reads a body of exactly the limit', async () => {
      const { url } = await server((_req, res) => res.end(Buffer.alloc(1024, 'y')));

      const res = await guarded(LOCAL_POLICY).fetch(url, { limit });

      expect((await res.text()).length).toBe(1024);
    });

    it('gives up on a server that does not answer within the timeout', async () => {
      const { url } = await server(() => undefined);

      const err = await guarded(LOCAL_POLICY)
        .fetch(url, { limit, timeoutMs: 200 })
        .catch((e: unknown) => e);

      expect((err as Error).message).toContain('did not answer within 200 ms');
    });

    it('refuses a URL that is not http or https', async () => {
      const err = await guarded(LOCAL_POLICY)
        .fetch('file:///etc/passwd', { limit })
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(DestinationRefusedError);
    });
  });
});
