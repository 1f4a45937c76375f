import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxBase, call, dockerBuild, uploadContext, waitForRun, writeContext } from '../support/api';
import { buildah, startRegistry, testPort, type RunningRegistry } from '../support/private-registry';

// A second registry on this machine, other than the home one: plain HTTP with no configuration, as the home
// registry is (before, buildah refused it with "server gave HTTP response to HTTPS client", exit code 125).

describe('LocalExecutor', () => {
  const root = mkdtempSync(join(tmpdir(), 'refit-loopback-'));
  let second: RunningRegistry;
  let guarded: RunningRegistry;
  beforeAll(async () => {
    [second, guarded] = await Promise.all([
      startRegistry(join(root, 'open'), 'open', testPort(950), null),
      startRegistry(join(root, 'guarded'), 'guarded', testPort(951), {
        htpasswd: { user: 'alice', password: 'loopback-s3cret' },
      }),
    ]);
    // The base: the stack's busybox, copied to the second registry.
    await buildah(root, ['pull', '--tls-verify=false', `docker://${busyboxBase()}`]);
    await buildah(root, [
      'push',
      '--tls-verify=false',
      busyboxBase(),
      `docker://${second.host}/second/busybox:1`,
    ]);
    await buildah(root, [
      'push',
      '--tls-verify=false',
      '--creds',
      'alice:loopback-s3cret',
      busyboxBase(),
      `docker://${guarded.host}/private/busybox:1`,
    ]);
  });
  afterAll(async () => {
    await Promise.all([second.stop(), guarded.stop()]);
    rmSync(root, { recursive: true, force: true });
  });

  describe('a build', () => {
    it('pulls a base from and pushes to a registry on loopback that is not the home registry, over plain HTTP', async () => {
      const source = await uploadContext(
        writeContext({ Dockerfile: `FROM ${second.host}/second/busybox:1\nRUN echo from-second\n` }),
      );
      const res = await call(
        'POST',
        '/scheduleRun',
        dockerBuild(source, { imageNames: [`${second.host}/second/app:{{.Run.ID}}`] }),
      );
      expect(res.status).toBe(200);
      const run = await waitForRun(res.body.name as string);

      // The log is in the failure's message: it says why buildah failed.
      const log = (await call('GET', `/runs/${run.runId}/log`)).body as string;
      expect({ status: run.status, error: run.runErrorMessage, log }).toEqual({
        status: 'Succeeded',
        error: undefined,
        log: expect.any(String),
      });
      expect(run.outputImages).toEqual([
        expect.objectContaining({ registry: second.host, repository: 'second/app' }),
      ]);
      const tags = await fetch(`http://${second.host}/v2/second/app/tags/list`).then((r) => r.json());
      expect(tags).toEqual({ name: 'second/app', tags: [run.runId] });
    });

    it('fails naming the registry when a pull is refused for lack of credentials', async () => {
      const source = await uploadContext(
        writeContext({ Dockerfile: `FROM ${guarded.host}/private/busybox:1\nRUN echo never\n` }),
      );
      const res = await call('POST', '/scheduleRun', dockerBuild(source));
      expect(res.status).toBe(200);
      const run = await waitForRun(res.body.name as string);

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toBe(
        `the build failed with exit code 125: ${guarded.host} refused the request: unauthorized`,
      );
    });

    it("pulls from and pushes to a private registry with the request's credentials (that run's only)", async () => {
      const source = await uploadContext(
        writeContext({ Dockerfile: `FROM ${guarded.host}/private/busybox:1\nRUN echo with-login\n` }),
      );
      const res = await call(
        'POST',
        '/scheduleRun',
        dockerBuild(source, {
          imageNames: [`${guarded.host}/private/quick:{{.Run.ID}}`],
          credentials: {
            customRegistries: {
              [guarded.host]: {
                userName: { type: 'Opaque', value: 'alice' },
                password: { type: 'Opaque', value: 'loopback-s3cret' },
              },
            },
          },
        }),
      );
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain('loopback-s3cret');
      const run = await waitForRun(res.body.name as string);
      const log = (await call('GET', `/runs/${run.runId}/log`)).body as string;
      expect({ status: run.status, error: run.runErrorMessage }).toEqual({
        status: 'Succeeded',
        error: undefined,
      });
      expect(log).not.toContain('loopback-s3cret');
      expect(run.outputImages).toEqual([
        expect.objectContaining({ registry: guarded.host, repository: 'private/quick', tag: run.runId }),
      ]);
      expect(run.baseImageDependencies).toEqual([
        expect.objectContaining({ registry: guarded.host, digest: expect.stringMatching(/^sha256:/) }),
      ]);
    });
  });
});
