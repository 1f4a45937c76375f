import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxBase, call, runsOf, until, waitForRun } from '../support/api';
import { GitServer } from '../support/git';
import {
  copyBusybox,
  startFaultProxy,
  startRegistry,
  testPort,
  type FaultProxy,
  type RunningRegistry,
} from '../support/private-registry';
import {
  digestOf,
  imageUpdateRuns,
  moreChecks,
  pushIndex,
  pushScratchImage,
  watchOf,
  watchUntil,
} from '../support/watches';

// A second registry on loopback that sends Refit no events (no notifications configured): the test stack's own
// watcher (REFIT_POLL_INTERVAL_MIN/MAX 1-2 s, REFIT_POLL_SETTLE 1 s, see global-setup) is what notices its changes.

/**
 * The registries' hosts as the tasks name them: `localhost:PORT` (loopback, plain HTTP, as 127.0.0.1 is). buildah names
 * a build's working container after its base's host, and builds FROM the stack's 127.0.0.1 registry run meanwhile.
 */
function named(host: string): string {
  return host.replace('127.0.0.1', 'localhost');
}

/** Creates a Docker task over `repo` of the git server, with a base-image trigger on all dependencies. */
async function createTask(git: GitServer, name: string, repo: string): Promise<void> {
  const res = await call('PUT', `/tasks/${name}`, {
    properties: {
      step: {
        type: 'Docker',
        contextPath: `${git.url(repo)}#main`,
        dockerFilePath: 'Dockerfile',
        imageNames: [],
        isPushEnabled: false,
      },
      trigger: { baseImageTrigger: { name: 'base', baseImageTriggerType: 'All' } },
    },
  });
  expect([200, 201]).toContain(res.status);
}

async function runTask(name: string): Promise<any> {
  const run = await waitForRun(
    (await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: name })).body.name,
  );
  expect({ status: run.status, error: run.runErrorMessage }).toEqual({
    status: 'Succeeded',
    error: undefined,
  });
  return run;
}

async function imageUpdates(image: string): Promise<any[]> {
  return (await call('GET', `/imageUpdates?image=${encodeURIComponent(image)}`)).body.value;
}

describe('watches', () => {
  const root = mkdtempSync(join(tmpdir(), 'refit-watches-'));
  const git = new GitServer();
  let second: RunningRegistry;
  let proxy: FaultProxy;
  let faulty: FaultProxy;
  beforeAll(async () => {
    await git.start();
    second = await startRegistry(join(root, 'second'), 'second', testPort(960), null);
    [proxy, faulty] = await Promise.all([
      startFaultProxy(testPort(961), second.host),
      startFaultProxy(testPort(962), second.host),
    ]);
  });
  afterAll(async () => {
    // Nothing of this file is left watched or triggered while other files run on the stack.
    for (const task of [
      'watchedapp',
      'multiapp',
      'faultyapp',
      'depsapp',
      'homeapp',
      'otherapp',
      'privateapp',
    ])
      await call('DELETE', `/tasks/${task}`);
    git.stop();
    await Promise.all([proxy.stop(), faulty.stop()]);
    await second.stop();
    rmSync(root, { recursive: true, force: true });
  });

  describe('watchRegistries', () => {
    it('rebuilds a task whose base changed on a registry that sends no events exactly once, and only HEADs it in steady state', async () => {
      const ref = { host: second.host, repository: 'watched/base', tag: '1' };
      const v1 = await pushScratchImage(root, ref, 'steady-v1');
      const image = `${named(proxy.host)}/watched/base:1`;
      git.commit('watched-app', 'main', { Dockerfile: `FROM ${image}\nCOPY Dockerfile /app\n` });
      await createTask(git, 'watchedapp', 'watched-app');
      await runTask('watchedapp');
      await watchUntil(
        'the watch to settle on v1',
        image,
        (w) => w.indexDigest === v1 && !w.health.lastError,
      );

      // Steady state: one HEAD per check, no GET (a GET is a pull on Docker Hub).
      const mark = proxy.manifestRequests.length;
      await moreChecks(image, 3);
      const steady = proxy.manifestRequests.slice(mark);
      expect(steady.length).toBeGreaterThanOrEqual(3);
      expect(steady.filter((r) => r.method !== 'HEAD')).toEqual([]);

      const v2 = await pushScratchImage(root, ref, 'steady-v2');
      const [rebuild] = await until('the image-update run', async () => {
        const runs = await imageUpdateRuns('watchedapp');
        return runs.length ? runs : undefined;
      });
      expect(rebuild.imageUpdateTrigger.images).toEqual([
        { registry: named(proxy.host), repository: 'watched/base', tag: '1', digest: v2 },
      ]);
      expect((await waitForRun(rebuild.runId)).status).toBe('Succeeded');

      // Checks go on at the new digest, and none of them starts another run.
      await watchUntil('the watch to move to v2', image, (w) => w.indexDigest === v2);
      await moreChecks(image, 3);
      expect(await imageUpdateRuns('watchedapp')).toHaveLength(1);
      const updates = await imageUpdates(image);
      expect(updates).toEqual([
        expect.objectContaining({
          source: 'poll',
          digest: v2,
          decisions: [expect.objectContaining({ task: 'watchedapp', decision: 'triggered' })],
        }),
      ]);
    });

    it('rebuilds nothing when only another platform of a multi-platform base changes, then once when its own does', async () => {
      const at = (tag: string) => ({ host: second.host, repository: 'multi/base', tag });
      const amd1 = await pushScratchImage(root, at('amd1'), 'amd-1', 'linux/amd64');
      const arm1 = await pushScratchImage(root, at('arm1'), 'arm-1', 'linux/arm64');
      const arm2 = await pushScratchImage(root, at('arm2'), 'arm-2', 'linux/arm64');
      const amd2 = await pushScratchImage(root, at('amd2'), 'amd-2', 'linux/amd64');
      const index1 = await pushIndex(root, at('1'), [amd1, arm1]);
      const image = `${named(proxy.host)}/multi/base:1`;
      git.commit('multi-app', 'main', { Dockerfile: `FROM ${image}\nCOPY Dockerfile /app\n` });
      await createTask(git, 'multiapp', 'multi-app');
      const first = await runTask('multiapp');
      expect(first.baseImageDependencies).toEqual([expect.objectContaining({ digest: index1 })]);
      await watchUntil('the watch to settle on index 1', image, (w) => w.indexDigest === index1);

      // Only linux/arm64 changes: the index digest moves, linux/amd64 (the task's platform) does not.
      const mark = proxy.manifestRequests.length;
      const index2 = await pushIndex(root, at('1'), [amd1, arm2]);
      const [update] = await until('the update to be decided', async () => {
        const found = (await imageUpdates(image)).filter((u) => u.digest === index2);
        return found.length ? found : undefined;
      });
      expect(update).toEqual(
        expect.objectContaining({
          source: 'poll',
          decisions: [
            {
              task: 'multiapp',
              decision: 'skipped',
              reason: `platform unchanged: linux/amd64 is still ${amd1}`,
            },
          ],
        }),
      );
      // The index was read once, by the watcher: the decision took the platforms from the push, not from a GET.
      const reads = proxy.manifestRequests
        .slice(mark)
        .filter(
          (r) =>
            r.method === 'GET' &&
            [`/v2/multi/base/manifests/1`, `/v2/multi/base/manifests/${index2}`].includes(r.path),
        );
      expect(reads).toHaveLength(1);
      const watch = await watchUntil('the watch to move to index 2', image, (w) => w.indexDigest === index2);
      expect(watch.platforms).toEqual([
        { os: 'linux', architecture: 'amd64', digest: amd1 },
        { os: 'linux', architecture: 'arm64', digest: arm2 },
      ]);
      await moreChecks(image, 2);
      expect(await imageUpdateRuns('multiapp')).toEqual([]);

      // Now linux/amd64 changes: one rebuild.
      const index3 = await pushIndex(root, at('1'), [amd2, arm2]);
      const [rebuild] = await until('the image-update run', async () => {
        const runs = await imageUpdateRuns('multiapp');
        return runs.length ? runs : undefined;
      });
      expect(rebuild.imageUpdateTrigger.images[0].digest).toBe(index3);
      const done = await waitForRun(rebuild.runId);
      expect(done.status).toBe('Succeeded');
      expect(done.baseImageDependencies).toEqual([expect.objectContaining({ digest: index3 })]);
      await moreChecks(image, 2);
      expect(await imageUpdateRuns('multiapp')).toHaveLength(1);
    });

    it('pauses a registry that answers 429 for its Retry-After, fails no task, and records 500s and missing digests as errors without acting on them', async () => {
      const ref = { host: second.host, repository: 'faulty/base', tag: '1' };
      const v1 = await pushScratchImage(root, ref, 'faulty-v1');
      const image = `${named(faulty.host)}/faulty/base:1`;
      git.commit('faulty-app', 'main', { Dockerfile: `FROM ${image}\nCOPY Dockerfile /app\n` });
      await createTask(git, 'faultyapp', 'faulty-app');
      await runTask('faultyapp');
      await watchUntil(
        'the watch to settle on v1',
        image,
        (w) => w.indexDigest === v1 && !w.health.lastError,
      );

      // 429 with Retry-After: 3. Every check is refused; the registry waits at least 3 s between them.
      faulty.fault = { status: 429, retryAfter: '3' };
      const paused = await watchUntil('two refused checks', image, (w) => w.health.consecutiveFailures >= 2);
      expect(paused.health.lastError).toMatch(/answered 429.*paused for \d+ s/);
      expect(paused.indexDigest).toBe(v1);
      const refused = faulty.manifestRequests.filter((r) => r.faulted);
      expect(refused.length).toBeGreaterThanOrEqual(2);
      for (let i = 1; i < refused.length; i++)
        expect(refused[i]!.at - refused[i - 1]!.at).toBeGreaterThanOrEqual(3000);
      expect((await runsOf('faultyapp')).map((r) => r.status)).toEqual(['Succeeded']);

      // A new digest while the registry answers 500: an error, not a change; nothing is queued.
      const v2 = await pushScratchImage(root, ref, 'faulty-v2');
      faulty.fault = { status: 500 };
      const failing = await watchUntil('a check answered 500', image, (w) =>
        /answered 500/.test(w.health.lastError ?? ''),
      );
      expect(failing.indexDigest).toBe(v1);
      expect(failing.pendingDigest).toBeNull();

      // The same without a Docker-Content-Digest: an error too, and the registry is not paused for it.
      faulty.fault = 'drop-digest';
      const undigested = await watchUntil(
        'a check without a digest',
        image,
        (w) => /without a Docker-Content-Digest/.test(w.health.lastError ?? ''),
        90000,
      );
      expect(undigested.indexDigest).toBe(v1);
      expect(undigested.pendingDigest).toBeNull();
      expect(await imageUpdates(image)).toEqual([]);
      expect(await imageUpdateRuns('faultyapp')).toEqual([]);

      // Healthy again: the change is seen and acted on once.
      faulty.fault = 'none';
      const [rebuild] = await until(
        'the image-update run',
        async () => {
          const runs = await imageUpdateRuns('faultyapp');
          return runs.length ? runs : undefined;
        },
        90000,
      );
      expect(rebuild.imageUpdateTrigger.images[0].digest).toBe(v2);
      expect((await waitForRun(rebuild.runId)).status).toBe('Succeeded');
      const healthy = await watchUntil('the watch to recover', image, (w) => w.indexDigest === v2);
      expect(healthy.health).toEqual(expect.objectContaining({ lastError: null, consecutiveFailures: 0 }));
      expect(healthy.registry.pausedUntil).toBeNull();
      expect(await imageUpdateRuns('faultyapp')).toHaveLength(1);
    });

    it('watches a new dependency at once and stops watching a reference nobody depends on any more', async () => {
      const a = { host: second.host, repository: 'deps/a', tag: '1' };
      const b = { host: second.host, repository: 'deps/b', tag: '1' };
      const digestA = await pushScratchImage(root, a, 'deps-a');
      await pushScratchImage(root, b, 'deps-b');
      const imageA = `${named(second.host)}/deps/a:1`;
      const imageB = `${named(second.host)}/deps/b:1`;
      git.commit('deps-app', 'main', { Dockerfile: `FROM ${imageA}\nCOPY Dockerfile /app\n` });
      expect(await watchOf(imageA)).toBeUndefined();

      // Created: its context is scanned and the base is watched before any run.
      await createTask(git, 'depsapp', 'deps-app');
      const watched = await watchUntil('the new dependency to be watched', imageA, (w) => w.dependents === 1);
      expect(watched.registry.name).toBe(named(second.host));
      await watchUntil('its first check', imageA, (w) => w.indexDigest === digestA);

      // The Dockerfile moves to another base: after the run, the old one is no longer watched, the new one is.
      git.commit('deps-app', 'main', { Dockerfile: `FROM ${imageB}\nCOPY Dockerfile /app\n` });
      await runTask('depsapp');
      await until('deps/a to be dropped', async () => ((await watchOf(imageA)) ? undefined : true));
      expect(await watchOf(imageB)).toEqual(expect.objectContaining({ dependents: 1 }));

      // Deleted: nothing depends on deps/b any more.
      expect((await call('DELETE', '/tasks/depsapp')).status).toBe(200);
      await until('deps/b to be dropped', async () => ((await watchOf(imageB)) ? undefined : true));
    });

    it('does not watch the home registry, whose pushes arrive as events', async () => {
      await pushScratchImage(root, { host: second.host, repository: 'home/other', tag: '1' }, 'home-other');
      git.commit('home-app', 'main', { Dockerfile: `FROM ${busyboxBase()}\nCOPY Dockerfile /app\n` });
      git.commit('other-app', 'main', {
        Dockerfile: `FROM ${second.host}/home/other:1\nCOPY Dockerfile /app\n`,
      });
      // Both are scanned when created; the second one's base is watched, so the watches have caught up by then.
      await createTask(git, 'homeapp', 'home-app');
      await createTask(git, 'otherapp', 'other-app');
      const deps = await call('GET', `/dependencies?image=${encodeURIComponent(busyboxBase())}`);
      expect(deps.body.value).toEqual(expect.arrayContaining([expect.objectContaining({ task: 'homeapp' })]));
      await watchUntil('the other registry to be watched', `${second.host}/home/other:1`, () => true);
      expect(await watchOf(busyboxBase())).toBeUndefined();
      for (const task of ['homeapp', 'otherapp'])
        expect((await call('DELETE', `/tasks/${task}`)).status).toBe(200);
    });
  });

  describe('Watcher', () => {
    let guarded: RunningRegistry;
    const alice = { username: 'alice', password: 'watch-s3cret' };
    beforeAll(async () => {
      guarded = await startRegistry(join(root, 'guarded'), 'guarded', testPort(963), {
        htpasswd: { user: alice.username, password: alice.password },
      });
    });
    afterAll(() => guarded.stop());

    it('asks a private registry with the login of a task that depends on it, and anonymously once the login is removed', async () => {
      await copyBusybox(root, [`${guarded.host}/private/base:1`], alice);
      const image = `${guarded.host}/private/base:1`;
      git.commit('private-app', 'main', { Dockerfile: `FROM ${image}\nCOPY Dockerfile /app\n` });
      await createTask(git, 'privateapp', 'private-app');
      const login = {
        userName: { type: 'Opaque', value: alice.username },
        password: { type: 'Opaque', value: alice.password },
      };
      const patched = await call('PATCH', '/tasks/privateapp', {
        properties: { credentials: { customRegistries: { [guarded.host]: login } } },
      });
      expect(patched.status).toBe(200);

      // The stack's own watcher asks with the task's login.
      const digest = await digestOf(guarded.host, 'private/base', '1', alice);
      const healthy = await watchUntil(
        'the private base checked with the login',
        image,
        (w) => w.indexDigest === digest && w.health.lastError === null && w.health.lastSuccess !== null,
      );
      expect(healthy.health.consecutiveFailures).toBe(0);

      // Without it, the same check is refused: the login is what made it pass (the digest it knew stays).
      const removed = await call('PATCH', '/tasks/privateapp', {
        properties: { credentials: { customRegistries: { [guarded.host]: null } } },
      });
      expect(removed.status).toBe(200);
      const refused = await watchUntil('the private base refused anonymously', image, (w) =>
        /answered 401, 403 or 404 to the HEAD/.test(w.health.lastError ?? ''),
      );
      expect(refused.indexDigest).toBe(digest);
      expect((await call('DELETE', '/tasks/privateapp')).status).toBe(200);
    });
  });
});
