import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registry, writeContext } from '../support/api';
import { refit } from '../support/cli';
import { GitServer } from '../support/git';

// The `az acr` behaviours CI scripts rely on, as a script ported from az runs them, against the real stack.
describe('refit build and task (az acr behaviours, e2e)', () => {
  const base = (): string => `${registry()}/refit/busybox:stable`;

  it('--no-logs waits for the run: exit 1 with its status on stderr when it fails, the finished run when it succeeds', async () => {
    const failing = writeContext({ Dockerfile: `FROM ${base()}\nRUN echo hidden-log-line && exit 3\n` });
    const failed = await refit(['build', '--no-logs', failing]);
    expect(failed.code).toBe(1);
    const runId = /Queued a build with ID: (\w+)/.exec(failed.stderr)?.[1];
    expect(failed.stderr).toContain(`The run with ID '${runId}' finished with unsuccessful status 'Failed'`);
    expect(failed.stderr).toMatch(/the build failed with exit code \d+/);
    expect(failed.stdout).not.toContain('hidden-log-line');

    const passing = writeContext({ Dockerfile: `FROM ${base()}\nRUN echo fine\n` });
    const passed = await refit(['build', '--no-logs', passing]);
    expect(passed.code).toBe(0);
    expect(JSON.parse(passed.stdout).properties.status).toBe('Succeeded');
  });

  it('strips colour sequences from a log that is not on a terminal, and keeps them with --no-format', async () => {
    const dir = writeContext({ Dockerfile: `FROM ${base()}\nRUN printf '\\033[31mcoloured\\033[0m\\n'\n` });
    const formatted = await refit(['build', dir]);
    expect(formatted.code).toBe(0);
    expect(formatted.stdout).toMatch(/^coloured$/m);
    expect(formatted.stdout).not.toContain('\x1b[');

    const raw = await refit(['build', '--no-format', dir]);
    expect(raw.code).toBe(0);
    expect(raw.stdout).toContain('\x1b[31mcoloured\x1b[0m');

    const runId = /Queued a build with ID: (\w+)/.exec(raw.stderr)![1]!;
    expect((await refit(['task', 'logs', '--run-id', runId])).stdout).not.toContain('\x1b[');
    expect((await refit(['task', 'logs', '--run-id', runId, '--no-format'])).stdout).toContain(
      '\x1b[31mcoloured',
    );
  });

  it('resolves -f from the current directory and builds with a Dockerfile outside the source folder', async () => {
    const root = writeContext({ 'app/message.txt': 'from-the-context\n' });
    mkdirSync(join(root, 'docker'));
    writeFileSync(
      join(root, 'docker', 'Dockerfile.app'),
      `FROM ${base()}\nCOPY message.txt /m.txt\nRUN cat /m.txt && echo outside-dockerfile-used\n`,
    );

    const build = await refit(['build', '-f', 'docker/Dockerfile.app', 'app'], {}, root);
    expect(build.stderr).toContain('Queued a build');
    expect(build.code).toBe(0);
    expect(build.stdout).toMatch(/^from-the-context$/m);
    expect(build.stdout).toMatch(/^outside-dockerfile-used$/m);

    const missing = await refit(['build', '-f', 'app/Dockerfile', 'app'], {}, root);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("Unable to find 'app/Dockerfile'");
  });

  it('lists the runs that pushed an image and shows the log of the last one with --image', async () => {
    const repo = `az-image-${Date.now().toString(36)}`;
    const dir = writeContext({ Dockerfile: `FROM ${base()}\nRUN echo built-for-image-filter\n` });
    const first = await refit(['build', '-t', `${repo}:v1`, dir]);
    const other = await refit(['build', '-t', `${repo}:v10`, dir]);
    expect([first.code, other.code]).toEqual([0, 0]);
    const firstId = /Queued a build with ID: (\w+)/.exec(first.stderr)![1]!;

    const list = await refit(['task', 'list-runs', '--image', `${repo}:v1`, '-o', 'tsv']);
    expect(list.code).toBe(0);
    expect(
      list.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]),
    ).toEqual([firstId]);

    const logs = await refit(['task', 'logs', '--image', `${repo}:v1`]);
    expect(logs.code).toBe(0);
    expect(logs.stderr).toContain(`Run ID: ${firstId}`);
    expect(logs.stdout).toContain('built-for-image-filter');

    const none = await refit(['task', 'logs', '--image', `${repo}:never`]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`there is no run that pushed '${repo}:never'`);
  });

  it('task run passes --set-secret values as secrets (masked in the log), and --no-logs fails with the run', async () => {
    const dir = writeContext({
      'acb.yaml': [
        'version: v1.1.0',
        'steps:',
        '  - id: check',
        '    cmd: $Registry/refit/busybox:stable sh -c "[ \\"$$SECRET\\" = hunter2-secret ] && echo arrived {{.Values.greeting}} $$SECRET"',
        '    env: ["SECRET={{.Values.pw}}"]',
        '',
      ].join('\n'),
    });
    const name = `az-secret-${Date.now().toString(36)}`;
    const create = await refit(['task', 'create', '-n', name, '-c', '/dev/null', '-f', 'acb.yaml'], {}, dir);
    expect(create.code).toBe(0);

    const run = await refit([
      'task',
      'run',
      '-n',
      name,
      '--set',
      'greeting=hi',
      '--set-secret',
      'pw=hunter2-secret',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('[check] arrived hi ***');
    expect(run.stdout).not.toContain('hunter2-secret');

    const failing = await refit(['task', 'run', '-n', name, '--no-logs']);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/finished with unsuccessful status 'Failed'/);
  });

  describe('task update', () => {
    const git = new GitServer();
    beforeAll(() => git.start());
    afterAll(() => git.stop());

    it('adds a source trigger when enabling pull requests, and merges base-image fields with what is stored', async () => {
      git.commit('az-update-app', 'main', { Dockerfile: `FROM ${base()}\n` });
      const name = `az-update-${Date.now().toString(36)}`;
      const create = await refit([
        'task',
        'create',
        '-n',
        name,
        '-c',
        `${git.url('az-update-app')}#main`,
        '--commit-trigger-enabled',
        'false',
        '--base-image-trigger-name',
        'on-base',
        '--base-image-trigger-type',
        'All',
        '--update-trigger-endpoint',
        'http://127.0.0.1:9/notify',
        '--update-trigger-payload-type',
        'Token',
      ]);
      expect(create.code).toBe(0);
      expect(JSON.parse(create.stdout).properties.trigger.sourceTriggers).toEqual([]);

      const pr = await refit(['task', 'update', '-n', name, '--pull-request-trigger-enabled', 'true']);
      expect(pr.stderr).toBe('');
      expect(pr.code).toBe(0);
      const commit = await refit(['task', 'update', '-n', name, '--commit-trigger-enabled', 'true']);
      expect(commit.code).toBe(0);
      const base2 = await refit(['task', 'update', '-n', name, '--base-image-trigger-enabled', 'false']);
      expect(base2.code).toBe(0);

      const shown = JSON.parse((await refit(['task', 'show', '-n', name])).stdout).properties.trigger;
      expect(shown.sourceTriggers).toEqual([
        expect.objectContaining({
          name: 'defaultSourceTriggerName',
          sourceRepository: expect.objectContaining({
            repositoryUrl: git.url('az-update-app'),
            branch: 'main',
          }),
          sourceTriggerEvents: ['commit', 'pullrequest'],
          status: 'Enabled',
        }),
      ]);
      expect(shown.baseImageTrigger).toEqual({
        name: 'on-base',
        baseImageTriggerType: 'All',
        updateTriggerEndpoint: 'http://127.0.0.1:9/notify',
        updateTriggerPayloadType: 'Token',
        status: 'Disabled',
      });
    });
  });

  it('says agent pools and task runs are out of scope', async () => {
    for (const args of [
      ['agentpool', 'list'],
      ['taskrun', 'show', '-n', 'x'],
    ]) {
      const result = await refit(args);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`refit ${args[0]} is not supported`);
    }
  });
});
