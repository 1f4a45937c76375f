// The fake ACI surface driven by the real @azure/arm-containerinstance client, and its traffic checked against the
// vendored ACI spec with oav: what the AciExecutor's tests rely on when they take FakeAci for Azure.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerInstanceManagementClient, type ContainerGroup } from '@azure/arm-containerinstance';
import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/core-auth';
import { FakeAci, type FakeAciOptions, type RecordedPair } from '../../support/fake-aci';
import { validateAciTraffic } from '../../support/aci-traffic';
import { until, untilTrue } from '../../support/api';

const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-builds';
const UAMI = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-builder`;
const credential: TokenCredential = {
  getToken: async () => ({ token: 'fake-token', expiresOnTimestamp: Date.now() + 3_600_000 }),
};
const POLL = { updateIntervalInMs: 1 };

// Every fake of this file: the last describe validates all their traffic against the spec.
const fakes: FakeAci[] = [];
function fakeAci(options: FakeAciOptions = {}): { fake: FakeAci; client: ContainerInstanceManagementClient } {
  const fake = new FakeAci(options);
  fakes.push(fake);
  return {
    fake,
    client: new ContainerInstanceManagementClient(credential, SUBSCRIPTION, { httpClient: fake }),
  };
}
afterAll(async () => {
  await Promise.all(fakes.map((f) => f.stop()));
});

/** A Refit-style build group (the SDK's flattened model; the wire nests each container's fields under properties). */
function buildGroup(extra: Partial<ContainerGroup> = {}): ContainerGroup {
  return {
    location: 'westeurope',
    osType: 'Linux',
    restartPolicy: 'Never',
    sku: 'Standard',
    priority: 'Regular',
    identity: { type: 'UserAssigned', userAssignedIdentities: { [UAMI]: {} } },
    containers: [
      {
        name: 'build',
        image: 'ghcr.io/osscontainertools/kaniko:debug',
        command: ['/kaniko/executor', '--context=dir:///workspace'],
        resources: { requests: { cpu: 2, memoryInGB: 4 } },
        environmentVariables: [
          { name: 'AZURE_CLIENT_ID', value: 'client-id' },
          { name: 'REFIT_TOKEN', secureValue: 's3cret' },
        ],
        volumeMounts: [{ name: 'workspace', mountPath: '/workspace' }],
      },
    ],
    volumes: [
      { name: 'workspace', emptyDir: {} },
      { name: 'docker-config', secret: { 'config.json': Buffer.from('{"auths":{}}').toString('base64') } },
    ],
    ...extra,
  };
}

async function create(client: ContainerInstanceManagementClient, name: string, group = buildGroup()) {
  return (await client.containerGroups.beginCreateOrUpdate(RG, name, group, POLL)).pollUntilDone();
}

async function ended(client: ContainerInstanceManagementClient, name: string): Promise<ContainerGroup> {
  return until(`${name} ended`, async () => {
    const group = await client.containerGroups.get(RG, name);
    return ['Succeeded', 'Failed'].includes(group.instanceView?.state ?? '') ? group : undefined;
  });
}

describe('FakeAci', () => {
  describe('containerGroups.beginCreateOrUpdate', () => {
    it('answers 201 with a Pending group and an Azure-AsyncOperation URL, whose polls end Succeeded', async () => {
      const { fake, client } = fakeAci();

      const poller = await client.containerGroups.beginCreateOrUpdate(RG, 'run-aa1', buildGroup(), POLL);
      const created = await poller.pollUntilDone();

      const put = fake.requests[0]!;
      expect(put.request.method).toBe('PUT');
      expect(put.response.status).toBe(201);
      expect(put.response.headers['azure-asyncoperation']).toMatch(
        new RegExp(
          `^https://management.azure.com/subscriptions/${SUBSCRIPTION}/providers/Microsoft.ContainerInstance/locations/westeurope/operations/[^/?]+\\?api-version=`,
        ),
      );
      expect(put.response.body).toMatchObject({
        name: 'run-aa1',
        type: 'Microsoft.ContainerInstance/containerGroups',
        properties: { provisioningState: 'Pending', instanceView: { state: 'Pending' } },
      });
      const polls = fake.requests.filter((r) => r.request.url.includes('/operations/'));
      expect(polls.map((p) => (p.response.body as { status: string }).status).at(-1)).toBe('Succeeded');
      expect(created.provisioningState).toBe('Succeeded');
      expect(created.instanceView?.state).toBe('Running');
    });

    it('sends the containers nested under properties, as the spec wants them', async () => {
      const { fake, client } = fakeAci();

      await create(client, 'run-aa2');

      expect(fake.requests[0]!.request.body).toMatchObject({
        properties: { containers: [{ name: 'build', properties: { image: expect.any(String) } }] },
      });
    });

    it("answers a Spot group's create with provisioningState Created, as the CreatePriority example", async () => {
      const { fake, client } = fakeAci();

      const created = await create(client, 'run-aa4', buildGroup({ priority: 'Spot' }));

      expect(fake.requests[0]!.response.body).toMatchObject({
        properties: { provisioningState: 'Created', instanceView: { state: 'Created' }, priority: 'Spot' },
      });
      expect(created.provisioningState).toBe('Succeeded');
    });

    it('updates a group whose name exists, answering 200', async () => {
      const { fake, client } = fakeAci();
      await create(client, 'run-aa3');

      const updated = await create(client, 'run-aa3', buildGroup({ tags: { run: 'aa3' } }));

      expect(fake.requests.filter((r) => r.request.method === 'PUT').map((r) => r.response.status)).toEqual([
        201, 200,
      ]);
      expect(updated.tags).toEqual({ run: 'aa3' });
      expect(fake.groups()).toHaveLength(1);
    });
  });

  describe('containerGroups.get', () => {
    it('gives the instance views and hides secure values, secret volume contents and passwords', async () => {
      const { client } = fakeAci();
      await create(
        client,
        'run-ab1',
        buildGroup({ imageRegistryCredentials: [{ server: 'r.example', username: 'u', password: 'pw' }] }),
      );

      const group = await client.containerGroups.get(RG, 'run-ab1');

      expect(group.instanceView).toMatchObject({ state: 'Running', events: expect.any(Array) });
      expect(group.containers[0]!.instanceView).toMatchObject({
        restartCount: 0,
        currentState: { state: 'Running', startTime: expect.any(Date) },
        events: [expect.objectContaining({ name: 'Started' })],
      });
      expect(group.containers[0]!.environmentVariables).toEqual([
        { name: 'AZURE_CLIENT_ID', value: 'client-id' },
        { name: 'REFIT_TOKEN' },
      ]);
      expect(group.volumes?.find((v) => v.name === 'docker-config')?.secret).toEqual({});
      expect(group.imageRegistryCredentials).toEqual([{ server: 'r.example', username: 'u' }]);
    });
  });

  describe('containerGroups.listByResourceGroup', () => {
    it('pages with nextLink past the page size and lists only that resource group', async () => {
      const { fake, client } = fakeAci({ pageSize: 2 });
      for (const name of ['run-ac1', 'run-ac2', 'run-ac3', 'run-ac4', 'run-ac5']) await create(client, name);
      await create(client, 'elsewhere', buildGroup());
      await client.containerGroups.beginCreateOrUpdate('rg-other', 'other', buildGroup(), POLL);

      const names: string[] = [];
      for await (const group of client.containerGroups.listByResourceGroup(RG)) names.push(group.name!);

      expect(names).toEqual(['run-ac1', 'run-ac2', 'run-ac3', 'run-ac4', 'run-ac5', 'elsewhere']);
      const lists = fake.requests.filter(
        (r) => r.request.method === 'GET' && /containerGroups\?/.test(r.request.url),
      );
      expect(lists).toHaveLength(3);
      expect(lists.map((l) => typeof (l.response.body as { nextLink?: string }).nextLink)).toEqual([
        'string',
        'string',
        'undefined',
      ]);
    });
  });

  describe('containers.listLogs', () => {
    it('gives the last lines with tail, and all of them without', async () => {
      const { fake, client } = fakeAci();
      await create(client, 'run-ad1');
      fake.appendLog('run-ad1', 'build', 'step 1\nstep 2\nsha256:abc\n');

      const tail = await client.containers.listLogs(RG, 'run-ad1', 'build', { tail: 2 });
      const all = await client.containers.listLogs(RG, 'run-ad1', 'build');

      expect(tail.content).toBe('step 2\nsha256:abc\n');
      expect(all.content).toBe('step 1\nstep 2\nsha256:abc\n');
    });

    it('keeps only the last 16 KB once the container stopped', async () => {
      const { fake, client } = fakeAci();
      await create(client, 'run-ad2');
      fake.appendLog('run-ad2', 'build', 'x'.repeat(40 * 1024) + '\nlast line\n');
      expect((await client.containers.listLogs(RG, 'run-ad2', 'build')).content).toHaveLength(40 * 1024 + 11);

      fake.terminate('run-ad2', 'build', 0);
      const stopped = await client.containers.listLogs(RG, 'run-ad2', 'build');

      expect(Buffer.byteLength(stopped.content!)).toBe(16 * 1024);
      expect(stopped.content!.endsWith('\nlast line\n')).toBe(true);
    });
  });

  describe('containerGroups.beginDelete', () => {
    it('answers 200 with the deleted group, then 204 when it is gone', async () => {
      const { fake, client } = fakeAci();
      await create(client, 'run-ae1');

      await client.containerGroups.beginDeleteAndWait(RG, 'run-ae1', POLL);
      await client.containerGroups.beginDeleteAndWait(RG, 'run-ae1', POLL);

      const deletes = fake.requests.filter((r) => r.request.method === 'DELETE');
      expect(deletes.map((d) => d.response.status)).toEqual([200, 204]);
      expect(deletes[0]!.response.body).toMatchObject({ name: 'run-ae1' });
      await expect(client.containerGroups.get(RG, 'run-ae1')).rejects.toMatchObject({
        statusCode: 404,
        code: 'ResourceNotFound',
      });
    });
  });

  describe('throttleCreates', () => {
    it("answers 429 with Retry-After and ARM's error body; the SDK waits that long and creates", async () => {
      const { fake, client } = fakeAci();
      fake.throttleCreates(1, 1);

      const created = await create(client, 'run-af1');

      const puts = fake.requests.filter((r) => r.request.method === 'PUT');
      expect(puts.map((p) => p.response.status)).toEqual([429, 201]);
      expect(puts[0]!.response.headers['retry-after']).toBe('1');
      expect(puts[0]!.response.body).toMatchObject({ error: { code: 'SubscriptionRequestsThrottled' } });
      expect(puts[1]!.at - puts[0]!.at).toBeGreaterThanOrEqual(1000);
      expect(created.provisioningState).toBe('Succeeded');
    });
  });

  describe('quotaExceeded', () => {
    it("refuses the create with ACI's quota error, then creates once the quota frees", async () => {
      const { fake, client } = fakeAci();
      fake.quotaExceeded(1);

      const refused = client.containerGroups.beginCreateOrUpdate(RG, 'run-ag1', buildGroup(), POLL);

      await expect(refused).rejects.toMatchObject({
        statusCode: 409,
        code: 'ServiceUnavailable',
        message: expect.stringContaining(
          "container group quota 'StandardCores' exceeded in region 'westeurope'",
        ),
      });
      expect(fake.groups()).toEqual([]);
      expect((await create(client, 'run-ag1')).provisioningState).toBe('Succeeded');
    });
  });

  describe('failProvisioning', () => {
    it('ends the operation Failed and the group in provisioningState Failed with the message as its event', async () => {
      const { fake, client } = fakeAci();
      fake.failProvisioning('next', 'Failed to pull image "ghcr.io/osscontainertools/kaniko:debug"');

      const outcome = create(client, 'run-ah1');

      await expect(outcome).rejects.toThrow(/Failed to pull image/);
      const group = await client.containerGroups.get(RG, 'run-ah1');
      expect(group.provisioningState).toBe('Failed');
      expect(group.instanceView?.state).toBe('Pending');
      expect(group.instanceView?.events).toEqual([
        expect.objectContaining({
          name: 'Failed',
          message: 'Failed to pull image "ghcr.io/osscontainertools/kaniko:debug"',
        }),
      ]);
      expect((await create(client, 'run-ah2')).provisioningState).toBe('Succeeded');
    });

    it('fails a named group that is still provisioning', async () => {
      const { fake, client } = fakeAci({ provisionAfterMs: 60_000 });
      const poller = await client.containerGroups.beginCreateOrUpdate(RG, 'run-ah3', buildGroup(), POLL);

      fake.failProvisioning('run-ah3', 'Output: mount error(2): Permission denied');

      await expect(poller.pollUntilDone()).rejects.toThrow(/mount error/);
    });
  });

  describe('deleteBehindTheBack', () => {
    it('makes the group vanish without a request of its own', async () => {
      const { fake, client } = fakeAci();
      await create(client, 'run-ai1');
      const before = fake.requests.length;

      fake.deleteBehindTheBack('run-ai1');

      expect(fake.requests).toHaveLength(before);
      await expect(client.containerGroups.get(RG, 'run-ai1')).rejects.toMatchObject({ statusCode: 404 });
      expect([...(await arrayOf(client.containerGroups.listByResourceGroup(RG)))]).toEqual([]);
    });
  });

  describe('terminate', () => {
    it.each([
      [0, 'Succeeded', 'Completed'],
      [1, 'Failed', 'Error'],
    ])('ends the container with exit code %i, and the group %s', async (exitCode, groupState, detail) => {
      const { fake, client } = fakeAci();
      await create(client, `run-aj${exitCode}`);

      fake.terminate(`run-aj${exitCode}`, 'build', exitCode);

      const group = await client.containerGroups.get(RG, `run-aj${exitCode}`);
      expect(group.instanceView?.state).toBe(groupState);
      expect(group.containers[0]!.instanceView?.currentState).toMatchObject({
        state: 'Terminated',
        exitCode,
        detailStatus: detail,
        finishTime: expect.any(Date),
      });
    });
  });

  describe('restartOnce', () => {
    it('restarts the build container when it ends: restartCount 1, the first run in previousState', async () => {
      const { fake, client } = fakeAci();
      await create(client, 'run-ak1');
      fake.restartOnce('run-ak1');

      fake.terminate('run-ak1', 'build', 2);
      const restarted = await client.containerGroups.get(RG, 'run-ak1');
      fake.terminate('run-ak1', 'build', 0);
      const final = await client.containerGroups.get(RG, 'run-ak1');

      expect(restarted.containers[0]!.instanceView).toMatchObject({
        restartCount: 1,
        currentState: { state: 'Running' },
        previousState: { state: 'Terminated', exitCode: 2 },
      });
      expect(restarted.instanceView?.state).toBe('Running');
      expect(final.containers[0]!.instanceView).toMatchObject({
        restartCount: 1,
        currentState: { exitCode: 0 },
      });
      expect(final.instanceView?.state).toBe('Succeeded');
    });
  });

  describe('play', () => {
    const programs = { '/busybox/sh': 'sh' };
    const sh = (script: string): string[] => ['/busybox/sh', '-c', script];
    const workspace = [{ name: 'workspace', mountPath: '/workspace' }];
    const resources = { requests: { cpu: 1, memoryInGB: 1 } };

    it('runs the init container, then two containers sharing an emptyDir, each with only its own environment', async () => {
      const { client } = fakeAci({ play: { programs } });
      const group = buildGroup({
        initContainers: [
          {
            name: 'fetch',
            image: 'busybox',
            command: sh('echo fetched > /workspace/source; echo init done'),
            volumeMounts: workspace,
          },
        ],
        containers: [
          {
            name: 'build',
            image: 'busybox',
            resources,
            command: sh(
              'cat /workspace/source; cat /kaniko/.docker/config.json; echo; echo "token=$REFIT_TOKEN id=$AZURE_CLIENT_ID home=${HOME:-none}"; echo built > /workspace/result',
            ),
            environmentVariables: [
              { name: 'AZURE_CLIENT_ID', value: 'client-id' },
              { name: 'REFIT_TOKEN', secureValue: 's3cret' },
            ],
            volumeMounts: [
              ...workspace,
              { name: 'docker-config', mountPath: '/kaniko/.docker', readOnly: true },
            ],
          },
          {
            name: 'reader',
            image: 'busybox',
            resources,
            command: sh('until [ -f /workspace/result ]; do sleep 0.05; done; cat /workspace/result'),
            volumeMounts: workspace,
          },
        ],
      });

      await create(client, 'run-al1', group);
      const done = await ended(client, 'run-al1');

      expect(done.instanceView?.state).toBe('Succeeded');
      expect(done.initContainers?.[0]?.instanceView?.currentState).toMatchObject({
        state: 'Terminated',
        exitCode: 0,
      });
      expect(done.containers.map((c) => c.instanceView?.currentState?.exitCode)).toEqual([0, 0]);
      expect((await client.containers.listLogs(RG, 'run-al1', 'fetch')).content).toBe('init done\n');
      expect((await client.containers.listLogs(RG, 'run-al1', 'build')).content).toBe(
        'fetched\n{"auths":{}}\ntoken=s3cret id=client-id home=none\n',
      );
      expect((await client.containers.listLogs(RG, 'run-al1', 'reader')).content).toBe('built\n');
    });

    it('rewrites whole mount and program paths in arguments and env values, not parts of other words', async () => {
      const bin = mkdtempSync(join(tmpdir(), 'refit-fakeaci-bin-'));
      writeFileSync(join(bin, 'stand-in'), '#!/bin/sh\necho "stand-in $*"\n', { mode: 0o755 });
      const { client } = fakeAci({
        play: { programs: { ...programs, '/kaniko/executor': join(bin, 'stand-in') } },
      });
      const group = buildGroup({
        containers: [
          {
            name: 'build',
            image: 'busybox',
            resources,
            command: sh(
              '/kaniko/executor --context=tar:///workspace/c.tgz --destination=r.example/workspace:1; echo "$WHERE"; ls /workspace',
            ),
            environmentVariables: [{ name: 'WHERE', value: '/workspace/digest /workspaces' }],
            volumeMounts: workspace,
          },
        ],
        initContainers: [
          { name: 'fetch', image: 'busybox', command: sh('touch /workspace/c.tgz'), volumeMounts: workspace },
        ],
      });

      await create(client, 'run-al7', group);
      await ended(client, 'run-al7');

      const log = (await client.containers.listLogs(RG, 'run-al7', 'build')).content!;
      const [, folder] = /--context=tar:\/\/(\/\S+)\/c\.tgz/.exec(log) ?? [];
      expect(folder).toMatch(/\/volumes\/workspace$/);
      expect(log).toBe(
        `stand-in --context=tar://${folder}/c.tgz --destination=r.example/workspace:1\n${folder}/digest /workspaces\nc.tgz\n`,
      );
      rmSync(bin, { recursive: true, force: true });
    });

    it('fails the group when an init container fails, and never starts the containers', async () => {
      const { client } = fakeAci({ play: { programs } });
      const group = buildGroup({
        initContainers: [{ name: 'fetch', image: 'busybox', command: sh('echo no source >&2; exit 3') }],
        containers: [{ name: 'build', image: 'busybox', resources, command: sh('echo should not run') }],
      });

      await create(client, 'run-al2', group);
      const done = await ended(client, 'run-al2');

      expect(done.instanceView?.state).toBe('Failed');
      expect(done.initContainers?.[0]?.instanceView?.currentState).toMatchObject({
        state: 'Terminated',
        exitCode: 3,
      });
      expect(done.containers[0]!.instanceView?.currentState?.state).toBe('Waiting');
      expect((await client.containers.listLogs(RG, 'run-al2', 'fetch')).content).toBe('no source\n');
    });

    it('fails a container whose command is an absolute path missing here, like a missing binary', async () => {
      const { client } = fakeAci({ play: { programs } });

      await create(client, 'run-al3');
      const done = await ended(client, 'run-al3');

      expect(done.instanceView?.state).toBe('Failed');
      expect(done.containers[0]!.instanceView?.currentState).toMatchObject({
        state: 'Terminated',
        exitCode: 127,
      });
      expect(done.containers[0]!.instanceView?.events).toContainEqual(
        expect.objectContaining({ name: 'Failed', message: expect.stringContaining('/kaniko/executor') }),
      );
    });

    it('runs the container again after a platform restart, with restartCount 1 and a fresh log', async () => {
      const { fake, client } = fakeAci({ play: { programs } });
      const group = buildGroup({
        containers: [
          {
            name: 'build',
            image: 'busybox',
            resources,
            command: sh('echo run; [ -f /workspace/ran ] && exit 0; touch /workspace/ran; exit 1'),
            volumeMounts: workspace,
          },
        ],
      });
      const poller = await client.containerGroups.beginCreateOrUpdate(RG, 'run-al4', group, POLL);
      fake.restartOnce('run-al4', 'build');
      await poller.pollUntilDone();

      const done = await ended(client, 'run-al4');

      expect(done.instanceView?.state).toBe('Succeeded');
      expect(done.containers[0]!.instanceView).toMatchObject({
        restartCount: 1,
        previousState: { state: 'Terminated', exitCode: 1 },
        currentState: { state: 'Terminated', exitCode: 0 },
      });
      expect((await client.containers.listLogs(RG, 'run-al4', 'build')).content).toBe('run\n');
    });

    it('kills the running processes when the group is deleted', async () => {
      const { client } = fakeAci({ play: { programs } });
      const out = mkdtempSync(join(tmpdir(), 'refit-fakeaci-test-'));
      const group = buildGroup({
        containers: [
          {
            name: 'build',
            image: 'busybox',
            resources,
            command: sh('echo $$ > "$OUT/pid"; exec sleep 60'),
            environmentVariables: [{ name: 'OUT', value: out }],
          },
        ],
      });
      await create(client, 'run-al5', group);
      const pid = await until('the pid file', async () => {
        try {
          return Number(readFileSync(join(out, 'pid'), 'utf8'));
        } catch {
          return undefined;
        }
      });

      await client.containerGroups.beginDeleteAndWait(RG, 'run-al5', POLL);

      await untilTrue('the process ended', () => !alive(pid), 5000);
      rmSync(out, { recursive: true, force: true });
    });

    it('ends a played container with the exit code terminate gives', async () => {
      const { fake, client } = fakeAci({ play: { programs } });
      await create(
        client,
        'run-al6',
        buildGroup({
          containers: [{ name: 'build', image: 'busybox', resources, command: sh('echo up; exec sleep 60') }],
        }),
      );
      await untilTrue('the container ran', () => fake.groups()[0]!.containers[0]!.log === 'up\n');

      fake.terminate('run-al6', 'build', 5);
      const done = await ended(client, 'run-al6');

      expect(done.containers[0]!.instanceView?.currentState).toMatchObject({
        state: 'Terminated',
        exitCode: 5,
      });
    });
  });
});

// Runs after every test above (jest keeps the order of a file's tests), over the traffic of all their fakes.
describe('aci-traffic', () => {
  describe('validateAciTraffic', () => {
    it('finds no issue in the traffic of every test above', async () => {
      const traffic = fakes.flatMap((f) => f.requests);
      expect(traffic.length).toBeGreaterThan(50);

      const issues = await validateAciTraffic(traffic);

      expect(issues).toEqual([]);
    });

    it("accepts Microsoft's own examples, replayed as traffic", async () => {
      const examples = join(
        __dirname,
        '../../fixtures/aci/Microsoft.ContainerInstance/stable/2023-05-01/examples',
      );
      const replay = (file: string, method: string, status: string, logs = false): RecordedPair => {
        const { parameters: p, responses } = JSON.parse(readFileSync(join(examples, file), 'utf8'));
        const group = p.containerGroupName ? `/${p.containerGroupName}` : '';
        const query = `api-version=${p['api-version']}${p.tail ? `&tail=${p.tail}` : ''}`;
        return {
          at: 0,
          request: {
            method,
            url: `https://management.azure.com/subscriptions/${p.subscriptionId}/resourceGroups/${p.resourceGroupName}/providers/Microsoft.ContainerInstance/containerGroups${group}${logs ? `/containers/${p.containerName}/logs` : ''}?${query}`,
            headers: { 'content-type': 'application/json' },
            body: p.containerGroup,
          },
          response: {
            status: Number(status),
            headers: { 'content-type': 'application/json' },
            body: responses[status].body,
          },
        };
      };

      const issues = await validateAciTraffic([
        replay('ContainerGroupsCreateOrUpdate.json', 'PUT', '201'),
        replay('ContainerGroupsCreatePriority.json', 'PUT', '201'),
        replay('ContainerGroupsGet_Succeeded.json', 'GET', '200'),
        replay('ContainerGroupsGet_Failed.json', 'GET', '200'),
        replay('ContainerGroupsListByResourceGroup.json', 'GET', '200'),
        replay('ContainerGroupsDelete.json', 'DELETE', '200'),
        replay('ContainerListLogs.json', 'GET', '200', true),
      ]);

      expect(issues).toEqual([]);
    });

    it('reports a create request whose container is flattened (image beside name, not under properties)', async () => {
      const fake = new FakeAci();
      const request = createPipelineRequest({
        url: `https://management.azure.com/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}/providers/Microsoft.ContainerInstance/containerGroups/bad?api-version=2023-05-01`,
        method: 'PUT',
        headers: createHttpHeaders({
          authorization: 'Bearer fake-token',
          'content-type': 'application/json',
        }),
        body: JSON.stringify({
          location: 'westeurope',
          properties: {
            osType: 'Linux',
            containers: [
              { name: 'build', image: 'busybox', resources: { requests: { cpu: 1, memoryInGB: 1 } } },
            ],
          },
        }),
      });
      await fake.sendRequest(request);
      const pair: RecordedPair = fake.requests[0]!;

      const issues = await validateAciTraffic([pair]);

      expect(pair.response.status).toBe(400);
      expect(issues).toContainEqual(
        expect.objectContaining({
          operationId: 'ContainerGroups_CreateOrUpdate',
          code: 'OBJECT_ADDITIONAL_PROPERTIES',
          path: '$.properties.containers[0].image',
          source: 'request',
        }),
      );
      expect(issues).toContainEqual(
        expect.objectContaining({
          code: 'OBJECT_MISSING_REQUIRED_PROPERTY',
          path: '$.properties.containers[0].properties',
        }),
      );
    });
  });
});

async function arrayOf<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
