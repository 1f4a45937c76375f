import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxBase, call, dockerBuild, uploadContext, waitForRun, writeContext } from '../support/api';
import { buildah, LoopbackRegistry } from '../support/registries';

// A second registry on this machine, other than the home one: plain HTTP with no configuration, as the home
// registry is (before, buildah refused it with "server gave HTTP response to HTTPS client", exit code 125).
const offset = Number(process.env.REFIT_TEST_PORT_OFFSET ?? '0');

describe('LocalExecutor', () => {
  const second = new LoopbackRegistry(18950 + offset);
  const guarded = new LoopbackRegistry(18951 + offset, { user: 'alice', password: 'loopback-s3cret' });
  const root = mkdtempSync(join(tmpdir(), 'refit-loopback-'));
  beforeAll(async () => {
    await Promise.all([second.start(), guarded.start()]);
    // The base: the stack's busybox, copied to the second registry.
    await buildah(root, ['pull', '--tls-verify=false', `docker://${busyboxBase()}`]);
    await buildah(root, [
      'push',
      '--tls-verify=false',
      busyboxBase(),
      `docker://${second.address}/second/busybox:1`,
    ]);
    await buildah(root, [
      'push',
      '--tls-verify=false',
      '--creds',
      'alice:loopback-s3cret',
      busyboxBase(),
      `docker://${guarded.address}/private/busybox:1`,
    ]);
  });
  afterAll(() => {
    second.stop();
    guarded.stop();
    rmSync(root, { recursive: true, force: true });
  });

  describe('a build', () => {
    it('pulls a base from and pushes to a registry on loopback that is not the home registry, over plain HTTP', async () => {
      const source = await uploadContext(
        writeContext({ Dockerfile: `FROM ${second.address}/second/busybox:1\nRUN echo from-second\n` }),
      );
      const res = await call(
        'POST',
        '/scheduleRun',
        dockerBuild(source, { imageNames: [`${second.address}/second/app:{{.Run.ID}}`] }),
      );
      expect(res.status).toBe(200);
      const run = await waitForRun(res.body.name as string);

      expect(run.runErrorMessage).toBeUndefined();
      expect(run.status).toBe('Succeeded');
      expect(run.outputImages).toEqual([
        expect.objectContaining({ registry: second.address, repository: 'second/app' }),
      ]);
      const tags = await fetch(`http://${second.address}/v2/second/app/tags/list`).then((r) => r.json());
      expect(tags).toEqual({ name: 'second/app', tags: [run.runId] });
    });

    it('fails naming the registry when a pull is refused for lack of credentials', async () => {
      const source = await uploadContext(
        writeContext({ Dockerfile: `FROM ${guarded.address}/private/busybox:1\nRUN echo never\n` }),
      );
      const res = await call('POST', '/scheduleRun', dockerBuild(source));
      expect(res.status).toBe(200);
      const run = await waitForRun(res.body.name as string);

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toBe(
        `the build failed with exit code 125: ${guarded.address} refused the request: unauthorized`,
      );
    });
  });
});
