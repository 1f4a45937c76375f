import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  busyboxBase,
  call,
  registry,
  registryDigest,
  runsOf,
  until,
  uploadContext,
  waitForRun,
  writeContext,
  pushManifestAgain,
} from '../support/api';
import { GitServer } from '../support/git';
import { buildah } from '../support/private-registry';

const INDEX = 'application/vnd.oci.image.index.v1+json';

/** Quick-builds `repository:tag` FROM busybox with `V` set to `version`; returns its digest. */
async function buildBase(repository: string, tag: string, version: string): Promise<string> {
  const path = await uploadContext(writeContext({ Dockerfile: `FROM ${busyboxBase()}\nENV V ${version}\n` }));
  const run = await waitForRun(
    (
      await call('POST', '/scheduleRun', {
        type: 'DockerBuildRequest',
        imageNames: [`${repository}:${tag}`],
        sourceLocation: path,
        dockerFilePath: 'Dockerfile',
        platform: { os: 'Linux', architecture: 'amd64' },
      })
    ).body.name,
  );
  expect(run.status).toBe('Succeeded');
  return run.outputImages[0].digest as string;
}

async function dependents(image: string): Promise<any[]> {
  return (await call('GET', `/dependencies?image=${encodeURIComponent(image)}`)).body.value;
}

/** Schedules a quick multi-step run of `acbYaml` over an uploaded context. */
async function quickRun(
  acbYaml: string,
  files: Record<string, string>,
  platform: Record<string, string> = { os: 'Linux', architecture: 'amd64' },
): Promise<any> {
  const res = await call('POST', '/scheduleRun', {
    type: 'EncodedTaskRunRequest',
    encodedTaskContent: Buffer.from(acbYaml).toString('base64'),
    sourceLocation: await uploadContext(writeContext(files)),
    platform,
  });
  expect(res.status).toBe(200);
  return waitForRun(res.body.name as string);
}

describe('recorded base-image digests', () => {
  const git = new GitServer();
  beforeAll(() => git.start());
  afterAll(() => git.stop());

  describe('Docker builds', () => {
    it('records the digest the build was pinned to when the base is updated during the build, and that update then rebuilds the task', async () => {
      const base = 'digests/midbuild';
      const before = await buildBase(base, '1', 'one');
      // The build's RUN step asks this server for a go-ahead: by then the build has its base, and the test pushes
      // the update before answering. Later builds (the rebuild) pass at once.
      let held: ServerResponse | undefined;
      let reached: () => void = () => undefined;
      const gateReached = new Promise<void>((resolve) => (reached = resolve));
      const server = createServer((req, res) => {
        if (req.url !== '/gate') res.writeHead(404).end();
        else if (held) res.writeHead(200).end('go\n');
        else {
          held = res;
          reached();
        }
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      try {
        git.commit('midbuild', 'main', {
          Dockerfile: `FROM ${registry()}/${base}:1\nRUN wget -q -O /gate http://127.0.0.1:${port}/gate && echo "built on $V"\n`,
        });
        // The trigger is off during the build, so that the update is decided only once the run has recorded what it
        // was built from: as a notification delivered late, or delivered again, would be.
        const task = (status: string): Record<string, unknown> => ({
          properties: {
            step: { type: 'Docker', contextPath: `${git.url('midbuild')}#main`, imageNames: [] },
            trigger: { baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime', status } },
          },
        });
        expect((await call('PUT', '/tasks/midbuild', task('Disabled'))).status).toBe(201);
        const scheduled = await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'midbuild' });

        await gateReached;
        const after = await buildBase(base, '1', 'two');
        expect(after).not.toBe(before);
        const image = `${registry()}/${base}:1`;
        await until('the mid-build update to be decided', async () => {
          const updates = (await call('GET', `/imageUpdates?image=${encodeURIComponent(image)}`)).body.value;
          return updates.find((u: any) => u.digest === after && u.decisions.length > 0);
        });
        held!.writeHead(200).end('go\n');

        const run = await waitForRun(scheduled.body.name);
        expect(run.status).toBe('Succeeded');
        expect((await call('GET', `/runs/${run.runId}/log`)).text).toMatch(/^built on one$/m);
        expect(run.baseImageDependencies).toEqual([
          expect.objectContaining({ repository: base, tag: '1', digest: before, platformDigest: before }),
        ]);
        expect(await dependents(image)).toEqual([
          expect.objectContaining({ task: 'midbuild', digest: before }),
        ]);

        // The trigger on, the same update notified again (the very manifest bytes put back): it rebuilds the task.
        expect((await call('PUT', '/tasks/midbuild', task('Enabled'))).status).toBe(200);
        expect(await pushManifestAgain(base, '1')).toBe(201);
        const rebuild = await until('the rebuild', async () =>
          (await runsOf('midbuild')).find((r) => r.imageUpdateTrigger),
        );
        expect(rebuild.imageUpdateTrigger.images[0]).toMatchObject({ repository: base, digest: after });
        const done = await waitForRun(rebuild.runId);
        expect(done.status).toBe('Succeeded');
        expect((await call('GET', `/runs/${rebuild.runId}/log`)).text).toMatch(/^built on two$/m);
        expect(done.baseImageDependencies).toEqual([expect.objectContaining({ digest: after })]);
      } finally {
        server.close();
      }
    });
  });

  describe('multi-step builds', () => {
    it("records the manifest of the build's platform (arm64) of a multi-platform base", async () => {
      // A two-platform base from scratch (COPY only: no arm64 program has to run here).
      const root = mkdtempSync(join(tmpdir(), 'refit-multiarch-'));
      const target = `${registry()}/digests/multiarch:1`;
      try {
        const context = writeContext({ Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'base\n' });
        await buildah(root, ['manifest', 'create', 'multiarch']);
        for (const arch of ['amd64', 'arm64'])
          await buildah(root, [
            'bud',
            '--isolation',
            'chroot',
            '--platform',
            `linux/${arch}`,
            '--manifest',
            'multiarch',
            context,
          ]);
        await buildah(root, [
          'manifest',
          'push',
          '--all',
          '--tls-verify=false',
          'multiarch',
          `docker://${target}`,
        ]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
      const response = await fetch(`http://${registry()}/v2/digests/multiarch/manifests/1`, {
        headers: { accept: INDEX },
      });
      const index = (await response.json()) as {
        manifests: { digest: string; platform: { architecture: string } }[];
      };
      const indexDigest = response.headers.get('docker-content-digest');
      const arm64 = index.manifests.find((m) => m.platform.architecture === 'arm64')!.digest;
      const amd64 = index.manifests.find((m) => m.platform.architecture === 'amd64')!.digest;
      expect(arm64).not.toBe(amd64);

      const files = { Dockerfile: `FROM ${target}\nCOPY app /app\n`, app: 'app\n' };
      const expected = [
        {
          type: 'RunTime',
          registry: registry(),
          repository: 'digests/multiarch',
          tag: '1',
          digest: indexDigest,
          platformDigest: arm64,
        },
      ];

      const onArm64 = await quickRun(
        'version: v1.1.0\nsteps:\n  - build: -t $Registry/digests/multiarch-app:{{.Run.ID}} .\n',
        files,
        { os: 'Linux', architecture: 'arm64' },
      );
      // A build step's own --platform is the one it builds for, whatever the run's.
      const stepOnArm64 = await quickRun(
        'version: v1.1.0\nsteps:\n  - build: --platform linux/arm64 -t $Registry/digests/multiarch-app:{{.Run.ID}} .\n',
        files,
        { os: 'Linux', architecture: 'amd64' },
      );

      expect(onArm64.status).toBe('Succeeded');
      expect(onArm64.baseImageDependencies).toEqual(expected);
      expect(stepOnArm64.status).toBe('Succeeded');
      expect(stepOnArm64.baseImageDependencies).toEqual(expected);
    });

    it('records each of parallel push steps with its own digest', async () => {
      // Six pushes at once: they share the run's work folder, so a digest file of their own is what keeps them apart.
      const images = ['a', 'b', 'c', 'd', 'e', 'f'];
      const acb = [
        'version: v1.1.0',
        'steps:',
        ...images.flatMap((i) => [
          `  - id: build-${i}`,
          `    build: -t $Registry/digests/parallel-${i}:{{.Run.ID}} -f Dockerfile.${i} .`,
          "    when: ['-']",
        ]),
        ...images.flatMap((i) => [
          `  - id: push-${i}`,
          `    push: [$Registry/digests/parallel-${i}:{{.Run.ID}}]`,
          `    when: [${images.map((j) => `build-${j}`).join(', ')}]`,
        ]),
        '',
      ].join('\n');

      const run = await quickRun(
        acb,
        Object.fromEntries(images.map((i) => [`Dockerfile.${i}`, `FROM ${busyboxBase()}\nENV IMAGE ${i}\n`])),
      );

      expect(run.status).toBe('Succeeded');
      const pushed = Object.fromEntries(run.outputImages.map((o: any) => [o.repository, o.digest]));
      const inRegistry: Record<string, string | null> = {};
      for (const i of images)
        inRegistry[`digests/parallel-${i}`] = await registryDigest(`digests/parallel-${i}`, run.runId);
      expect(pushed).toEqual(inRegistry);
      expect(new Set(Object.values(pushed)).size).toBe(images.length);
    });
  });

  describe('task deletion', () => {
    it('removes the task from the dependency index: a task re-created with its name inherits no rows', async () => {
      const reg = registry();
      git.commit('deleted', 'main', {
        'old/Dockerfile': `FROM ${reg}/digests/deleted-old:1\n`,
        'new/Dockerfile': `FROM ${reg}/digests/deleted-new:1\n`,
      });
      const task = (folder: string): Record<string, unknown> => ({
        properties: {
          step: { type: 'Docker', contextPath: `${git.url('deleted')}#main:${folder}`, imageNames: [] },
          trigger: { baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime' } },
        },
      });
      expect((await call('PUT', '/tasks/recreated', task('old'))).status).toBe(201);
      expect(await dependents(`${reg}/digests/deleted-old:1`)).toEqual([
        expect.objectContaining({ task: 'recreated' }),
      ]);

      expect((await call('DELETE', '/tasks/recreated')).status).toBe(200);
      expect(await dependents(`${reg}/digests/deleted-old:1`)).toEqual([]);
      expect((await call('PUT', '/tasks/recreated', task('new'))).status).toBe(201);

      expect(await dependents(`${reg}/digests/deleted-old:1`)).toEqual([]);
      expect(await dependents(`${reg}/digests/deleted-new:1`)).toEqual([
        expect.objectContaining({ task: 'recreated' }),
      ]);
    });
  });
});
