import { writeFileSync } from 'node:fs';
import {
  busyboxBase,
  call,
  registry,
  runsOf,
  until,
  uploadContext,
  waitForRun,
  writeContext,
} from '../support/api';
import { refit } from '../support/cli';
import { GitServer } from '../support/git';

async function log(runId: string): Promise<string> {
  return (await call('GET', `/runs/${runId}/log`)).body as string;
}

// Tasks whose step is an acb.yaml (FileTask) or the file itself (EncodedTask): created, run and triggered like
// Docker tasks.
describe('multi-step tasks', () => {
  const git = new GitServer();
  beforeAll(() => git.start());
  afterAll(() => git.stop());

  it('runs a FileTask from its git context, records what its build steps used, and rebuilds it when that base changes', async () => {
    const baseRepo = 'mstask/base';
    const buildBase = async (version: string): Promise<void> => {
      const path = await uploadContext(
        writeContext({ Dockerfile: `FROM ${busyboxBase()}\nENV VERSION ${version}\n` }),
      );
      const run = await waitForRun(
        (
          await call('POST', '/scheduleRun', {
            type: 'DockerBuildRequest',
            imageNames: [`${baseRepo}:stable`],
            sourceLocation: path,
            dockerFilePath: 'Dockerfile',
            platform: { os: 'Linux', architecture: 'amd64' },
          })
        ).body.name,
      );
      expect(run.status).toBe('Succeeded');
    };
    await buildBase('1');
    const sha = git.commit('mstask', 'main', {
      Dockerfile: `FROM ${registry()}/${baseRepo}:stable\nRUN echo "app on $VERSION" > /app\n`,
      'ci/acb.yaml': [
        'version: v1.1.0',
        'steps:',
        '  - id: build',
        '    build: -t $Registry/mstask/app:$ID .',
        '  - id: check',
        '    cmd: $Registry/mstask/app:$ID cat /app',
        '  - id: facts',
        '    cmd: $Registry/refit/busybox:stable echo commit=$Commit branch=$Branch task={{.Run.TaskName}}',
        '  - id: push',
        '    push: [$Registry/mstask/app:$ID]',
        '',
      ].join('\n'),
    });
    const created = await call('PUT', '/tasks/mstask-file', {
      properties: {
        step: { type: 'FileTask', contextPath: `${git.url('mstask')}#main`, taskFilePath: 'ci/acb.yaml' },
        trigger: { baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime' } },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body.properties.step).toMatchObject({ type: 'FileTask', taskFilePath: 'ci/acb.yaml' });

    const manual = await waitForRun(
      (await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'mstask-file' })).body.name,
    );
    expect(manual).toMatchObject({ status: 'Succeeded', runType: 'AutoRun', task: 'mstask-file' });
    expect(manual.outputImages).toEqual([
      expect.objectContaining({ repository: 'mstask/app', tag: manual.runId }),
    ]);
    expect(await log(manual.runId)).toContain('[check] app on 1');
    expect(await log(manual.runId)).toContain(`[facts] commit=${sha} branch=main task=mstask-file`);
    expect((await call('GET', '/tasks/mstask-file')).body.properties.step.baseImageDependencies).toEqual([
      expect.objectContaining({ type: 'RunTime', repository: baseRepo, tag: 'stable' }),
    ]);

    await buildBase('2');
    const updated = await until('the image-update run', async () =>
      (await runsOf('mstask-file')).find((r) => r.imageUpdateTrigger),
    );
    const done = await waitForRun(updated.runId);
    expect(done.status).toBe('Succeeded');
    expect(await log(updated.runId)).toContain('[check] app on 2');
  });

  it('creates an EncodedTask with no context from the CLI, runs it with values, and never shows its secret value', async () => {
    const dir = writeContext({
      'greet.yaml': [
        'version: v1.1.0',
        'steps:',
        '  - cmd: $Registry/refit/busybox:stable sh -c "echo {{.Values.greeting}}, {{.Values.who}} $$TOKEN"',
        '    env: ["TOKEN={{.Values.token}}"]',
        '',
      ].join('\n'),
    });
    const create = await refit([
      'task',
      'create',
      '-n',
      'mstask-encoded',
      '-c',
      '/dev/null',
      '-f',
      `${dir}/greet.yaml`,
      '--set',
      'greeting=hello',
      '--set',
      'who=nobody',
      '--set-secret',
      'token=s3cret-token-value',
    ]);
    expect(create.stderr).not.toMatch(/error/i);
    expect(create.code).toBe(0);
    const shown = JSON.parse(create.stdout);
    expect(shown.properties.step).toMatchObject({ type: 'EncodedTask' });
    expect(shown.properties.step.contextPath).toBeUndefined();
    expect(JSON.stringify(shown)).not.toContain('s3cret-token-value');

    const run = await refit(['task', 'run', '-n', 'mstask-encoded', '--set', 'who=world']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('hello, world ***');
    expect(run.stdout).not.toContain('s3cret-token-value');

    // The file is stored with the task: an update reads it again from here.
    writeFileSync(
      `${dir}/greet.yaml`,
      'steps:\n  - cmd: "{{.Run.Registry}}/refit/busybox:stable echo updated {{.Values.who}}"\n',
    );
    const update = await refit(['task', 'update', '-n', 'mstask-encoded', '-f', `${dir}/greet.yaml`]);
    expect(update.code).toBe(0);
    const again = await refit(['task', 'run', '-n', 'mstask-encoded']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('updated nobody');
  });

  it('refuses an EncodedTask whose file is invalid, naming the step, and stores nothing', async () => {
    const res = await call('PUT', '/tasks/mstask-broken', {
      properties: {
        step: {
          type: 'EncodedTask',
          encodedTaskContent: Buffer.from('steps:\n- id: x\n  cmd: a\n  when: [y]\n').toString('base64'),
        },
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.target).toBe('properties.step.encodedTaskContent');
    expect(res.body.error.message).toContain("steps[0] (x): when names 'y'");
    expect((await call('GET', '/tasks/mstask-broken')).status).toBe(404);
  });
});
