import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { signGitHubBody } from '../../src/triggers/github';
import { busyboxBase } from '../support/api';
import { refit } from '../support/cli';
import { GitServer } from '../support/git';

// `refit task …` as a user types it, against the real stack and a real git daemon.
describe('refit task (e2e)', () => {
  const git = new GitServer();
  beforeAll(() => git.start());
  afterAll(() => git.stop());

  it('creates a task, runs it, builds a pushed commit, lists runs with their trigger, and manages timers', async () => {
    git.commit('cli-app', 'main', {
      Dockerfile: `FROM ${busyboxBase()}\nCOPY m.txt /m.txt\nRUN cat /m.txt\n`,
      'm.txt': 'first\n',
    });
    const token = 'pat-must-not-show-123';
    const create = await refit([
      'task',
      'create',
      '-n',
      'cli-task',
      '-c',
      `${git.url('cli-app')}#main`,
      '-t',
      'cli-task:{{.Run.ID}}',
      '--git-access-token',
      token,
      '--secret-arg',
      'S=hidden-value-9',
    ]);
    expect(create.code).toBe(0);
    expect(create.stdout).not.toContain(token);
    expect(create.stdout).not.toContain('hidden-value-9');
    // The secrets are shown only when asked for, as `az acr task show --with-secure-properties` does.
    expect((await refit(['task', 'show', '-n', 'cli-task'])).stdout).not.toContain('hidden-value-9');
    const secure = await refit(['task', 'show', '-n', 'cli-task', '--with-secure-properties']);
    expect(secure.code).toBe(0);
    expect(secure.stdout).toContain('hidden-value-9');
    expect(secure.stdout).toContain(token);
    const task = JSON.parse(create.stdout);
    expect(task.properties.trigger.sourceTriggers[0]).toMatchObject({
      name: 'defaultSourceTriggerName',
      sourceRepository: { repositoryUrl: git.url('cli-app'), branch: 'main' },
      sourceTriggerEvents: ['commit'],
    });
    expect(task.properties.trigger.baseImageTrigger).toMatchObject({
      baseImageTriggerType: 'Runtime',
      status: 'Enabled',
    });

    const again = await refit(['task', 'create', '-n', 'cli-task', '-c', git.url('cli-app')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("task 'cli-task' already exists");

    const run = await refit(['task', 'run', '-n', 'cli-task']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^first$/m);
    expect(run.stdout + run.stderr).not.toContain(token);

    const sha = git.commit('cli-app', 'main', { 'm.txt': 'second\n' });
    const body = JSON.stringify({
      ref: 'refs/heads/main',
      after: sha,
      repository: { clone_url: git.url('cli-app') },
    });
    const secret = readFileSync(join(process.env.REFIT_TEST_DATA_DIR!, 'webhook.secret'), 'utf8').trim();
    const hook = await fetch(`${process.env.REFIT_URL}/api/hooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': 'cli-delivery',
        'x-hub-signature-256': signGitHubBody(secret, body),
      },
      body,
    });
    const commitRunId = ((await hook.json()) as any).decisions[0].runId as string;
    const logs = await refit(['task', 'logs', '--run-id', commitRunId]);
    expect(logs.stdout).toMatch(/^second$/m);

    const table = await refit(['task', 'list-runs', '-n', 'cli-task', '-o', 'table']);
    const rows = table.stdout.split('\n').slice(2).filter(Boolean);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(new RegExp(`^${commitRunId}\\s+cli-task\\s+linux\\s+Succeeded\\s+Commit\\s`));
    expect(rows[1]).toMatch(/\s+cli-task\s+linux\s+Succeeded\s+Manual\s/);

    const list = await refit(['task', 'list', '-o', 'table']);
    expect(list.stdout.split('\n')[0]).toMatch(/^NAME\s+PLATFORM\s+STATUS\s+SOURCE REPOSITORY\s+TRIGGERS$/);
    expect(list.stdout).toMatch(
      new RegExp(
        `cli-task\\s+linux\\s+Enabled\\s+${git.url('cli-app').replace(/[.]/g, '\\.')}\\s+BASE_IMAGE, SOURCE`,
      ),
    );

    expect(
      (
        await refit([
          'task',
          'timer',
          'add',
          '-n',
          'cli-task',
          '--timer-name',
          'nightly',
          '--schedule',
          '0 2 * * *',
        ])
      ).code,
    ).toBe(0);
    const dup = await refit([
      'task',
      'timer',
      'add',
      '-n',
      'cli-task',
      '--timer-name',
      'nightly',
      '--schedule',
      '0 3 * * *',
    ]);
    expect(dup.stderr).toContain("timer 'nightly' already exists");
    const bad = await refit([
      'task',
      'timer',
      'add',
      '-n',
      'cli-task',
      '--timer-name',
      'bad',
      '--schedule',
      '0 25 * * *',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("'0 25 * * *' is not a valid cron schedule");
    await refit([
      'task',
      'timer',
      'update',
      '-n',
      'cli-task',
      '--timer-name',
      'nightly',
      '--enabled',
      'false',
    ]);
    expect(JSON.parse((await refit(['task', 'timer', 'list', '-n', 'cli-task'])).stdout)).toEqual([
      { name: 'nightly', schedule: '0 2 * * *', status: 'Disabled' },
    ]);
    expect((await refit(['task', 'timer', 'remove', '-n', 'cli-task', '--timer-name', 'nightly'])).code).toBe(
      0,
    );
    expect(JSON.parse((await refit(['task', 'timer', 'list', '-n', 'cli-task'])).stdout)).toEqual([]);

    // The secret argument survived the remove (a PUT of the whole task without its values).
    const rerun = await refit(['task', 'run', '-n', 'cli-task']);
    expect(rerun.code).toBe(0);

    const disable = await refit(['task', 'update', '-n', 'cli-task', '--status', 'Disabled']);
    expect(JSON.parse(disable.stdout).properties.status).toBe('Disabled');
    const refused = await refit(['task', 'run', '-n', 'cli-task']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("task 'cli-task' is Disabled");

    expect((await refit(['task', 'delete', '-n', 'cli-task'])).code).toBe(0);
    expect((await refit(['task', 'show', '-n', 'cli-task'])).stderr).toContain(
      "task 'cli-task' was not found",
    );
  });
});
