// RegistryClient.imageConfig against the CNCF registry: images built FROM scratch by buildah with their run settings
// (ENTRYPOINT, CMD, WORKDIR), a two-platform index made with buildah manifest, a registry behind token auth, and a
// proxy that sends blob reads elsewhere, as ACR and Docker Hub send them to their storage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_POLICY } from '../../src/net/address-policy';
import { GuardedFetch } from '../../src/net/guarded-fetch';
import type { RegistryCredentials } from '../../src/registry/auth';
import { RegistryClient } from '../../src/registry/client';
import { parseImageReference } from '../../src/registry/image-reference';
import type { Platform } from '../../src/runs/run';
import {
  buildah,
  makeSigningCert,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  testPort,
  type FaultProxy,
  type RunningRegistry,
  type TokenServer,
} from '../support/private-registry';

const USER = 'config-reader';
const PASSWORD = 'c0nfig-pa55';
const amd64: Platform = { os: 'Linux', architecture: 'amd64' };
const arm64: Platform = { os: 'Linux', architecture: 'arm64' };

let dir: string;
let open: RunningRegistry;
let tokenAuth: RunningRegistry;
let tokens: TokenServer;
let redirecting: FaultProxy;
let redirected = 0;
const http = new GuardedFetch(LOCAL_POLICY);

/** Builds an image FROM scratch with buildah's run settings (`config` flags) and pushes it to the open registry. */
async function pushScratch(repositoryTag: string, config: string[]): Promise<void> {
  const name = `ctr-${repositoryTag.replace(/[^a-z0-9]/g, '-')}`;
  await buildah(dir, ['from', '--name', name, 'scratch']);
  await buildah(dir, ['config', ...config, name]);
  await buildah(dir, ['commit', '--quiet', name, `localhost/${repositoryTag}`]);
  await buildah(dir, [
    'push',
    '--tls-verify=false',
    `localhost/${repositoryTag}`,
    `docker://${open.host}/${repositoryTag}`,
  ]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refit-image-config-'));
  const { key, cert } = makeSigningCert(dir);
  const service = 'refit-config-registry';
  const issuer = 'refit-config-issuer';
  // Ports apart from the other registry tests' (0-10), so that this file runs beside them.
  tokens = await startTokenServer(testPort(42), {
    issuer,
    service,
    user: USER,
    password: PASSWORD,
    key,
    cert,
    expiresIn: 300,
  });
  // One storage, two doors: open for the pushes, token auth for the reads that need credentials.
  [open, tokenAuth] = await Promise.all([
    startRegistry(dir, 'open', testPort(40), null),
    startRegistry(dir, 'token', testPort(41), { token: { realm: tokens.realm, service, issuer, cert } }),
  ]);
  // Blob reads answered with a redirect to the registry itself on another origin.
  redirecting = await startFaultProxy(testPort(43), open.host, (req, res) => {
    if (!req.url?.includes('/blobs/')) return false;
    redirected++;
    res.statusCode = 307;
    res.setHeader('location', `http://${open.host}${req.url}`);
    res.end();
    return true;
  });

  await pushScratch('tools/runner:1', [
    '--entrypoint',
    '["/usr/bin/runner","--verbose"]',
    '--cmd',
    '["serve","two words"]',
    '--workingdir',
    '/srv/app',
  ]);
  await pushScratch('tools/bare:1', []);

  // Two platforms, each with its own Cmd, behind one index.
  for (const [arch, variant] of [
    ['amd64', undefined],
    ['arm64', 'v8'],
  ] as const) {
    const name = `multi-${arch}`;
    await buildah(dir, ['from', '--name', name, 'scratch']);
    await buildah(dir, [
      'config',
      '--os',
      'linux',
      '--arch',
      arch,
      ...(variant ? ['--variant', variant] : []),
      '--cmd',
      `["on-${arch}"]`,
      '--workingdir',
      `/${arch}`,
      name,
    ]);
    await buildah(dir, ['commit', '--quiet', name, `localhost/tools/multi:${arch}`]);
  }
  await buildah(dir, ['manifest', 'create', 'localhost/tools/multi:1']);
  for (const arch of ['amd64', 'arm64'])
    await buildah(dir, ['manifest', 'add', 'localhost/tools/multi:1', `localhost/tools/multi:${arch}`]);
  await buildah(dir, [
    'manifest',
    'push',
    '--all',
    '--tls-verify=false',
    'localhost/tools/multi:1',
    `docker://${open.host}/tools/multi:1`,
  ]);
}, 120000);

afterAll(async () => {
  await Promise.all([open?.stop(), tokenAuth?.stop(), tokens?.stop(), redirecting?.stop(), http.close()]);
  rmSync(dir, { recursive: true, force: true });
});

function client(host: string): RegistryClient {
  return new RegistryClient([host], http, 1 << 20);
}

const imageConfig = (
  host: string,
  image: string,
  platform: Platform = amd64,
  credentials?: RegistryCredentials,
): ReturnType<RegistryClient['imageConfig']> =>
  client(host).imageConfig(parseImageReference(`${host}/${image}`), platform, credentials);

describe('registry/client', () => {
  describe('RegistryClient.imageConfig', () => {
    it("gives an image's ENTRYPOINT, CMD and WORKDIR as buildah set them", async () => {
      expect(await imageConfig(open.host, 'tools/runner:1')).toEqual({
        entrypoint: ['/usr/bin/runner', '--verbose'],
        cmd: ['serve', 'two words'],
        workingDir: '/srv/app',
      });
    });

    it('gives undefined for an image that sets none of them', async () => {
      expect(await imageConfig(open.host, 'tools/bare:1')).toEqual({
        entrypoint: undefined,
        cmd: undefined,
        workingDir: undefined,
      });
    });

    it("reads the requested platform's config from a two-platform index, not the other's", async () => {
      const onAmd64 = await imageConfig(open.host, 'tools/multi:1', amd64);
      const onArm64 = await imageConfig(open.host, 'tools/multi:1', arm64);
      const onArm64v8 = await imageConfig(open.host, 'tools/multi:1', { ...arm64, variant: 'v8' });

      expect(onAmd64).toEqual({ entrypoint: undefined, cmd: ['on-amd64'], workingDir: '/amd64' });
      expect(onArm64).toEqual({ entrypoint: undefined, cmd: ['on-arm64'], workingDir: '/arm64' });
      expect(onArm64v8).toEqual(onArm64);
    });

    it('reads an image named by its digest', async () => {
      const index = await client(open.host).index(parseImageReference(`${open.host}/tools/runner:1`));

      expect(await imageConfig(open.host, `tools/runner@${index!.digest}`)).toMatchObject({
        cmd: ['serve', 'two words'],
      });
    });

    it.each([
      ['a tag the repository does not have', 'tools/runner:2'],
      ['a repository the registry does not have', 'tools/nothing:1'],
    ])('answers null for %s', async (_what, image) => {
      expect(await imageConfig(open.host, image)).toBeNull();
    });

    it('reads through token auth with credentials, and answers null without them or with wrong ones', async () => {
      const right = { username: USER, password: PASSWORD };
      const wrong = { username: USER, password: 'not-the-password' };

      expect(await imageConfig(tokenAuth.host, 'tools/runner:1', amd64, right)).toMatchObject({
        entrypoint: ['/usr/bin/runner', '--verbose'],
      });
      expect(await imageConfig(tokenAuth.host, 'tools/runner:1', amd64)).toBeNull();
      expect(await imageConfig(tokenAuth.host, 'tools/runner:1', amd64, wrong)).toBeNull();
      expect(tokens.requests.some((r) => r.authenticated && r.scope === 'repository:tools/runner:pull')).toBe(
        true,
      );
    });

    // DEFECT (src/registry/client.ts imageConfig): when the index has no manifest for the platform, platformDigestOf
    // falls back to the index's own digest, the index is then read as an image manifest and imageConfig throws
    // RegistryProtocolError "<registry> answered a manifest of tools/multi that does not fit the spec": a healthy
    // registry is blamed, and a cmd step on a platform its image lacks fails with that message instead of one naming
    // the missing platform. Expected: null, as for any image the registry does not have (or an error naming the
    // platform). Skipped: the fix is in client.ts, outside this task's files.
    it('answers null for a platform the index does not have, instead of blaming the registry', async () => {
      expect(
        await imageConfig(open.host, 'tools/multi:1', { os: 'Linux', architecture: 'arm', variant: 'v7' }),
      ).toBeNull();
    });

    it('follows a registry that redirects the config blob elsewhere, as ACR and Docker Hub do', async () => {
      const before = redirected;

      expect(await imageConfig(redirecting.host, 'tools/runner:1')).toMatchObject({
        cmd: ['serve', 'two words'],
      });
      expect(redirected).toBe(before + 1);
    });
  });
});
