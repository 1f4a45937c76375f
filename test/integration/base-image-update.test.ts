import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  busyboxBase,
  call,
  registry,
  runsOf,
  until,
  uploadContext,
  waitForRun,
  writeContext,
  pushManifestAgain,
} from '../support/api';
import { GitServer } from '../support/git';

const registrySecret = (): string =>
  readFileSync(join(process.env.REFIT_TEST_DATA_DIR!, 'registry-webhook.secret'), 'utf8').trim();

/** Quick-builds a base image and returns the run. */
async function buildBase(repository: string, version: string): Promise<any> {
  const path = await uploadContext(
    writeContext({ Dockerfile: `FROM ${busyboxBase()}\nENV NODE_VERSION ${version}\n` }),
  );
  const run = await waitForRun(
    (
      await call('POST', '/scheduleRun', {
        type: 'DockerBuildRequest',
        imageNames: [`${repository}:15-alpine`],
        sourceLocation: path,
        dockerFilePath: 'Dockerfile',
        platform: { os: 'Linux', architecture: 'amd64' },
      })
    ).body.name,
  );
  expect(run.status).toBe('Succeeded');
  return run;
}

// The seed's tutorial: a base quick-built, a task over a git repository built FROM it, the base updated.
describe('base-image updates', () => {
  const git = new GitServer();
  beforeAll(() => git.start());
  afterAll(() => git.stop());

  it('rebuilds the dependent task on its own when the base changes, and not when the same digest is pushed again', async () => {
    const base = 'tutorial/baseimages/node';
    await buildBase(base, '15.2.1');
    git.commit('tutorial', 'main', {
      'Dockerfile-app': `ARG REGISTRY_NAME\nFROM \${REGISTRY_NAME}/${base}:15-alpine\nRUN echo "app on node $NODE_VERSION"\n`,
    });
    await call('PUT', '/tasks/baseexample1', {
      properties: {
        step: {
          type: 'Docker',
          contextPath: `${git.url('tutorial')}#main`,
          dockerFilePath: 'Dockerfile-app',
          imageNames: ['tutorial/helloworld:{{.Run.ID}}'],
          arguments: [{ name: 'REGISTRY_NAME', value: registry().replace('127.0.0.1', 'localhost') }],
        },
        trigger: {
          baseImageTrigger: { name: 'defaultBaseimageTriggerName', baseImageTriggerType: 'Runtime' },
        },
      },
    });
    const manual = await waitForRun(
      (await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'baseexample1' })).body.name,
    );
    expect(manual.status).toBe('Succeeded');
    expect(manual.baseImageDependencies).toEqual([
      expect.objectContaining({ type: 'RunTime', repository: base, tag: '15-alpine' }),
    ]);
    const deps = await call(
      'GET',
      `/dependencies?image=${encodeURIComponent(`${registry()}/${base}:15-alpine`)}`,
    );
    expect(deps.body.value).toEqual([
      expect.objectContaining({
        task: 'baseexample1',
        type: 'RunTime',
        digest: manual.baseImageDependencies[0].digest,
      }),
    ]);

    const updatedBase = await buildBase(base, '15.2.1a');

    const auto = await until('the Image Update run', async () =>
      (await runsOf('baseexample1')).find((r) => r.imageUpdateTrigger),
    );
    expect(auto.imageUpdateTrigger.images).toEqual([
      {
        registry: registry(),
        repository: base,
        tag: '15-alpine',
        digest: updatedBase.outputImages[0].digest,
      },
    ]);
    const done = await waitForRun(auto.runId);
    expect(done.status).toBe('Succeeded');
    expect((await call('GET', `/runs/${auto.runId}/log`)).text).toMatch(/^app on node 15\.2\.1a$/m);

    // Push the very same manifest bytes again: the registry notifies, nothing is rebuilt, and the reason is recorded.
    expect(await pushManifestAgain(base, '15-alpine')).toBe(201);
    const updates = await until('the unchanged re-push to be recorded', async () => {
      const res = await call(
        'GET',
        `/imageUpdates?image=${encodeURIComponent(`localhost:${registry().split(':')[1]}/${base}:15-alpine`)}`,
      );
      return res.body.value.length >= 3 ? res.body.value : undefined;
    });
    expect(updates[0].decisions).toEqual([
      {
        task: 'baseexample1',
        decision: 'skipped',
        reason: `digest unchanged: the task was last built from ${updatedBase.outputImages[0].digest}`,
      },
    ]);
    expect((await runsOf('baseexample1')).length).toBe(2);
  });

  it('runs a two-level cascade (base → mid → app) with the app rebuilt exactly once, from the new mid', async () => {
    const base = 'cascade/base';
    await buildBase(base, '1');
    const reg = registry();
    git.commit('cascade', 'main', {
      'mid/Dockerfile': `FROM ${reg}/${base}:15-alpine\nRUN echo "mid on $NODE_VERSION" > /mid.txt\n`,
      'app/Dockerfile': `FROM ${reg}/cascade/mid:latest\nRUN cat /mid.txt\n`,
    });
    const task = (name: string, folder: string, image: string): Promise<unknown> =>
      call('PUT', `/tasks/${name}`, {
        properties: {
          step: { type: 'Docker', contextPath: `${git.url('cascade')}#main:${folder}`, imageNames: [image] },
          trigger: { baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime' } },
        },
      });
    // The app task is created once mid has an image: tasks are tracked from creation, so mid's first push
    // would otherwise (rightly) count as an update of the app's base.
    await task('cascade-mid', 'mid', 'cascade/mid:latest');
    const firstMid = await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'cascade-mid' });
    expect((await waitForRun(firstMid.body.name)).status).toBe('Succeeded');
    await task('cascade-app', 'app', 'cascade/app:latest');
    const firstApp = await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'cascade-app' });
    expect((await waitForRun(firstApp.body.name)).status).toBe('Succeeded');

    const baseDigest = (await buildBase(base, '2')).outputImages[0].digest as string;

    const mid = await until('the mid rebuild', async () =>
      (await runsOf('cascade-mid')).find((r) => r.imageUpdateTrigger),
    );
    expect((await waitForRun(mid.runId)).status).toBe('Succeeded');
    const app = await until('the app rebuild', async () =>
      (await runsOf('cascade-app')).find((r) => r.imageUpdateTrigger),
    );
    const appDone = await waitForRun(app.runId);
    expect(appDone.status).toBe('Succeeded');
    expect(appDone.imageUpdateTrigger.images[0]).toMatchObject({
      repository: 'cascade/mid',
      tag: 'latest',
      digest: (await waitForRun(mid.runId)).outputImages[0].digest,
    });
    expect((await call('GET', `/runs/${app.runId}/log`)).text).toMatch(/^mid on 2$/m);
    // Each push was decided once, and the decision is recorded: the base's started mid, the new mid's started app.
    const decided = async (image: string, digest: string): Promise<any> =>
      until(`the decision for ${image}@${digest}`, async () => {
        const res = await call('GET', `/imageUpdates?image=${encodeURIComponent(image)}`);
        return res.body.value.find((u: any) => u.digest === digest);
      });
    const midDigest = (await waitForRun(mid.runId)).outputImages[0].digest as string;
    expect((await decided(`${reg}/${base}:15-alpine`, baseDigest)).decisions).toEqual([
      { task: 'cascade-mid', decision: 'triggered', reason: expect.any(String), runId: mid.runId },
    ]);
    expect((await decided(`${reg}/cascade/mid:latest`, midDigest)).decisions).toEqual([
      { task: 'cascade-app', decision: 'triggered', reason: expect.any(String), runId: app.runId },
    ]);

    // The new mid arrives again (the same manifest pushed again: a new registry event with the same digest). The
    // duplicate is decided, and recorded as skipped with its reason; a run it started would be listed before that.
    const before = (
      await call('GET', `/imageUpdates?image=${encodeURIComponent(`${reg}/cascade/mid:latest`)}`)
    ).body.value.length as number;
    expect(await pushManifestAgain('cascade/mid', 'latest')).toBe(201);
    const duplicate = await until('the duplicate mid push to be decided', async () => {
      const res = await call('GET', `/imageUpdates?image=${encodeURIComponent(`${reg}/cascade/mid:latest`)}`);
      return res.body.value.length > before ? res.body.value[0] : undefined;
    });
    expect(duplicate.digest).toBe(midDigest);
    expect(duplicate.decisions).toEqual([
      {
        task: 'cascade-app',
        decision: 'skipped',
        reason: expect.stringMatching(
          new RegExp(`^(digest unchanged: the task was last built from|already triggered for) ${midDigest}$`),
        ),
      },
    ]);
    expect((await runsOf('cascade-app')).filter((r) => r.imageUpdateTrigger)).toHaveLength(1);
    expect((await runsOf('cascade-mid')).filter((r) => r.imageUpdateTrigger)).toHaveLength(1);
  });

  it('never lets an image trigger its own task (a task built FROM the tag it pushes)', async () => {
    const reg = registry();
    git.commit('selfloop', 'main', { 'self/Dockerfile': `FROM ${reg}/cascade/self:latest\nRUN true\n` });
    const seed = await uploadContext(writeContext({ Dockerfile: `FROM ${busyboxBase()}\n` }));
    await waitForRun(
      (
        await call('POST', '/scheduleRun', {
          type: 'DockerBuildRequest',
          imageNames: ['cascade/self:latest'],
          sourceLocation: seed,
          dockerFilePath: 'Dockerfile',
          platform: { os: 'Linux', architecture: 'amd64' },
        })
      ).body.name,
    );
    await call('PUT', '/tasks/cascade-self', {
      properties: {
        step: {
          type: 'Docker',
          contextPath: `${git.url('selfloop')}#main:self`,
          imageNames: ['cascade/self:latest'],
        },
        trigger: { baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime' } },
      },
    });
    // The first run records that the task is built from its own tag; the second run's push is then judged a loop.
    for (let i = 0; i < 2; i++) {
      const run = await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'cascade-self' });
      expect((await waitForRun(run.body.name)).status).toBe('Succeeded');
    }
    const updates = await until('the self push to be decided', async () => {
      const res = await call(
        'GET',
        `/imageUpdates?image=${encodeURIComponent(`${reg}/cascade/self:latest`)}`,
      );
      return res.body.value.find((u: any) => u.decisions.length > 0);
    });
    expect(updates.decisions).toEqual([
      { task: 'cascade-self', decision: 'skipped', reason: "the image is the task's own output (a loop)" },
    ]);
    expect((await runsOf('cascade-self')).filter((r) => r.imageUpdateTrigger)).toEqual([]);
  });

  it('tracks a task from its creation: a base update rebuilds it before it ever ran (ACR needs a first run)', async () => {
    const base = 'tracked/base';
    await buildBase(base, '1');
    git.commit('tracked', 'main', {
      Dockerfile: `FROM localhost:${registry().split(':')[1]}/${base}:15-alpine\nRUN echo tracked\n`,
    });
    const created = await call('PUT', '/tasks/never-ran', {
      properties: {
        step: {
          type: 'Docker',
          contextPath: `${git.url('tracked')}#main`,
          imageNames: ['tracked/app:{{.Run.ID}}'],
        },
        trigger: { baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime' } },
      },
    });
    expect(created.body.properties.step.baseImageDependencies).toEqual([
      {
        type: 'RunTime',
        registry: `localhost:${registry().split(':')[1]}`,
        repository: base,
        tag: '15-alpine',
        digest: null,
        platformDigest: null,
      },
    ]);
    const deps = await call(
      'GET',
      `/dependencies?image=${encodeURIComponent(`${registry()}/${base}:15-alpine`)}`,
    );
    expect(deps.body.value).toEqual([
      expect.objectContaining({ task: 'never-ran', type: 'RunTime', digest: null }),
    ]);

    await buildBase(base, '2');

    const run = await until('the first run, by an image update', async () =>
      (await runsOf('never-ran')).find((r) => r.imageUpdateTrigger),
    );
    expect((await waitForRun(run.runId)).status).toBe('Succeeded');
    expect(await runsOf('never-ran')).toHaveLength(1);
  });

  it("POSTs the trigger's updateTriggerEndpoint, with the token of the last manual run, when an update starts a run", async () => {
    const received: { headers: Record<string, unknown>; body: any }[] = [];
    const server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(data) });
        res.writeHead(received.length === 1 ? 503 : 200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify?code=s3cret`;
    try {
      const base = 'notified/base';
      await buildBase(base, '1');
      git.commit('notified', 'main', {
        Dockerfile: `FROM ${registry()}/${base}:15-alpine\nRUN echo notified\n`,
      });
      await call('PUT', '/tasks/notified', {
        properties: {
          step: {
            type: 'Docker',
            contextPath: `${git.url('notified')}#main`,
            imageNames: ['notified/app:v'],
          },
          trigger: {
            baseImageTrigger: {
              name: 'b',
              baseImageTriggerType: 'Runtime',
              updateTriggerEndpoint: endpoint,
              updateTriggerPayloadType: 'Default',
            },
          },
        },
      });
      const token = Buffer.from('release-pipeline-token').toString('base64');
      const manual = await call('POST', '/scheduleRun', {
        type: 'TaskRunRequest',
        taskId: 'notified',
        overrideTaskStepProperties: { updateTriggerToken: token },
      });
      expect((await waitForRun(manual.body.name)).status).toBe('Succeeded');
      const shown = await call('GET', '/tasks/notified');
      expect(JSON.stringify(shown.body)).not.toContain(token);
      expect(received).toHaveLength(0);
      // An update of the task keeps the token (it is sealed with the task's secrets, not given again).
      expect((await call('PATCH', '/tasks/notified', { tags: { team: 'release' } })).status).toBe(200);

      await buildBase(base, '2');
      const run = await until('the image-update run', async () =>
        (await runsOf('notified')).find((r) => r.imageUpdateTrigger),
      );
      // The first delivery is answered 503: the queue delivers it again.
      await until('a delivered notification', async () => (received.length >= 2 ? true : undefined));
      const last = received[received.length - 1]!;
      expect(last.headers['x-refit-delivery']).toBe(run.runId);
      expect(last.body).toEqual({
        updateTriggerToken: token,
        action: 'baseImageUpdated',
        registry: expect.any(String),
        taskName: 'notified',
        runId: run.runId,
        imageUpdateTrigger: run.imageUpdateTrigger,
      });
      await waitForRun(run.runId);
    } finally {
      server.close();
    }
  });

  describe('the Event Grid webhook (ACR)', () => {
    // The Functions host's Event Grid endpoint takes the host key as ?code=.
    const key = process.env.REFIT_TEST_KEY!;
    const grid = (body: unknown, headers: Record<string, string> = {}, method = 'POST'): Promise<Response> =>
      fetch(`${process.env.REFIT_URL}/runtime/webhooks/eventgrid?functionName=imageEventGrid&code=${key}`, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        ...(method === 'POST' ? { body: JSON.stringify(body) } : {}),
      });

    it('answers both validation handshakes', async () => {
      const validation = await grid(
        [
          {
            id: 'v',
            topic: '/subscriptions/x',
            subject: '',
            eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
            data: { validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' },
            eventTime: '2022-10-28T04:23:35Z',
            dataVersion: '1',
            metadataVersion: '1',
          },
        ],
        { 'aeg-event-type': 'SubscriptionValidation' },
      );
      expect(validation.status).toBe(200);
      expect(await validation.json()).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });
      const options = await grid(undefined, { 'webhook-request-origin': 'eventgrid.azure.net' }, 'OPTIONS');
      expect(options.status).toBe(200);
      expect(options.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');
      expect(
        (
          await fetch(`${process.env.REFIT_URL}/runtime/webhooks/eventgrid?functionName=nope`, {
            method: 'POST',
            body: '[]',
          })
        ).status,
      ).toBe(404);
    });

    it('takes ImagePushed (data as a string) into the same decision as registry notifications', async () => {
      const base = 'grid/base';
      await buildBase(base, '1');
      git.commit('grid', 'main', { Dockerfile: `FROM ${registry()}/${base}:15-alpine\nRUN true\n` });
      await call('PUT', '/tasks/grid-task', {
        properties: {
          step: {
            type: 'Docker',
            contextPath: `${git.url('grid')}#main`,
            imageNames: ['grid/app:{{.Run.ID}}'],
          },
          trigger: { baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime' } },
        },
      });
      const updated = await buildBase(base, '2');
      const digest = updated.outputImages[0].digest as string;
      await until('the registry-notified run', async () =>
        (await runsOf('grid-task')).find((r) => r.imageUpdateTrigger),
      );

      const data = {
        id: 'grid-event-1',
        timestamp: new Date().toISOString(),
        action: 'push',
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest,
          repository: base,
          tag: '15-alpine',
        },
        request: { host: registry() },
      };
      const res = await grid(
        [
          {
            id: 'grid-event-1',
            topic: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/local',
            subject: `${base}:15-alpine`,
            eventType: 'Microsoft.ContainerRegistry.ImagePushed',
            data: JSON.stringify(data),
            dataVersion: '1.0',
            metadataVersion: '1',
            eventTime: new Date().toISOString(),
          },
        ],
        { 'aeg-event-type': 'Notification' },
      );
      expect(res.status).toBe(202);
      const record = await until('the Event Grid decision', async () => {
        const updates = await call(
          'GET',
          `/imageUpdates?image=${encodeURIComponent(`${registry()}/${base}:15-alpine`)}`,
        );
        return updates.body.value.find((u: any) => u.eventId === 'grid-event-1');
      });
      expect(record.source).toBe('eventgrid');
      expect(record.decisions).toEqual([
        { task: 'grid-task', decision: 'skipped', reason: `already triggered for ${digest}` },
      ]);
      expect((await runsOf('grid-task')).filter((r) => r.imageUpdateTrigger)).toHaveLength(1);
    });
  });

  describe('POST /hooks/registry', () => {
    const post = (body: unknown, auth = `Bearer ${registrySecret()}`): Promise<Response> =>
      fetch(`${process.env.REFIT_URL}/api/hooks/registry`, {
        method: 'POST',
        headers: {
          'content-type': 'application/vnd.docker.distribution.events.v1+json',
          ...(auth ? { authorization: auth } : {}),
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it('takes a Harbor push into the same decision, and refuses a Docker Hub one without ?secret=', async () => {
      const base = 'harbor/base';
      const built = await buildBase(base, '1');
      const digest = built.outputImages[0].digest as string;
      const harbor = {
        type: 'PUSH_ARTIFACT',
        occur_at: Math.floor(Date.now() / 1000),
        event_data: {
          resources: [{ digest, tag: '15-alpine', resource_url: `${registry()}/${base}:15-alpine` }],
          repository: { repo_full_name: base },
        },
      };
      const res = await post(harbor);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ source: 'harbor', manifestPushes: 1, queued: 1 });
      const hub = await fetch(`${process.env.REFIT_URL}/api/hooks/registry`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ push_data: { tag: 'latest' }, repository: { repo_name: 'me/app' } }),
      });
      expect(hub.status).toBe(401);
      const hubOk = await fetch(`${process.env.REFIT_URL}/api/hooks/registry?secret=${registrySecret()}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          push_data: { tag: 'latest', pushed_at: 1 },
          repository: { repo_name: 'me/app' },
        }),
      });
      expect(await hubOk.json()).toEqual({ source: 'dockerhub', manifestPushes: 1, queued: 1 });
    });

    it('refuses a notification without the bearer token', async () => {
      expect((await post({ events: [] }, '')).status).toBe(401);
      expect((await post({ events: [] }, 'Bearer wrong')).status).toBe(401);
    });

    it('answers malformed envelopes with 400 and ignores pulls, deletes and blob pushes', async () => {
      expect((await post('{"events": [')).status).toBe(400);
      expect((await post({ nothing: true })).status).toBe(400);
      const res = await post({
        events: [
          {
            id: 'p1',
            action: 'pull',
            target: {
              mediaType: 'application/vnd.oci.image.manifest.v1+json',
              digest: 'sha256:' + 'a'.repeat(64),
              repository: 'x',
              tag: 'latest',
            },
          },
          { id: 'd1', action: 'delete', target: { digest: 'sha256:' + 'a'.repeat(64), repository: 'x' } },
          {
            id: 'b1',
            action: 'push',
            target: {
              mediaType: 'application/octet-stream',
              digest: 'sha256:' + 'b'.repeat(64),
              repository: 'x',
            },
          },
          {
            id: 'v2',
            action: 'delete',
            target: { mediaType: '', digest: '', size: 0, repository: 'x', tag: 'v1' },
          },
        ],
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ received: 4, manifestPushes: 0, queued: 0 });
    });
  });
});
