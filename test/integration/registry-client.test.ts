// The registry client against real CNCF registries on loopback: one with htpasswd auth, one with token auth (and a
// token server of ours) reading the same storage, and a fault-injecting proxy in front of the first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { UpstreamUnavailableError } from '../../src/errors';
import { runProcess } from '../../src/process/run-process';
import { LOCAL_POLICY } from '../../src/net/address-policy';
import { GuardedFetch } from '../../src/net/guarded-fetch';
import type { RegistryCredentials } from '../../src/registry/auth';
import { RegistryClient, RegistryProtocolError } from '../../src/registry/client';
import { parseImageReference } from '../../src/registry/image-reference';
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
import { busyboxBase } from '../support/api';

const USER = 'refit-user';
const PASSWORD = 'pa55-w0rd,with"quote';
const amd64 = { os: 'Linux' as const, architecture: 'amd64' as const };
const arm64 = { os: 'Linux' as const, architecture: 'arm64' as const };

let dir: string;
let basic: RunningRegistry;
let tokenAuth: RunningRegistry;
let tokens: TokenServer;
let proxy: FaultProxy;
let single: PushedImage;
let multi: PushedImage;
const http = new GuardedFetch(LOCAL_POLICY);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refit-registry-client-'));
  const { key, cert } = makeSigningCert(dir);
  const service = 'refit-test-registry';
  const issuer = 'refit-test-issuer';
  tokens = await startTokenServer(testPort(2), {
    issuer,
    service,
    user: USER,
    password: PASSWORD,
    key,
    cert,
    expiresIn: 300,
  });
  [basic, tokenAuth] = await Promise.all([
    startRegistry(dir, 'basic', testPort(0), { htpasswd: { user: USER, password: PASSWORD } }),
    startRegistry(dir, 'token', testPort(1), { token: { realm: tokens.realm, service, issuer, cert } }),
  ]);
  proxy = await startFaultProxy(testPort(3), basic.host);
  const creds = { user: USER, password: PASSWORD };
  single = await pushImage(basic.host, 'private/single', '1', creds, ['linux/amd64'], 'a');
  multi = await pushImage(basic.host, 'private/multi', '1', creds, ['linux/amd64', 'linux/arm64'], 'b');
});

afterAll(async () => {
  await Promise.all([basic?.stop(), tokenAuth?.stop(), tokens?.stop(), proxy?.stop(), http.close()]);
  rmSync(dir, { recursive: true, force: true });
});

/** A client that asks as the holder of `credentials` (a task's, in Refit). */
function client(
  host: string,
  credentials?: RegistryCredentials,
): Pick<RegistryClient, 'head' | 'resolve' | 'rateLimit'> {
  const c = new RegistryClient([host], http, 1 << 20);
  return {
    head: (ref) => c.head(ref, credentials),
    resolve: (ref, platform) => c.resolve(ref, platform, credentials),
    rateLimit: (registry) => c.rateLimit(registry),
  };
}

const right = { username: USER, password: PASSWORD };

/** Runs buildah on a storage of the test's own (so the stack's is untouched); fails on a non-zero exit. */
async function buildah(args: string[]): Promise<void> {
  let output = '';
  const result = await runProcess(
    'buildah',
    [
      '--root',
      join(dir, 'buildah'),
      '--runroot',
      join(dir, 'buildah-run'),
      '--storage-driver',
      'vfs',
      ...args,
    ],
    { onOutput: (c) => (output += c) },
  );
  if (result.code !== 0) throw new Error(`buildah ${args[0] ?? ''} failed: ${output}`);
}
const wrong = { username: USER, password: 'not-the-password' };

describe('registry/client', () => {
  describe('RegistryClient.resolve on a registry with htpasswd auth', () => {
    it('resolves a single-platform image with the right credentials', async () => {
      const ref = parseImageReference(`${basic.host}/private/single:1`);

      const resolved = await client(basic.host, right).resolve(ref, amd64);

      expect(resolved).toEqual({ digest: single.digest, platformDigest: single.digest });
    });

    it("resolves a two-platform index to the index digest and the requested platform's digest", async () => {
      const ref = parseImageReference(`${basic.host}/private/multi:1`);
      const c = client(basic.host, right);

      const onAmd64 = await c.resolve(ref, amd64);
      const onArm64 = await c.resolve(ref, arm64);

      expect(onAmd64).toEqual({ digest: multi.digest, platformDigest: multi.platforms['linux/amd64'] });
      expect(onArm64).toEqual({ digest: multi.digest, platformDigest: multi.platforms['linux/arm64'] });
    });

    it.each([
      ['no credentials', undefined],
      ['wrong credentials', wrong],
    ])('returns null with %s', async (_name, credentials) => {
      const ref = parseImageReference(`${basic.host}/private/single:1`);

      expect(await client(basic.host, credentials).resolve(ref, amd64)).toBeNull();
    });

    it('resolves an image that buildah pushed with --creds to the digest buildah reports', async () => {
      const digestFile = join(dir, 'busybox.digest');
      await buildah(['pull', '--tls-verify=false', '--quiet', busyboxBase()]);
      await buildah([
        'push',
        '--tls-verify=false',
        '--creds',
        `${USER}:${PASSWORD}`,
        '--digestfile',
        digestFile,
        busyboxBase(),
        `docker://${basic.host}/private/busybox:1`,
      ]);
      const ref = parseImageReference(`${basic.host}/private/busybox:1`);

      const resolved = await client(basic.host, right).resolve(ref, amd64);

      expect(resolved?.digest).toBe(readFileSync(digestFile, 'utf8').trim());
    });

    it('returns null for a tag that does not exist', async () => {
      const ref = parseImageReference(`${basic.host}/private/single:missing`);

      expect(await client(basic.host, right).resolve(ref, amd64)).toBeNull();
    });
  });

  describe('RegistryClient.head', () => {
    it('answers the digest the tag points at (the index digest for a multi-platform image)', async () => {
      const c = client(basic.host, right);

      expect(await c.head(parseImageReference(`${basic.host}/private/multi:1`))).toBe(multi.digest);
      expect(await c.head(parseImageReference(`${basic.host}/private/single:1`))).toBe(single.digest);
    });

    it('returns null without credentials', async () => {
      expect(await client(basic.host).head(parseImageReference(`${basic.host}/private/single:1`))).toBeNull();
    });
  });

  describe('RegistryClient on a registry with token auth', () => {
    it('resolves with the right credentials and reuses the token for later requests to the same repository', async () => {
      const c = client(tokenAuth.host, right);
      const ref = parseImageReference(`${tokenAuth.host}/private/multi:1`);
      const before = tokens.requests.length;

      const resolved = await c.resolve(ref, amd64);
      const digest = await c.head(ref);
      const again = await c.resolve(ref, arm64);

      expect(resolved).toEqual({ digest: multi.digest, platformDigest: multi.platforms['linux/amd64'] });
      expect(digest).toBe(multi.digest);
      expect(again?.platformDigest).toBe(multi.platforms['linux/arm64']);
      expect(tokens.requests.slice(before)).toEqual([
        { scope: 'repository:private/multi:pull', authenticated: true },
      ]);
    });

    it('asks for one token per repository scope', async () => {
      const c = client(tokenAuth.host, right);
      const before = tokens.requests.length;

      await c.head(parseImageReference(`${tokenAuth.host}/private/multi:1`));
      await c.head(parseImageReference(`${tokenAuth.host}/private/single:1`));
      await c.head(parseImageReference(`${tokenAuth.host}/private/single:1`));

      expect(tokens.requests.slice(before).map((r) => r.scope)).toEqual([
        'repository:private/multi:pull',
        'repository:private/single:pull',
      ]);
    });

    it.each([
      ['no credentials (an anonymous token with no access)', undefined],
      ['wrong credentials (the token service refuses)', wrong],
    ])('returns null with %s', async (_name, credentials) => {
      const ref = parseImageReference(`${tokenAuth.host}/private/single:1`);

      expect(await client(tokenAuth.host, credentials).resolve(ref, amd64)).toBeNull();
    });
  });

  describe('RegistryClient faults (a proxy in front of the htpasswd registry)', () => {
    afterEach(() => {
      proxy.fault = 'none';
    });

    it('raises UpstreamUnavailableError carrying Retry-After on a 429', async () => {
      proxy.fault = { status: 429, retryAfter: '17' };
      const ref = parseImageReference(`${proxy.host}/private/single:1`);

      const err = await client(proxy.host, right)
        .head(ref)
        .catch((e: unknown) => e);

      expect(err).toBeInstanceOf(UpstreamUnavailableError);
      expect((err as UpstreamUnavailableError).retryAfter).toBe(17);
      expect((err as Error).message).toContain('429');
    });

    it('raises UpstreamUnavailableError on a 500, for resolve as for head', async () => {
      proxy.fault = { status: 500 };
      const ref = parseImageReference(`${proxy.host}/private/single:1`);
      const c = client(proxy.host, right);

      await expect(c.resolve(ref, amd64)).rejects.toBeInstanceOf(UpstreamUnavailableError);
      await expect(c.head(ref)).rejects.toBeInstanceOf(UpstreamUnavailableError);
    });

    it('throws, rather than answering a digest or null, when a HEAD has no Docker-Content-Digest', async () => {
      proxy.fault = 'drop-digest';
      const ref = parseImageReference(`${proxy.host}/private/single:1`);

      await expect(client(proxy.host, right).head(ref)).rejects.toBeInstanceOf(RegistryProtocolError);
    });

    it('raises UpstreamUnavailableError when the registry answers later than the timeout, and reads a slow answer within it', async () => {
      proxy.fault = { delayMs: 1500 };
      const ref = parseImageReference(`${proxy.host}/private/single:1`);
      const timed = (timeoutMs: number): RegistryClient =>
        new RegistryClient([], http, 1 << 20, { timeoutMs });

      const err = await timed(300)
        .head(ref, right)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamUnavailableError);
      expect((err as Error).message).toContain(`${proxy.host} could not be reached`);
      expect(await timed(5000).head(ref, right)).toBe(single.digest);
    });

    it('works through the proxy once the fault is gone', async () => {
      const ref = parseImageReference(`${proxy.host}/private/single:1`);

      expect(await client(proxy.host, right).head(ref)).toBe(single.digest);
    });
  });
});
