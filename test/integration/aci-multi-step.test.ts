import { createHash, randomUUID } from 'node:crypto';
import { busyboxBase, registry, registryDigest, until } from '../support/api';
import { aciSuite, api, completeLogOf, logOf, STAND_IN, upload } from '../support/aci-refit';
import { validateAciTraffic } from '../support/aci-traffic';
import { FakeAci } from '../support/fake-aci';
import { isFinished, waitForRecorded } from '../support/in-process';
import { testPort } from '../support/private-registry';

/** How long a wait may take: each step is a group the fake plays with buildah, slow on a loaded machine. */
const SLOW = 120_000;

/** The container groups ARM was asked to create for a run, in order, by name. */
function createdGroups(fake: FakeAci, runId: string): string[] {
  return fake.requests
    .filter((p) => p.request.method === 'PUT' && p.request.url.includes(`/containerGroups/refit-${runId}-`))
    .map((p) => p.request.url.split('/containerGroups/')[1]!.split('?')[0]!);
}

/** When ARM was asked to delete each of a run's groups (its index among all requests), by name. */
function deletions(fake: FakeAci, runId: string): Map<string, number> {
  const at = new Map<string, number>();
  fake.requests.forEach((p, i) => {
    if (p.request.method !== 'DELETE' || !p.request.url.includes(`/containerGroups/refit-${runId}-`)) return;
    const name = p.request.url.split('/containerGroups/')[1]!.split('?')[0]!;
    if (!at.has(name)) at.set(name, i);
  });
  return at;
}

/** A task file, as `az acr run` sends it. */
const encoded = (lines: readonly string[]): string => Buffer.from(lines.join('\n') + '\n').toString('base64');

describe('AciExecutor multi-step', () => {
  const fake = new FakeAci({
    play: {
      programs: { '/kaniko/executor': STAND_IN, '/busybox/sh': 'sh' },
      inImage: (image) => image.startsWith(`${registry()}/`),
    },
  });
  const suite = aciSuite(fake, testPort(620));

  it('builds, runs a cmd step on the image it just built, and pushes it: each step a container group of its own', async () => {
    const repository = `aci/multi-${randomUUID().slice(0, 8)}`;
    const image = `{{.Run.Registry}}/${repository}:{{.Run.ID}}`;
    const sourceLocation = await upload(suite.r, {
      Dockerfile: `FROM ${busyboxBase()}\nRUN echo built-in-aci > /built.txt\n`,
      // Built FROM the first build's image, which is nowhere but in the run-scoped repository.
      'on.Dockerfile': `FROM ${registry()}/${repository}:base\nRUN cat /built.txt > /on.txt\n`,
    });
    const scheduled = await api(suite.url, 'POST', '/scheduleRun', {
      type: 'EncodedTaskRunRequest',
      sourceLocation,
      encodedTaskContent: encoded([
        'version: v1.1.0',
        'steps:',
        '  - id: build',
        `    build: -t ${image} -t {{.Run.Registry}}/${repository}:base .`,
        '  - id: on',
        `    build: -f on.Dockerfile -t {{.Run.Registry}}/${repository}-on:{{.Run.ID}} .`,
        '  - id: test',
        `    cmd: {{.Run.Registry}}/${repository}-on:{{.Run.ID}} sh -c "cat /on.txt > /workspace/tested.txt && echo tested-in-the-image"`,
        '  - id: push',
        `    push: ["${image}"]`,
        '  - id: check',
        `    cmd: ${busyboxBase()} cat /workspace/tested.txt`,
      ]),
      platform: { os: 'Linux', architecture: 'amd64' },
    });
    expect(scheduled.status).toBe(200);
    const runId = scheduled.body.properties.runId as string;

    const run = await waitForRecorded(suite.r, runId, isFinished);

    const log = await completeLogOf(suite.r, runId);
    expect({ status: run.status, error: run.runErrorMessage }).toEqual({
      status: 'Succeeded',
      error: undefined,
    });
    // The cmd step ran inside the image the build step made (its file), and left a file in the workspace that a step
    // two groups later read.
    expect(log).toContain('[test] ');
    expect(log).toContain('tested-in-the-image');
    expect(log).toMatch(/\[check\] .*built-in-aci/);
    // The push step gave the image its name: the digest recorded is the registry's.
    expect(run.outputImages).toEqual([
      {
        registry: registry(),
        repository,
        tag: runId,
        digest: await registryDigest(repository, runId),
      },
    ]);
    expect(run.baseImageDependencies).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          repository: 'refit/busybox',
          tag: 'stable',
          digest: expect.stringMatching(/^sha256:/),
        }),
      ]),
    );
    expect(run.costEstimate).toMatchObject({ currency: 'USD' });
    expect(log).toContain(`Run ID: ${runId} was successful`);
    // One group per step, in the graph's order; each deleted when its step reported; the run-scoped image deleted.
    expect(createdGroups(fake, runId)).toEqual(
      [0, 1, 2, 3, 4].map((i) => expect.stringMatching(new RegExp(`-${i}-r0a0$`))),
    );
    await until(
      'every group of the run to be deleted',
      async () => (fake.groups().some((g) => g.name.includes(`refit-${runId}-`)) ? undefined : true),
      SLOW,
    );
    const scopedTag = createHash('sha256')
      .update(`${registry()}/${repository}:${runId}`)
      .digest('hex')
      .slice(0, 20);
    const scoped = `refit-runs/${runId.toLowerCase()}-${deploymentOf(createdGroups(fake, runId)[0]!, runId)}`;
    await until(
      'the run-scoped image to be deleted',
      async () => ((await registryDigest(scoped, scopedTag)) === null ? true : undefined),
      SLOW,
    );
    // Every request the executor sent holds to ACI's OpenAPI spec.
    expect(await validateAciTraffic(fake.requests.filter((p) => p.request.url.includes(runId)))).toEqual([]);
  });

  it('runs independent steps as parallel groups, merges their workspaces, and stops at a failing step: its dependents never start', async () => {
    const cmd = (script: string) => `${busyboxBase()} sh -c "${script}"`;
    const scheduled = await api(suite.url, 'POST', '/scheduleRun', {
      type: 'EncodedTaskRunRequest',
      encodedTaskContent: encoded([
        'version: v1.1.0',
        'steps:',
        '  - id: seed',
        `    cmd: ${cmd('echo seeded > /workspace/shared; touch /workspace/gone')}`,
        '  - id: left',
        `    cmd: ${cmd('sleep 2; echo from-left > /workspace/left; echo edited-by-left > /workspace/shared; rm /workspace/gone')}`,
        '    when: ["seed"]',
        '  - id: right',
        `    cmd: ${cmd('sleep 2; echo from-right > /workspace/right')}`,
        '    when: ["seed"]',
        '  - id: join',
        `    cmd: ${cmd('cat /workspace/left /workspace/right /workspace/shared; ls /workspace')}`,
        '    when: ["left", "right"]',
        '  - id: fails',
        `    cmd: ${cmd('exit 3')}`,
        '  - id: never',
        `    cmd: ${cmd('echo never-ran')}`,
      ]),
      platform: { os: 'Linux', architecture: 'amd64' },
    });
    expect(scheduled.status).toBe(200);
    const runId = scheduled.body.properties.runId as string;

    const run = await waitForRecorded(suite.r, runId, isFinished);

    expect({ status: run.status, error: run.runErrorMessage }).toEqual({
      status: 'Failed',
      error: 'failed to run step ID: fails: exit code 3',
    });
    const created = createdGroups(fake, runId);
    const [left, right, join_, fails] = [1, 2, 3, 4].map((i) =>
      created.find((n) => n.endsWith(`-${i}-r0a0`)),
    );
    // left and right were both created before either was deleted: they ran at the same time.
    const deleted = deletions(fake, runId);
    const createdAt = (name: string | undefined) =>
      fake.requests.findIndex(
        (p) => p.request.method === 'PUT' && p.request.url.includes(`/containerGroups/${name}?`),
      );
    expect(left && right && join_ && fails).toBeTruthy();
    expect(Math.max(createdAt(left), createdAt(right))).toBeLessThan(
      Math.min(deleted.get(left!)!, deleted.get(right!)!),
    );
    // The step after the failing one never got a group.
    expect(created.some((n) => n.endsWith('-5-r0a0'))).toBe(false);
    const log = await logOf(suite.r, runId);
    expect(log).toMatch(/\[join\] from-left/);
    expect(log).toMatch(/\[join\] from-right/);
    // Each step passes on its changes, not its copy of the whole workspace: right's untouched copy of `shared` does
    // not undo left's edit, and the file left deleted stays deleted.
    expect(log).toMatch(/\[join\] edited-by-left/);
    expect(log).not.toMatch(/\[join\] seeded/);
    expect(log).not.toMatch(/\[join\] gone$/m);
    expect(log).toContain('Step ID: fails marked as failed');
    expect(log).not.toContain('never-ran');
  });

  it('runs a FileTask from its git context: a source group fetches the folder, the task file is read from it', async () => {
    const task = `aci-ms-${randomUUID().slice(0, 8)}`;
    const sha = suite.git.commit(task, 'main', {
      'app/Dockerfile': `FROM ${busyboxBase()}\nCOPY message.txt /message.txt\n`,
      'app/message.txt': 'from-the-git-folder\n',
      'app/ci/acb.yaml': [
        'version: v1.1.0',
        'steps:',
        '  - build: -t {{.Run.Registry}}/aci/ms:{{.Run.ID}} .',
        `  - cmd: {{.Run.Registry}}/aci/ms:{{.Run.ID}} sh -c "cat /message.txt; echo commit={{.Run.Commit}}; ls /workspace"`,
        '',
      ].join('\n'),
    });
    const created = await api(suite.url, 'PUT', `/tasks/${task}`, {
      properties: {
        platform: { os: 'Linux', architecture: 'amd64' },
        step: {
          type: 'FileTask',
          contextPath: `${suite.git.url(task)}#main:app`,
          taskFilePath: 'ci/acb.yaml',
        },
      },
    });
    expect(created.status).toBe(201);
    const scheduled = await api(suite.url, 'POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: task });
    expect(scheduled.status).toBe(200);
    const runId = scheduled.body.properties.runId as string;

    const run = await waitForRecorded(suite.r, runId, isFinished);

    expect({ status: run.status, error: run.runErrorMessage }).toEqual({
      status: 'Succeeded',
      error: undefined,
    });
    const log = await logOf(suite.r, runId);
    expect(log).toContain('from-the-git-folder');
    expect(log).toContain(`commit=${sha}`);
    // /workspace is the context folder, as acb checks it out: its files, not the repository's root.
    expect(log).toMatch(/\[acb_step_1\] Dockerfile/);
    expect(log).not.toMatch(/\[acb_step_1\] app$/m);
    expect(createdGroups(fake, runId)[0]).toMatch(/-src$/);
  });

  it("retries a failing step in a new group after its retryDelay, and ends Failed with the last attempt's reason", async () => {
    const scheduled = await api(suite.url, 'POST', '/scheduleRun', {
      type: 'EncodedTaskRunRequest',
      encodedTaskContent: encoded([
        'version: v1.1.0',
        'steps:',
        '  - id: flaky',
        `    cmd: ${busyboxBase()} sh -c "echo trying; exit 2"`,
        '    retries: 1',
        '    retryDelay: 1',
      ]),
      platform: { os: 'Linux', architecture: 'amd64' },
    });
    const runId = scheduled.body.properties.runId as string;

    const run = await waitForRecorded(suite.r, runId, isFinished);

    expect({ status: run.status, error: run.runErrorMessage }).toEqual({
      status: 'Failed',
      error: 'failed to run step ID: flaky: exit code 2',
    });
    expect(createdGroups(fake, runId)).toEqual([
      expect.stringMatching(/-0-r0a0$/),
      expect.stringMatching(/-0-r0a1$/),
    ]);
    const log = await logOf(suite.r, runId);
    expect(log).toContain('Step ID: flaky failed (exit code 2); retry 1 of 1 in 1 seconds');
    expect(log.match(/\[flaky\] trying/g)).toHaveLength(2);
  });

  it('cancels a run while a step runs: its groups are deleted and a report that arrives later changes nothing', async () => {
    const scheduled = await api(suite.url, 'POST', '/scheduleRun', {
      type: 'EncodedTaskRunRequest',
      encodedTaskContent: encoded([
        'version: v1.1.0',
        'steps:',
        '  - id: long',
        `    cmd: ${busyboxBase()} sh -c "echo started-long; sleep 60"`,
        '  - id: after',
        `    cmd: ${busyboxBase()} echo after-ran`,
      ]),
      platform: { os: 'Linux', architecture: 'amd64' },
    });
    const runId = scheduled.body.properties.runId as string;
    await until(
      'the long step to run',
      async () =>
        // The log blob exists once the run is dispatched.
        (await logOf(suite.r, runId).catch(() => '')).includes('started-long') ? true : undefined,
      SLOW,
    );

    const canceled = await api(suite.url, 'POST', `/runs/${runId}/cancel`);

    expect(canceled.status).toBeLessThan(300);
    const run = await waitForRecorded(suite.r, runId, isFinished);
    expect(run.status).toBe('Canceled');
    await until(
      'the groups to be deleted',
      async () => (fake.groups().some((g) => g.name.includes(`refit-${runId}-`)) ? undefined : true),
      SLOW,
    );
    expect(createdGroups(fake, runId)).toHaveLength(1);
    // The step's report, as its reporter would have sent it had it got there: the run stays Canceled, nothing starts.
    await suite.r.runs.complete({
      runId,
      report: {
        token: reportTokenOf(fake, runId),
        exitCode: 0,
        images: [],
        restarted: false,
        error: '',
        dockerfile: '',
        step: 'long',
        attempt: 'r0a0',
        saved: true,
        output: '',
        commit: '',
        branch: '',
      },
    });
    expect((await suite.r.runs.get(runId)).status).toBe('Canceled');
    expect(createdGroups(fake, runId)).toHaveLength(1);
    expect(await logOf(suite.r, runId)).not.toContain('after-ran');
  });
});

/** The completion token the run's groups were given (a secure value of their reporter). */
function reportTokenOf(fake: FakeAci, runId: string): string {
  const put = fake.requests.find(
    (p) => p.request.method === 'PUT' && p.request.url.includes(`refit-${runId}-`),
  );
  const body = put?.request.body as {
    properties: {
      containers: {
        name: string;
        properties: { environmentVariables: { name: string; secureValue?: string }[] };
      }[];
    };
  };
  const reporter = body.properties.containers.find((c) => c.name === 'report');
  return reporter!.properties.environmentVariables.find((v) => v.name === 'REFIT_REPORT_TOKEN')!.secureValue!;
}

/** The deployment mark in a run's group name (`refit-<run>-<deployment>-<step>-<attempt>`). */
function deploymentOf(group: string, runId: string): string {
  return group.slice(`refit-${runId}-`.length).split('-')[0]!;
}
