import { ContainerRegistryManagementClient } from '@azure/arm-containerregistry';
import {
  bearerTokenAuthenticationPolicyName,
  type PipelinePolicy,
  RestError,
} from '@azure/core-rest-pipeline';
import { packContext } from '../../src/cli/source-archive';
import {
  baseUrl,
  busyboxBase,
  call,
  stackConfig,
  until,
  untilTrue,
  waitForRun,
  writeContext,
} from '../support/api';
import { GitServer } from '../support/git';

// Microsoft's own client, @azure/arm-containerregistry 11.0.0 (api-version 2019-06-01-preview for tasks, runs and
// scheduleRun), pointed at the test stack as a user would point it at Refit: endpoint `<Refit URL>/api`.
const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
const GROUP = 'my-group';

/**
 * Sends the key as ARM clients send a token (`Authorization: Bearer`), or as `x-functions-key`, which the Functions
 * host checks in Azure; the SDK's own bearer policy refuses plain http.
 */
function keyPolicy(key: string, header: 'bearer' | 'x-functions-key'): PipelinePolicy {
  return {
    name: 'refitKey',
    sendRequest: (request, next) => {
      if (header === 'bearer') request.headers.set('authorization', `Bearer ${key}`);
      else request.headers.set('x-functions-key', key);
      return next(request);
    },
  };
}

function client(
  key = process.env.REFIT_TEST_KEY!,
  header: 'bearer' | 'x-functions-key' = 'bearer',
): ContainerRegistryManagementClient {
  // The credential is never asked for a token: its policy is replaced by keyPolicy.
  const credential = { getToken: () => Promise.resolve(null) };
  const c = new ContainerRegistryManagementClient(credential, SUBSCRIPTION, {
    endpoint: `${baseUrl()}/api`,
    allowInsecureConnection: true,
    // The test waits on recorded state; the client's own retries would only hide a refusal.
    retryOptions: { maxRetries: 0 },
  });
  c.pipeline.removePolicy({ name: bearerTokenAuthenticationPolicyName });
  c.pipeline.addPolicy(keyPolicy(key, header));
  return c;
}

const FINISHED = ['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout'];

describe('the ARM-shaped API', () => {
  const registryName = (): string => stackConfig().arm.registryName;
  const registryId = (): string =>
    `/subscriptions/${SUBSCRIPTION}/resourceGroups/${GROUP}/providers/Microsoft.ContainerRegistry/registries/${registryName()}`;
  const git = new GitServer();
  beforeAll(() => git.start());
  afterAll(() => git.stop());

  describe('@azure/arm-containerregistry 11.0.0', () => {
    it('uploads a source, schedules a build, follows it to Succeeded, lists it by filter and reads its log through the log link', async () => {
      const sdk = client();
      const marker = `arm-sdk-${Date.now()}`;
      const upload = await sdk.registries.getBuildSourceUploadUrl(GROUP, registryName());
      const dir = writeContext({
        Dockerfile: `FROM ${busyboxBase()}\nRUN echo ${marker}\n`,
      });
      const put = await fetch(upload.uploadUrl!, {
        method: 'PUT',
        headers: { 'x-ms-blob-type': 'BlockBlob' },
        body: await packContext(dir, 'Dockerfile'),
      });
      expect(put.status).toBe(201);

      const queued = await sdk.registries.beginScheduleRunAndWait(GROUP, registryName(), {
        type: 'DockerBuildRequest',
        imageNames: [`arm-sdk/app:${marker}`],
        isPushEnabled: true,
        sourceLocation: upload.relativePath!,
        dockerFilePath: 'Dockerfile',
        platform: { os: 'Linux', architecture: 'amd64' },
      });
      expect(queued.id).toBe(`${registryId()}/runs/${queued.runId}`);
      expect(queued.type).toBe('Microsoft.ContainerRegistry/registries/runs');

      const done = await until(
        `run ${queued.runId} to finish`,
        async () => {
          const run = await sdk.runs.get(GROUP, registryName(), queued.runId!);
          return FINISHED.includes(run.status!) ? run : undefined;
        },
        120000,
      );
      expect(done.status).toBe('Succeeded');
      expect(done.outputImages?.[0]).toMatchObject({ repository: 'arm-sdk/app', tag: marker });

      const listed = [];
      for await (const run of sdk.runs.list(GROUP, registryName(), {
        filter: `runId eq '${queued.runId}'`,
        top: 5,
      }))
        listed.push(run);
      expect(listed.map((r) => r.id)).toEqual([`${registryId()}/runs/${queued.runId}`]);

      const { logLink } = await sdk.runs.getLogSasUrl(GROUP, registryName(), queued.runId!);
      const log = await (await fetch(logLink!)).text();
      expect(log).toContain(marker);

      const archived = await sdk.runs.beginUpdateAndWait(GROUP, registryName(), queued.runId!, {
        isArchiveEnabled: true,
      });
      expect(archived.isArchiveEnabled).toBe(true);
    });

    it('creates, gets, updates in part, lists, runs by its ARM id and deletes a task', async () => {
      const sdk = client();
      const name = `armtask${Date.now()}`;
      git.commit(name, 'main', { Dockerfile: `FROM ${busyboxBase()}\nRUN echo task ${name}\n` });

      const created = await sdk.tasks.beginCreateAndWait(GROUP, registryName(), name, {
        location: 'eastus',
        platform: { os: 'Linux', architecture: 'amd64' },
        step: {
          type: 'Docker',
          contextPath: `${git.url(name)}#main`,
          dockerFilePath: 'Dockerfile',
          imageNames: [`arm-sdk/${name}:{{.Run.ID}}`],
          isPushEnabled: true,
          arguments: [{ name: 'TOKEN', value: 's3cret', isSecret: true }],
        },
        timeout: 600,
      });
      expect(created).toMatchObject({
        id: `${registryId()}/tasks/${name}`,
        name,
        type: 'Microsoft.ContainerRegistry/registries/tasks',
        provisioningState: 'Succeeded',
        timeout: 600,
      });

      const got = await sdk.tasks.get(GROUP, registryName(), name);
      expect(got.id).toBe(created.id);
      expect(JSON.stringify(got)).not.toContain('s3cret');
      const details = await sdk.tasks.getDetails(GROUP, registryName(), name);
      expect(details.step).toMatchObject({ arguments: [{ name: 'TOKEN', value: 's3cret', isSecret: true }] });

      const updated = await sdk.tasks.beginUpdateAndWait(GROUP, registryName(), name, { timeout: 900 });
      expect(updated).toMatchObject({ id: created.id, timeout: 900, status: 'Enabled' });
      expect(updated.step).toMatchObject({ contextPath: `${git.url(name)}#main` });

      const names = [];
      for await (const task of sdk.tasks.list(GROUP, registryName())) names.push(task.id);
      expect(names).toContain(created.id);

      const run = await sdk.registries.beginScheduleRunAndWait(GROUP, registryName(), {
        type: 'TaskRunRequest',
        taskId: created.id!,
      });
      expect(run.task).toBe(name);
      const elsewhere = created.id!.replace(`/registries/${registryName()}/`, '/registries/someoneelse/');
      await expect(
        sdk.registries.beginScheduleRunAndWait(GROUP, registryName(), {
          type: 'TaskRunRequest',
          taskId: elsewhere,
        }),
      ).rejects.toMatchObject({
        statusCode: 404,
        message: expect.stringContaining("names registry 'someoneelse'"),
      });
      expect((await waitForRun(run.runId!, 120000)).status).toBe('Succeeded');

      await sdk.tasks.beginDeleteAndWait(GROUP, registryName(), name);
      await expect(sdk.tasks.get(GROUP, registryName(), name)).rejects.toMatchObject({ statusCode: 404 });
    });

    it('cancels a run', async () => {
      const sdk = client();
      const marker = `arm-cancel-${Date.now()}`;
      const upload = await sdk.registries.getBuildSourceUploadUrl(GROUP, registryName());
      const dir = writeContext({ Dockerfile: `FROM ${busyboxBase()}\nRUN echo ${marker} && sleep 120\n` });
      await fetch(upload.uploadUrl!, {
        method: 'PUT',
        headers: { 'x-ms-blob-type': 'BlockBlob' },
        body: await packContext(dir, 'Dockerfile'),
      });
      const run = await sdk.registries.beginScheduleRunAndWait(GROUP, registryName(), {
        type: 'DockerBuildRequest',
        imageNames: [],
        isPushEnabled: false,
        sourceLocation: upload.relativePath!,
        dockerFilePath: 'Dockerfile',
        platform: { os: 'Linux', architecture: 'amd64' },
      });
      await untilTrue('the run to start', async () => {
        const r = await sdk.runs.get(GROUP, registryName(), run.runId!);
        return r.status !== 'Queued';
      });
      await sdk.runs.beginCancelAndWait(GROUP, registryName(), run.runId!);
      expect((await waitForRun(run.runId!, 60000)).status).toBe('Canceled');
    });

    it('is refused with a 401 RestError for a wrong key', async () => {
      const sdk = client('not-the-key');
      const err: unknown = await sdk.tasks.get(GROUP, registryName(), 'anything').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RestError);
      expect(err).toMatchObject({ statusCode: 401, code: 'Unauthorized' });
    });

    it('takes the key as x-functions-key too (as the Functions host wants it in Azure)', async () => {
      const tasks = [];
      for await (const task of client(process.env.REFIT_TEST_KEY, 'x-functions-key').tasks.list(
        GROUP,
        registryName(),
      ))
        tasks.push(task);
      expect(tasks.every((t) => t.id!.startsWith(`${registryId()}/tasks/`))).toBe(true);
      const err: unknown = await client('wrong', 'x-functions-key')
        .tasks.list(GROUP, registryName())
        .next()
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ statusCode: 401 });
    });

    it("answers another registry's name with ARM's 404 ResourceNotFound", async () => {
      const err: unknown = await client()
        .runs.get(GROUP, 'someoneelse', 'aa1')
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
    });
  });

  describe('ARM routes without the SDK', () => {
    const arm = (path: string, version = '2019-06-01-preview'): string =>
      `/subscriptions/${SUBSCRIPTION}/resourceGroups/${GROUP}/providers/Microsoft.ContainerRegistry/registries/${registryName()}${path}${version ? `?api-version=${version}` : ''}`;

    it.each(['2019-04-01', '2019-06-01-preview', '2025-03-01-preview'])(
      'accepts api-version %s',
      async (v) => {
        const res = await call('GET', arm('/tasks', v));
        expect(res.status).toBe(200);
        expect(Array.isArray(res.body.value)).toBe(true);
      },
    );

    it.each([
      [
        'another api-version',
        '2017-10-01',
        'InvalidApiVersionParameter',
        "The api-version '2017-10-01' is invalid",
      ],
      ['no api-version', '', 'MissingApiVersionParameter', 'api-version query parameter'],
    ])('answers %s with 400', async (_what, version, code, message) => {
      const res = await call('GET', arm('/runs', version));
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toContain(message);
    });

    it.each([
      ['GET', '/agentPools', 'agentPools'],
      ['PUT', '/agentPools/pool1', 'agentPools'],
      ['POST', '/agentPools/pool1/listQueueStatus', 'agentPools'],
      ['GET', '/taskRuns/tr1', 'taskRuns'],
      ['POST', '/taskRuns/tr1/listDetails', 'taskRuns'],
    ])('answers %s %s with a 400 saying Refit does not support it', async (method, path, what) => {
      const res = await call(method, arm(path));
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'UnsupportedOperation', target: what });
      expect(res.body.error.message).toContain(`Refit does not support ${what}`);
    });

    it('takes the key as Authorization: Bearer on the short routes too, and refuses a wrong one', async () => {
      const key = process.env.REFIT_TEST_KEY!;
      const ok = await fetch(`${baseUrl()}/api/tasks`, { headers: { authorization: `Bearer ${key}` } });
      expect(ok.status).toBe(200);
      const wrong = await fetch(`${baseUrl()}/api/tasks`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
    });
  });
});
