import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createRefit } from '../../src/refit';
import { signGitHubBody } from '../../src/triggers/github';
import { evaluateTimers } from '../../src/triggers/timers';
import {
  busyboxBase,
  call,
  registry,
  registryDigest,
  runsOf,
  stackStorage,
  until,
  waitForRun,
} from '../support/api';
import { GitServer } from '../support/git';

const dataDir = (): string => process.env.REFIT_TEST_DATA_DIR!;
const webhookSecret = (): string => readFileSync(join(dataDir(), 'webhook.secret'), 'utf8').trim();
const acrExample = JSON.parse(
  readFileSync(join(__dirname, '../fixtures/acr-tasks-create.json'), 'utf8'),
) as Record<string, any>;
const pushFixture = JSON.parse(
  readFileSync(join(__dirname, '../fixtures/github/push-new-branch.json'), 'utf8'),
) as Record<string, any>;
const adoFixture = JSON.parse(
  readFileSync(join(__dirname, '../fixtures/azure-devops/git-push.json'), 'utf8'),
) as Record<string, any>;

const dockerfile = (marker: string): string =>
  `FROM ${busyboxBase()}\nCOPY marker.txt /marker.txt\nRUN cat /marker.txt\n# ${marker}\n`;

/** Posts a GitHub delivery, signed with the stack's secret unless `signature` is given. */
async function githubDelivery(
  event: string,
  payload: unknown,
  delivery: string,
  signature?: string,
): Promise<{ status: number; body: any }> {
  const raw = JSON.stringify(payload);
  const res = await fetch(`${process.env.REFIT_URL}/api/hooks/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': delivery,
      'x-hub-signature-256': signature ?? signGitHubBody(webhookSecret(), raw),
    },
    body: raw,
  });
  return { status: res.status, body: await res.json() };
}

/** A push payload (GitHub's real one, pointed at our repository, branch and commit). */
function push(cloneUrl: string, branch: string, after: string): Record<string, any> {
  return {
    ...pushFixture,
    ref: `refs/heads/${branch}`,
    after,
    repository: { ...pushFixture.repository, clone_url: cloneUrl, html_url: cloneUrl.replace(/\.git$/, '') },
  };
}

async function createTask(name: string, contextPath: string, extra: Record<string, any> = {}): Promise<any> {
  const res = await call('PUT', `/tasks/${name}`, {
    properties: {
      step: { type: 'Docker', contextPath, imageNames: [`tasks/${name}:{{.Run.ID}}`], ...(extra.step ?? {}) },
      trigger: extra.trigger ?? {},
      ...(extra.status ? { status: extra.status } : {}),
    },
  });
  expect([200, 201]).toContain(res.status);
  return res.body;
}

describe('tasks', () => {
  const git = new GitServer();
  beforeAll(() => git.start());
  afterAll(() => git.stop());

  describe('Tasks API', () => {
    it("accepts ACR's own TasksCreate body, and never returns a secret", async () => {
      const created = await call('PUT', '/tasks/acr-example', acrExample);
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        name: 'acr-example',
        type: 'Microsoft.ContainerRegistry/registries/tasks',
        location: 'eastus',
        tags: { testkey: 'value' },
      });
      expect(created.body.properties.step.arguments).toEqual([
        { name: 'mytestargument', value: 'mytestvalue', isSecret: false },
        { name: 'mysecrettestargument', isSecret: true },
      ]);
      expect(
        created.body.properties.trigger.sourceTriggers[0].sourceRepository.sourceControlAuthProperties,
      ).toEqual({ tokenType: 'PAT' });

      const replaced = await call('PUT', '/tasks/ACR-Example', acrExample);
      expect(replaced.status).toBe(200);
      for (const res of [
        created,
        replaced,
        await call('GET', '/tasks/acr-example'),
        await call('GET', '/tasks?$top=100'),
      ]) {
        expect(res.text).not.toContain('mysecrettestvalue');
        expect(res.text).not.toContain('xxxxx');
      }
    });

    it('merges a PATCH, keeps secrets through a GET → PUT round trip, deletes with 200 then 204', async () => {
      await createTask('patch-me', git.url('nothing'), {
        step: { arguments: [{ name: 'S', value: 'keep-me-secret', isSecret: true }] },
      });
      const patched = await call('PATCH', '/tasks/patch-me', {
        properties: {
          timeout: 600,
          status: 'Disabled',
          trigger: { timerTriggers: [{ name: 'nightly', schedule: '0 2 * * *' }] },
        },
      });
      expect(patched.status).toBe(200);
      expect(patched.body.properties).toMatchObject({
        timeout: 600,
        status: 'Disabled',
        step: { contextPath: git.url('nothing') },
      });
      expect(patched.body.properties.trigger.timerTriggers).toEqual([
        { name: 'nightly', schedule: '0 2 * * *', status: 'Enabled' },
      ]);

      const { id: _id, type: _type, ...roundTrip } = (await call('GET', '/tasks/patch-me')).body;
      expect((await call('PUT', '/tasks/patch-me', roundTrip)).status).toBe(200);
      const run = await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'patch-me' });
      expect(run.status).toBe(409);
      expect(run.body.error.message).toContain("task 'patch-me' is Disabled");

      expect((await call('DELETE', '/tasks/patch-me')).status).toBe(200);
      expect((await call('DELETE', '/tasks/patch-me')).status).toBe(204);
      expect((await call('GET', '/tasks/patch-me')).status).toBe(404);
    });

    it.each([
      [
        'a short name',
        '/tasks/abc',
        { properties: { step: { type: 'Docker', contextPath: 'x' } } },
        'taskName',
        'must be 5 to 50',
      ],
      [
        'a bad cron',
        '/tasks/bad-cron',
        {
          properties: {
            step: { type: 'Docker', contextPath: 'x' },
            trigger: { timerTriggers: [{ name: 't1', schedule: '99 * * * *' }] },
          },
        },
        'properties.trigger.timerTriggers[0].schedule',
        'not a valid cron schedule',
      ],
      [
        'a bad image',
        '/tasks/bad-image',
        { properties: { step: { type: 'Docker', contextPath: 'x', imageNames: ['UP:per'] } } },
        'imageNames[0]',
        'not a valid image reference',
      ],
      [
        'a timeout out of range',
        '/tasks/bad-timeout',
        { properties: { timeout: 5, step: { type: 'Docker', contextPath: 'x' } } },
        'properties.timeout',
        'at least 300',
      ],
      [
        'a secret argument without a value',
        '/tasks/no-secret',
        {
          properties: {
            step: { type: 'Docker', contextPath: 'x', arguments: [{ name: 'S', isSecret: true }] },
          },
        },
        'properties.step.arguments[0].value',
        "secret argument 'S' needs a value",
      ],
    ])(
      'answers %s with 400 naming the field, and stores nothing',
      async (_what, path, body, target, message) => {
        const res = await call('PUT', path, body);
        expect(res.status).toBe(400);
        expect(res.body.error.target).toBe(target);
        expect(res.body.error.message).toContain(message);
        expect((await call('GET', path)).status).toBe(path === '/tasks/abc' ? 404 : 404);
      },
    );
  });

  describe('runs of a task', () => {
    it('runs a task by hand with overrides, as an AutoBuild with the task name', async () => {
      git.commit('manual', 'main', {
        Dockerfile: dockerfile('manual'),
        'marker.txt': 'manual-v1\n',
        'Dockerfile.alt': `FROM ${busyboxBase()}\nARG WHO\nRUN echo "alt says $WHO"\n`,
      });
      await createTask('manual-run', `${git.url('manual')}#main`, {
        step: { arguments: [{ name: 'WHO', value: 'task' }] },
      });
      const scheduled = await call('POST', '/scheduleRun', {
        type: 'TaskRunRequest',
        taskId: 'manual-run',
        overrideTaskStepProperties: {
          file: 'Dockerfile.alt',
          arguments: [{ name: 'WHO', value: 'override' }],
        },
      });
      expect(scheduled.status).toBe(200);
      const run = await waitForRun(scheduled.body.name);
      expect(run).toMatchObject({ status: 'Succeeded', runType: 'AutoBuild', task: 'manual-run' });
      expect(run.outputImages[0].digest).toBe(await registryDigest('tasks/manual-run', run.runId));
      expect((await call('GET', `/runs/${run.runId}/log`)).text).toContain('alt says override');
      expect(
        (await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'no-such-task' })).status,
      ).toBe(404);
    });

    it('clones with the git access token and never shows it', async () => {
      const token = 'ghp_NeverShowThis0123456789';
      await createTask('token-task', 'https://127.0.0.1:9/private/repo.git#main', {
        step: { contextAccessToken: token },
      });
      const task = await call('GET', '/tasks/token-task');
      expect(task.text).not.toContain(token);
      const run = await waitForRun(
        (await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: 'token-task' })).body.name,
      );
      expect(run.status).toBe('Failed');
      const log = (await call('GET', `/runs/${run.runId}/log`)).text;
      // The token travels in git's environment: the URL git is given, and the log shows, is clean.
      expect(log).toContain('-- https://127.0.0.1:9/private/repo.git');
      expect(log).not.toContain('x-access-token');
      expect(log).not.toContain(token);
      expect(JSON.stringify(run)).not.toContain(token);
    });
  });

  describe('commit triggers (GitHub webhooks)', () => {
    let repoUrl: string;
    beforeAll(async () => {
      git.commit('app', 'main', { Dockerfile: dockerfile('v1'), 'marker.txt': 'commit-one\n' });
      repoUrl = git.url('app');
      await createTask('commit-task', `${repoUrl}#main`, {
        trigger: {
          sourceTriggers: [
            {
              name: 'src',
              sourceRepository: { sourceControlType: 'Github', repositoryUrl: repoUrl, branch: 'main' },
              sourceTriggerEvents: ['commit'],
            },
          ],
        },
      });
    });

    it('builds exactly the pushed commit, once, however often the delivery comes', async () => {
      const sha = git.commit('app', 'main', { 'marker.txt': 'commit-two\n' });
      git.commit('app', 'main', { 'marker.txt': 'commit-three-not-pushed-yet\n' });

      const first = await githubDelivery('push', push(repoUrl, 'main', sha), 'delivery-1');
      const again = await githubDelivery('push', push(repoUrl, 'main', sha), 'delivery-1');

      expect(first.status).toBe(200);
      expect(first.body.decisions).toEqual([
        expect.objectContaining({ task: 'commit-task', decision: 'triggered' }),
      ]);
      expect(again.body.decisions).toEqual([
        expect.objectContaining({
          task: 'commit-task',
          decision: 'skipped',
          reason: 'this delivery was already handled (a redelivery)',
        }),
      ]);
      const runs = (await runsOf('commit-task')).filter((r) => r.sourceTrigger?.id === 'delivery-1');
      expect(runs).toHaveLength(1);
      const run = await waitForRun(runs[0].runId);
      expect(run.status).toBe('Succeeded');
      expect(run.sourceTrigger).toEqual({
        id: 'delivery-1',
        eventType: 'commit',
        commitId: sha,
        repositoryUrl: repoUrl,
        branchName: 'main',
        providerType: 'Github',
      });
      const log = (await call('GET', `/runs/${run.runId}/log`)).text;
      expect(log).toMatch(/^commit-two$/m);
      expect(log).toContain(`Checked out commit ${sha}`);
    });

    it('runs a multi-step task (FileTask) on the pushed commit, like a Docker task', async () => {
      git.commit('steps-app', 'main', {
        'acb.yaml': 'steps:\n  - cmd: {{.Run.Registry}}/refit/busybox:stable cat /workspace/marker.txt\n',
        'marker.txt': 'steps-one\n',
      });
      const url = git.url('steps-app');
      const created = await call('PUT', '/tasks/steps-commit-task', {
        properties: {
          step: { type: 'FileTask', contextPath: `${url}#main`, taskFilePath: 'acb.yaml' },
          trigger: {
            sourceTriggers: [
              {
                name: 'src',
                sourceRepository: { sourceControlType: 'Github', repositoryUrl: url, branch: 'main' },
                sourceTriggerEvents: ['commit'],
              },
            ],
          },
        },
      });
      expect(created.status).toBe(201);
      const sha = git.commit('steps-app', 'main', { 'marker.txt': 'steps-two\n' });
      git.commit('steps-app', 'main', { 'marker.txt': 'steps-three-not-pushed\n' });
      const delivered = await githubDelivery('push', push(url, 'main', sha), 'steps-delivery-1');
      expect(delivered.body.decisions).toEqual([
        expect.objectContaining({ task: 'steps-commit-task', decision: 'triggered' }),
      ]);
      const [queued] = await runsOf('steps-commit-task');
      const run = await waitForRun(queued.runId);
      expect(run).toMatchObject({ status: 'Succeeded', runType: 'AutoRun' });
      expect(run.sourceTrigger).toMatchObject({ commitId: sha, eventType: 'commit' });
      expect((await call('GET', `/runs/${run.runId}/log`)).text).toMatch(/^.*\[acb_step_0\] steps-two$/m);
    });

    it.each([
      ['a bad signature', 'push', 'sha256=' + '0'.repeat(64)],
      ['no signature', 'push', ''],
    ])('answers %s with 401 and starts nothing', async (_what, event, signature) => {
      const before = (await runsOf('commit-task')).length;
      const res = await githubDelivery(
        event,
        push(repoUrl, 'main', 'a'.repeat(40)),
        `bad-${signature.length}`,
        signature,
      );
      expect(res.status).toBe(401);
      expect((await runsOf('commit-task')).length).toBe(before);
    });

    it('starts nothing for another branch, a tag push or a branch delete, and records why', async () => {
      const before = (await runsOf('commit-task')).length;
      const other = await githubDelivery('push', push(repoUrl, 'feature', 'b'.repeat(40)), 'other-branch');
      const tag = await githubDelivery(
        'push',
        { ...push(repoUrl, 'main', 'c'.repeat(40)), ref: 'refs/tags/v1' },
        'tag-push',
      );
      const deleted = await githubDelivery(
        'push',
        { ...push(repoUrl, 'main', '0'.repeat(40)), deleted: true },
        'branch-delete',
      );
      const ping = await githubDelivery('ping', { zen: 'hi', hook_id: 1 }, 'ping-1');

      expect(other.body.decisions[0].reason).toBe(`no task watches ${repoUrl} on branch feature`);
      expect(tag.body.decisions[0].reason).toBe('a tag push (v1) builds nothing');
      expect(deleted.body.decisions[0].reason).toBe('branch main was deleted');
      expect(ping.status).toBe(200);
      expect((await runsOf('commit-task')).length).toBe(before);
      const recorded = await call('GET', '/triggerDecisions?source=github&$top=50');
      expect(recorded.body.value.map((d: any) => d.eventId)).toEqual(
        expect.arrayContaining(['other-branch', 'tag-push', 'branch-delete']),
      );
    });

    it('builds pull requests only when the task enables them', async () => {
      const headSha = git.commit('app', 'feature-x', { 'marker.txt': 'from-the-pull-request\n' });
      const pr = {
        action: 'opened',
        number: 7,
        pull_request: {
          number: 7,
          head: { sha: headSha, ref: 'feature-x', repo: { clone_url: repoUrl } },
          base: { ref: 'main', repo: { clone_url: repoUrl } },
        },
        repository: { clone_url: repoUrl },
      };
      const skipped = await githubDelivery('pull_request', pr, 'pr-1');
      expect(skipped.body.decisions[0]).toMatchObject({
        decision: 'skipped',
        reason: 'pull-request builds are not enabled for this task',
      });

      await call('PATCH', '/tasks/commit-task', {
        properties: {
          trigger: {
            sourceTriggers: [
              {
                name: 'src',
                sourceRepository: { sourceControlType: 'Github', repositoryUrl: repoUrl, branch: 'main' },
                sourceTriggerEvents: ['commit', 'pullrequest'],
              },
            ],
          },
        },
      });
      const built = await githubDelivery('pull_request', pr, 'pr-2');
      const run = await waitForRun(built.body.decisions[0].runId);
      expect(run.status).toBe('Succeeded');
      expect(run.sourceTrigger).toMatchObject({
        eventType: 'pullrequest',
        pullRequestId: '7',
        commitId: headSha,
        branchName: 'feature-x',
      });
      expect((await call('GET', `/runs/${run.runId}/log`)).text).toMatch(/^from-the-pull-request$/m);
    });

    it('records a push to a disabled task as skipped', async () => {
      git.commit('quiet', 'main', { Dockerfile: dockerfile('q'), 'marker.txt': 'q\n' });
      await createTask('disabled-task', `${git.url('quiet')}#main`, {
        status: 'Disabled',
        trigger: {
          sourceTriggers: [
            {
              name: 'src',
              sourceRepository: {
                sourceControlType: 'Github',
                repositoryUrl: git.url('quiet'),
                branch: 'main',
              },
              sourceTriggerEvents: ['commit'],
            },
          ],
        },
      });
      const res = await githubDelivery('push', push(git.url('quiet'), 'main', 'd'.repeat(40)), 'to-disabled');
      expect(res.body.decisions).toEqual([
        expect.objectContaining({
          task: 'disabled-task',
          decision: 'skipped',
          reason: 'the task is disabled',
        }),
      ]);
      expect(await runsOf('disabled-task')).toEqual([]);
    });
  });

  describe('commit triggers (Azure DevOps service hooks)', () => {
    it('builds a git.push with Basic auth, and refuses one without', async () => {
      const sha = git.commit('ado', 'main', {
        Dockerfile: dockerfile('ado'),
        'marker.txt': 'from-azure-devops\n',
      });
      await createTask('ado-task', `${git.url('ado')}#main`, {
        trigger: {
          sourceTriggers: [
            {
              name: 'src',
              sourceRepository: {
                sourceControlType: 'VisualStudioTeamService',
                repositoryUrl: git.url('ado'),
                branch: 'main',
              },
              sourceTriggerEvents: ['commit'],
            },
          ],
        },
      });
      const payload = {
        ...adoFixture,
        id: 'ado-notification-1',
        resource: {
          ...adoFixture.resource,
          refUpdates: [{ name: 'refs/heads/main', oldObjectId: '0'.repeat(40), newObjectId: sha }],
          repository: { ...adoFixture.resource.repository, remoteUrl: git.url('ado') },
        },
      };
      const post = (headers: Record<string, string>): Promise<Response> =>
        fetch(`${process.env.REFIT_URL}/api/hooks/azuredevops`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(payload),
        });

      expect((await post({})).status).toBe(401);
      const ok = await post({
        authorization: `Basic ${Buffer.from(`azdo:${webhookSecret()}`).toString('base64')}`,
      });
      const body = (await ok.json()) as any;
      expect(ok.status).toBe(200);
      const run = await waitForRun(body.decisions[0].runId);
      expect(run).toMatchObject({
        status: 'Succeeded',
        sourceTrigger: { providerType: 'VisualStudioTeamService', commitId: sha, branchName: 'main' },
      });
      const again = (await (await post({ 'x-refit-webhook-secret': webhookSecret() })).json()) as any;
      expect(again.decisions[0].decision).toBe('skipped');
    });
  });

  describe('timer triggers', () => {
    it("fires a real schedule: the host's timer starts a run for an occurrence, which builds", async () => {
      git.commit('timed', 'main', { Dockerfile: dockerfile('t'), 'marker.txt': 'timer\n' });
      await createTask('timer-task', `${git.url('timed')}#main`, {
        trigger: { timerTriggers: [{ name: 'every5s', schedule: '*/5 * * * * *' }] },
      });

      // The first occurrence is at most 5 s away and the host ticks on its own: wait for its run, with a bound.
      const first = await until('the first timer run', async () => (await runsOf('timer-task'))[0], 30000);
      await call('PATCH', '/tasks/timer-task', {
        properties: {
          trigger: { timerTriggers: [{ name: 'every5s', schedule: '*/5 * * * * *', status: 'Disabled' }] },
        },
      });

      expect(first.timerTrigger.timerTriggerName).toBe('every5s');
      expect(new Date(first.timerTrigger.scheduleOccurrence as string).getUTCSeconds() % 5).toBe(0);
      const listed = await call('GET', `/runs?$filter=${encodeURIComponent("taskName eq 'timer-task'")}`);
      expect(
        listed.body.value.every((r: any) => r.properties.timerTrigger.timerTriggerName === 'every5s'),
      ).toBe(true);
      expect((await waitForRun(first.runId)).status).toBe('Succeeded');
    });

    it('starts one run per occurrence due since the last tick, and none for an occurrence already fired (a fake clock)', async () => {
      const env = {
        REFIT_STORAGE: stackStorage(),
        REFIT_REGISTRY: registry(),
        REFIT_SECRET_KEY: readFileSync(join(dataDir(), 'secret.key'), 'utf8').trim(),
      };
      const refit = createRefit(loadConfig(env));
      const deps = { tasks: refit.tasks, dedupe: refit.dedupe, decisions: refit.decisions };
      // Every 20 s in the first minute of a year: occurrences the host's real timer never reaches.
      await createTask('occurrences-task', 'https://127.0.0.1:9/unreachable.git', {
        trigger: { timerTriggers: [{ name: 'every20s', schedule: '*/20 0 0 1 1 *' }] },
      });
      const year = new Date().getUTCFullYear() + 1;
      const at = (seconds: number): Date => new Date(Date.UTC(year, 0, 1, 0, 0, seconds));
      const fired = (decisions: { task?: string; decision: string; eventId: string }[]): string[] =>
        decisions
          .filter((d) => d.task === 'occurrences-task' && d.decision === 'triggered')
          .map((d) => d.eventId)
          .sort();
      const occurrence = (seconds: number): string =>
        `occurrences-task/every20s/${at(seconds).toISOString()}`;

      const firstTick = fired(await evaluateTimers(at(25), deps));
      const sameTick = fired(await evaluateTimers(at(25), deps));
      const laterTick = fired(await evaluateTimers(at(50), deps));

      expect(firstTick).toEqual([occurrence(0), occurrence(20)]);
      expect(sameTick).toEqual([]);
      expect(laterTick).toEqual([occurrence(40)]);
      const runs = await runsOf('occurrences-task');
      expect(runs.map((r) => r.timerTrigger.scheduleOccurrence).sort()).toEqual(
        [0, 20, 40].map((s) => at(s).toISOString()),
      );
      expect(runs.every((r) => r.timerTrigger.timerTriggerName === 'every20s')).toBe(true);
    });

    it('fires each occurrence exactly once with two instances evaluating at the same moment (a fake clock)', async () => {
      const env = {
        REFIT_STORAGE: stackStorage(),
        REFIT_REGISTRY: registry(),
        REFIT_SECRET_KEY: readFileSync(join(dataDir(), 'secret.key'), 'utf8').trim(),
      };
      const a = createRefit(loadConfig(env));
      const b = createRefit(loadConfig(env));
      // Yearly timers: the real timer function never reaches these occurrences; the fake clock does.
      await createTask('new-year-task', 'https://127.0.0.1:9/unreachable.git', {
        trigger: {
          timerTriggers: [
            { name: 'newyear', schedule: '0 0 1 1 *' },
            { name: 'newyear6', schedule: '0 0 0 1 1 *' },
          ],
        },
      });
      const newYear = new Date(Date.UTC(new Date().getUTCFullYear() + 1, 0, 1, 0, 0, 30));

      const [da, db] = await Promise.all([
        evaluateTimers(newYear, { tasks: a.tasks, dedupe: a.dedupe, decisions: a.decisions }),
        evaluateTimers(newYear, { tasks: b.tasks, dedupe: b.dedupe, decisions: b.decisions }),
      ]);
      const again = await evaluateTimers(new Date(newYear.getTime() + 20000), {
        tasks: a.tasks,
        dedupe: a.dedupe,
        decisions: a.decisions,
      });

      const mine = [...da, ...db, ...again].filter((d) => d.task === 'new-year-task');
      expect(
        mine
          .filter((d) => d.decision === 'triggered')
          .map((d) => d.eventId)
          .sort(),
      ).toEqual([
        `new-year-task/newyear/${newYear.getUTCFullYear()}-01-01T00:00:00.000Z`,
        `new-year-task/newyear6/${newYear.getUTCFullYear()}-01-01T00:00:00.000Z`,
      ]);
      const runs = await runsOf('new-year-task');
      expect(runs).toHaveLength(2);
      expect(runs.map((r) => r.timerTrigger.timerTriggerName).sort()).toEqual(['newyear', 'newyear6']);
    });
  });
});
