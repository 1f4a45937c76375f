// Every request body of ACR's own REST examples (Tasks, Runs, ScheduleRun; 2019-06-01-preview and 2025-03-01-preview,
// vendored in test/fixtures/acr-examples) sent to Refit's routes as it is: each is accepted, or refused with a 400
// whose message says what Refit does not support. The refusals are listed below with their reason; an example with
// no entry fails the test, so a newly vendored one cannot be skipped.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { call, type ApiResponse } from '../support/api';

const ROOT = join(__dirname, '../fixtures/acr-examples');

/** What Refit answers an example: accepted, or refused with a reason naming the field. */
type Outcome =
  | { readonly accepted: true }
  | { readonly refused: RegExp; readonly target: string; readonly because: string };

const accepted: Outcome = { accepted: true };
const LOG_TEMPLATE = {
  refused: /logTemplate is not supported: Refit does not push run logs to a registry as artifacts/,
  because: 'logTemplate pushes the run log to the registry as an artifact, which Refit does not do',
};
const MANAGED_IDENTITY = {
  refused: /a managed identity is resolved in Azure mode only/,
  because:
    'the test stack is local mode: identities and the Key Vault secrets they read need REFIT_IDENTITY_CLIENT_ID',
};
const ENCODED_IF = {
  refused: /'\{\{ if \}\}' actions are not supported in task files/,
  target: 'encodedTaskContent',
  because: "the example's task uses {{ if }}, which Refit's task-file templates do not support",
};
const NO_SOURCE = {
  refused: /sourceLocation is required with a FileTaskRunRequest: the task file is read from the source/,
  target: 'sourceLocation',
  because: 'the example names a task file but no source to read it from',
};
const USER_IDENTITY = {
  refused: /is not supported: Refit cannot give a task user-assigned identities/,
  target: 'identity.type',
  because:
    'a task cannot be given user-assigned identities; the deployment identity stands for SystemAssigned',
};
const CREDENTIAL = (part: string): string =>
  `properties.credentials.customRegistries['myregistry.azurecr.io'].${part}`;

/** Every vendored example, by `<version>/<path>`, with what Refit must answer. */
const EXPECTED: Record<string, Outcome> = {
  '2019-06-01-preview/TasksCreate.json': accepted,
  '2019-06-01-preview/TasksCreate_QuickTask.json': {
    refused: /system tasks \(isSystemTask true\) are not supported/,
    target: 'properties.isSystemTask',
    because: 'a system task has no step: Refit tasks always have one',
  },
  '2019-06-01-preview/TasksUpdate.json': { ...MANAGED_IDENTITY, target: CREDENTIAL('identity') },
  '2019-06-01-preview/TasksUpdate_QuickTask.json': { ...LOG_TEMPLATE, target: 'properties.logTemplate' },
  '2019-06-01-preview/TasksUpdate_WithOpaqueCustomCredentials.json': accepted,
  '2019-06-01-preview/ManagedIdentity/TasksCreate_WithSystemAndUserIdentities.json': USER_IDENTITY,
  '2019-06-01-preview/ManagedIdentity/TasksCreate_WithSystemIdentity.json': accepted,
  '2019-06-01-preview/ManagedIdentity/TasksCreate_WithUserIdentities.json': USER_IDENTITY,
  '2019-06-01-preview/ManagedIdentity/TasksUpdate_WithKeyVaultCustomCredentials.json': {
    ...MANAGED_IDENTITY,
    target: CREDENTIAL('identity'),
  },
  '2019-06-01-preview/ManagedIdentity/TasksUpdate_WithMSICustomCredentials.json': {
    ...MANAGED_IDENTITY,
    target: CREDENTIAL('identity'),
  },
  '2019-06-01-preview/RegistriesScheduleRun.json': accepted,
  '2019-06-01-preview/RegistriesScheduleRun_EncodedTaskRun.json': ENCODED_IF,
  '2019-06-01-preview/RegistriesScheduleRun_FileTaskRun.json': accepted,
  '2019-06-01-preview/RegistriesScheduleRun_FileTask_WithCustomCredentials.json': NO_SOURCE,
  '2019-06-01-preview/RegistriesScheduleRun_Task.json': accepted,
  '2019-06-01-preview/RegistriesScheduleRun_WithCustomCredentials.json': accepted,
  '2019-06-01-preview/RegistriesScheduleRun_WithLogTemplate.json': { ...LOG_TEMPLATE, target: 'logTemplate' },
  '2019-06-01-preview/RunsUpdate.json': accepted,
  '2025-03-01-preview/TasksCreate.json': { ...LOG_TEMPLATE, target: 'properties.logTemplate' },
  '2025-03-01-preview/TasksUpdate.json': { ...LOG_TEMPLATE, target: 'properties.logTemplate' },
  '2025-03-01-preview/ManagedIdentity/TasksCreate_WithSystemAndUserIdentities.json': USER_IDENTITY,
  '2025-03-01-preview/ManagedIdentity/TasksUpdate_WithLoginIdentity.json': accepted,
  '2025-03-01-preview/ManagedIdentity/TasksUpdate_WithKeyVaultCustomCredentials.json': {
    ...MANAGED_IDENTITY,
    target: CREDENTIAL('identity'),
  },
  '2025-03-01-preview/ManagedIdentity/TasksUpdate_WithMSICustomCredentials.json': {
    ...MANAGED_IDENTITY,
    target: CREDENTIAL('identity'),
  },
  '2025-03-01-preview/RegistriesScheduleRun.json': accepted,
  '2025-03-01-preview/RegistriesScheduleRun_EncodedTaskRun.json': ENCODED_IF,
  '2025-03-01-preview/RegistriesScheduleRun_FileTaskRun.json': accepted,
  '2025-03-01-preview/RegistriesScheduleRun_FileTask_WithCustomCredentials.json': NO_SOURCE,
  '2025-03-01-preview/RegistriesScheduleRun_Task.json': accepted,
  '2025-03-01-preview/RegistriesScheduleRun_WithCustomCredentials.json': accepted,
  '2025-03-01-preview/RegistriesScheduleRun_WithLogTemplate.json': { ...LOG_TEMPLATE, target: 'logTemplate' },
  '2025-03-01-preview/RunsUpdate.json': accepted,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return name.endsWith('.json') ? [path] : [];
  });
}

const read = (path: string): any => JSON.parse(readFileSync(join(ROOT, path), 'utf8'));

/** The examples with a request body (TasksGet has none: its response is the round trip's body). */
const examples = files(ROOT)
  .map((path) => relative(ROOT, path))
  .filter((path) => !path.endsWith('/TasksGet.json'))
  .sort();

/** The one task every update example and the TaskRunRequest name, made from ACR's own create example. */
async function createMyTask(): Promise<void> {
  const body = read('2019-06-01-preview/TasksCreate.json').parameters.taskCreateParameters;
  const created = await call('PUT', '/tasks/myTask', body);
  if (created.status >= 300) throw new Error(`myTask was not created: ${created.text}`);
}

/** The run a RunsUpdate example patches: the example's own run ID exists only in ACR. */
async function someRunId(): Promise<string> {
  const run = await call(
    'POST',
    '/scheduleRun',
    read('2019-06-01-preview/RegistriesScheduleRun.json').parameters.runRequest,
  );
  if (run.status !== 200) throw new Error(`no run to update: ${run.text}`);
  return run.body.properties.runId as string;
}

/** Sends an example's body to the route its operation is served on. */
async function send(parameters: any): Promise<ApiResponse> {
  if (parameters.taskCreateParameters)
    return call('PUT', `/tasks/${parameters.taskName}`, parameters.taskCreateParameters);
  if (parameters.taskUpdateParameters)
    return call('PATCH', `/tasks/${parameters.taskName}`, parameters.taskUpdateParameters);
  if (parameters.runRequest) return call('POST', '/scheduleRun', parameters.runRequest);
  if (parameters.runUpdateParameters)
    return call('PATCH', `/runs/${await someRunId()}`, parameters.runUpdateParameters);
  throw new Error(`no request body in ${Object.keys(parameters).join(', ')}`);
}

describe('ACR request bodies (acr-body)', () => {
  beforeAll(createMyTask);

  describe('the vendored examples', () => {
    it('each has an expected outcome listed here', () => {
      expect(examples.filter((e) => !(e in EXPECTED))).toEqual([]);
      expect(Object.keys(EXPECTED).filter((e) => !examples.includes(e))).toEqual([]);
    });

    it.each(examples)(
      '%s is accepted or refused with a 400 that names what Refit does not support',
      async (example) => {
        await createMyTask(); // an earlier update example may have changed it
        const expected = EXPECTED[example]!;
        const response = await send(read(example).parameters);
        if ('accepted' in expected) {
          expect(response.status < 300 ? 'accepted' : response.text).toBe('accepted');
        } else {
          expect(response.status).toBe(400);
          expect(response.body.error.code).toBe('InvalidRequest');
          expect(response.body.error.message).toMatch(expected.refused);
          expect(response.body.error.target).toBe(expected.target);
        }
      },
    );
  });

  describe('PUT /tasks/{taskName}', () => {
    it('accepts a task exported from ACR with GET (nulls, ids, systemData, read-only properties) and PUT back', async () => {
      const exported = {
        ...read('2019-06-01-preview/TasksGet.json').responses['200'].body,
        systemData: {
          createdBy: 'someone@example.com',
          createdByType: 'User',
          createdAt: '2018-01-25T06:54:23.536Z',
          lastModifiedBy: 'someone@example.com',
          lastModifiedByType: 'User',
          lastModifiedAt: '2018-01-25T06:54:23.536Z',
        },
      };
      await call('DELETE', '/tasks/myExportedTask');
      const put = await call('PUT', '/tasks/myExportedTask', exported);
      expect(put.status).toBe(201);
      const got = await call('GET', '/tasks/myExportedTask');
      expect(got.body.properties).toMatchObject({
        status: 'Enabled',
        platform: { os: 'Linux', architecture: 'amd64' },
        agentConfiguration: { cpu: 2 },
        step: { type: 'Docker', imageNames: ['azurerest:testtag'], dockerFilePath: 'src/DockerFile' },
        trigger: {
          timerTriggers: [{ name: 'myTimerTrigger', schedule: '30 9 * * 1-5', status: 'Enabled' }],
          baseImageTrigger: { name: 'myBaseImageTrigger', updateTriggerPayloadType: 'Token' },
        },
      });
      // ACR's creation date is read-only: the task's own is kept.
      expect(got.body.properties.creationDate).not.toBe('2018-01-25T06:54:23.536Z');
      // And what Refit returns goes back as it is too.
      expect((await call('PUT', '/tasks/myExportedTask', got.body)).status).toBe(200);
    });

    it('takes a platform without architecture as amd64', async () => {
      const body = read('2019-06-01-preview/TasksCreate.json').parameters.taskCreateParameters;
      const put = await call('PUT', '/tasks/myLinuxTask', {
        ...body,
        properties: { ...body.properties, platform: { os: 'linux' } },
      });
      expect(put.status).toBeLessThan(300);
      expect(put.body.properties.platform).toEqual({ os: 'Linux', architecture: 'amd64' });
    });
  });

  describe('PATCH /tasks/{taskName}', () => {
    beforeEach(createMyTask);

    it("merges a source trigger given only its repository's auth properties with the stored one", async () => {
      const patch = read('2019-06-01-preview/TasksUpdate_WithOpaqueCustomCredentials.json').parameters
        .taskUpdateParameters;
      const res = await call('PATCH', '/tasks/myTask', patch);
      expect(res.status).toBe(200);
      expect(res.body.properties.trigger.sourceTriggers).toEqual([
        {
          name: 'mySourceTrigger',
          sourceRepository: {
            sourceControlType: 'Github',
            repositoryUrl: 'https://github.com/Azure/azure-rest-api-specs',
            branch: 'master',
            sourceControlAuthProperties: { tokenType: 'PAT' },
          },
          sourceTriggerEvents: ['commit'],
          status: 'Enabled',
        },
      ]);
      expect(res.body.properties.step).toMatchObject({
        imageNames: ['azurerest:testtag1'],
        contextPath: 'src',
      });
      expect(res.body.properties.agentConfiguration).toEqual({ cpu: 3 });
    });

    it('changes a timer given without its schedule (status only) and keeps the schedule', async () => {
      const res = await call('PATCH', '/tasks/myTask', {
        properties: { trigger: { timerTriggers: [{ name: 'myTimerTrigger', status: 'Disabled' }] } },
      });
      expect(res.status).toBe(200);
      expect(res.body.properties.trigger.timerTriggers).toEqual([
        { name: 'myTimerTrigger', schedule: '0 30 9 * * 1-5', status: 'Disabled' },
      ]);
    });

    it('refuses a new timer without a schedule, naming the field', async () => {
      const res = await call('PATCH', '/tasks/myTask', {
        properties: { trigger: { timerTriggers: [{ name: 'newTimer', status: 'Enabled' }] } },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.target).toBe('properties.trigger.timerTriggers[1].schedule');
    });

    it('merges baseImageTrigger fields with the stored trigger', async () => {
      const res = await call('PATCH', '/tasks/myTask', {
        properties: { trigger: { baseImageTrigger: { baseImageTriggerType: 'All' } } },
      });
      expect(res.status).toBe(200);
      expect(res.body.properties.trigger.baseImageTrigger).toMatchObject({
        name: 'myBaseImageTrigger',
        baseImageTriggerType: 'All',
        updateTriggerPayloadType: 'Token',
        status: 'Enabled',
      });
      const again = await call('PATCH', '/tasks/myTask', {
        properties: {
          trigger: { baseImageTrigger: { updateTriggerPayloadType: 'Default', status: 'Disabled' } },
        },
      });
      expect(again.body.properties.trigger.baseImageTrigger).toMatchObject({
        name: 'myBaseImageTrigger',
        baseImageTriggerType: 'All',
        updateTriggerPayloadType: 'Default',
        status: 'Disabled',
      });
    });

    it('keeps the architecture when a platform update gives only the os', async () => {
      await call('PATCH', '/tasks/myTask', {
        properties: { platform: { os: 'Linux', architecture: 'arm64' } },
      });
      const res = await call('PATCH', '/tasks/myTask', { properties: { platform: { os: 'Linux' } } });
      expect(res.body.properties.platform).toEqual({ os: 'Linux', architecture: 'arm64' });
    });

    it('accepts credentials.sourceRegistry.identity [system] and refuses another identity by name', async () => {
      const ok = await call('PATCH', '/tasks/myTask', {
        properties: { credentials: { sourceRegistry: { identity: '[system]' } } },
      });
      expect(ok.status).toBe(200);
      expect(ok.body.properties.credentials.sourceRegistry).toEqual({ identity: '[system]' });
      const other = await call('PATCH', '/tasks/myTask', {
        properties: { credentials: { sourceRegistry: { identity: 'e35621a5-f615-4a20-940e-de8a84b15abc' } } },
      });
      expect(other.status).toBe(400);
      expect(other.body.error.target).toBe('properties.credentials.sourceRegistry.identity');
    });
  });

  describe('POST /scheduleRun', () => {
    it('refuses agentPoolName with the reason', async () => {
      const body = read('2025-03-01-preview/RegistriesScheduleRun.json').parameters.runRequest;
      const res = await call('POST', '/scheduleRun', { ...body, agentPoolName: 'myPool' });
      expect(res.status).toBe(400);
      expect(res.body.error.target).toBe('agentPoolName');
      expect(res.body.error.message).toMatch(/agent pools are not supported/);
    });

    it('ignores explicit nulls as if absent', async () => {
      const body = read('2025-03-01-preview/RegistriesScheduleRun.json').parameters.runRequest;
      const res = await call('POST', '/scheduleRun', {
        ...body,
        target: null,
        agentPoolName: null,
        logTemplate: null,
      });
      expect(res.status).toBe(200);
      expect(res.body.properties.status).toBe('Queued');
    });
  });
});
