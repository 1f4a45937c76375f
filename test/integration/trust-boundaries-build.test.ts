import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UNTRUSTED_SOURCE_LINE } from '../../src/executors/local/local-executor';
import { signGitHubBody } from '../../src/triggers/github';
import {
  busyboxBase,
  call,
  dockerBuild,
  registryDigest,
  uploadContext,
  waitForRun,
  writeContext,
} from '../support/api';
import { watchCommandLines } from '../support/command-lines';
import { GitServer } from '../support/git';

const dataDir = (): string => process.env.REFIT_TEST_DATA_DIR!;
const stackFile = (name: string): string => readFileSync(join(dataDir(), name), 'utf8').trim();

async function runLog(runId: string): Promise<string> {
  return (await call('GET', `/runs/${runId}/log`)).text;
}

/** Schedules a quick multi-step run of `acbYaml` over an uploaded context; returns the run ID. */
async function quickRun(
  acbYaml: string,
  files: Record<string, string>,
  values: { name: string; value: string; isSecret: boolean }[] = [],
): Promise<string> {
  const res = await call('POST', '/scheduleRun', {
    type: 'EncodedTaskRunRequest',
    encodedTaskContent: Buffer.from(acbYaml).toString('base64'),
    sourceLocation: await uploadContext(writeContext(files)),
    values,
    platform: { os: 'Linux', architecture: 'amd64' },
  });
  expect(res.status).toBe(200);
  return res.body.name as string;
}

describe('trust boundaries of builds', () => {
  describe('server secrets', () => {
    it("gives a build's value-less --build-arg of a server secret nothing, and cmd steps no Refit variable", async () => {
      const secretKey = stackFile('secret.key');
      const webhookSecret = stackFile('webhook.secret');
      const registryWebhookSecret = stackFile('registry-webhook.secret');
      const runId = await quickRun(
        [
          'version: v1.1.0',
          'steps:',
          '  - id: build',
          '    build: -t $Registry/trust/env:$ID --build-arg REFIT_SECRET_KEY --build-arg REFIT_WEBHOOK_SECRET .',
          '  - id: env',
          '    cmd: $Registry/refit/busybox:stable env',
          '',
        ].join('\n'),
        {
          // The scan expands FROM with the same build arguments: a secret there would land in the recorded tag.
          Dockerfile: [
            'ARG REFIT_WEBHOOK_SECRET',
            `FROM ${busyboxBase().replace(/:stable$/, '')}:\${REFIT_WEBHOOK_SECRET:-stable}`,
            'ARG REFIT_SECRET_KEY',
            'ARG REFIT_WEBHOOK_SECRET',
            'RUN echo "key=[$REFIT_SECRET_KEY] hook=[$REFIT_WEBHOOK_SECRET]"',
            '',
          ].join('\n'),
        },
      );

      const run = await waitForRun(runId);
      const log = await runLog(runId);

      expect(run.status).toBe('Succeeded');
      expect(log).toMatch(/key=\[\] hook=\[\]$/m);
      for (const secret of [secretKey, webhookSecret, registryWebhookSecret])
        expect(log).not.toContain(secret);
      const envStep = log.split('\n').filter((l) => l.includes(' [env] '));
      expect(envStep).toContainEqual(expect.stringMatching(/ \[env\] PATH=/));
      expect(envStep.filter((l) => l.includes('REFIT_'))).toEqual([]);
      // buildah's own hint ("--build-arg NAME=<VALUE>") is the only REFIT_ name followed by '='.
      expect(log).not.toMatch(/REFIT_\w*=(?!<VALUE>)/);
      expect(run.baseImageDependencies).toEqual([expect.objectContaining({ tag: 'stable' })]);
    });
  });

  describe('build step flags', () => {
    it.each([
      ['-v', () => '-v /:/host', (key: string) => `RUN cat /host${key}`],
      ['--volume', () => '--volume=/:/host', (key: string) => `RUN cat /host${key}`],
      [
        '--secret',
        (key: string) => `--secret id=k,src=${key}`,
        () => 'RUN --mount=type=secret,id=k cat /run/secrets/k',
      ],
      ['--build-context', () => '--build-context host=/', (key: string) => `COPY --from=host ${key} /key`],
    ])(
      "refuses %s, which would give the build this machine's files (the stack's secret key)",
      async (flag, flags, instruction) => {
        const keyFile = join(dataDir(), 'secret.key');
        const runId = await quickRun(
          [
            'version: v1.1.0',
            'steps:',
            '  - id: build',
            `    build: -t $Registry/trust/flags:$ID ${flags(keyFile)} .`,
            '',
          ].join('\n'),
          { Dockerfile: `FROM ${busyboxBase()}\n${instruction(keyFile)}\n` },
        );

        const run = await waitForRun(runId);
        const log = await runLog(runId);

        expect(run.status).toBe('Failed');
        expect(log).toContain(`the flag '${flag}' is not allowed`);
        expect(log).not.toContain(stackFile('secret.key'));
      },
    );
  });

  describe('command lines', () => {
    const secret = `argv-secret-${randomBytes(12).toString('hex')}`;

    it("keeps a Docker build's secret argument off every process's command line", async () => {
      const context = writeContext({
        Dockerfile: `FROM ${busyboxBase()}\nARG TOKEN\nRUN sleep 2; echo "token-length=\${#TOKEN}"\n`,
      });
      const res = await call(
        'POST',
        '/scheduleRun',
        dockerBuild(await uploadContext(context), {
          arguments: [{ name: 'TOKEN', value: secret, isSecret: true }],
        }),
      );
      expect(res.status).toBe(200);
      const runId = res.body.name as string;

      const watched = await watchCommandLines(runId, secret, {
        bud: (line) => line.startsWith('buildah ') && line.includes(' bud ') && line.includes(`/${runId}-`),
        sleep: (line) => line.includes('sleep 2; echo'),
      });

      expect(watched.run.status).toBe('Succeeded');
      expect(watched.seen).toEqual(['bud', 'sleep']);
      expect(watched.leaked).toEqual([]);
      expect(await runLog(runId)).toContain(`token-length=${secret.length}`);
    });

    it("keeps a multi-step run's secret value off the command lines of its build and cmd steps", async () => {
      const runId = await quickRun(
        [
          'version: v1.1.0',
          'steps:',
          '  - id: build',
          '    build: -t $Registry/trust/argv:$ID --build-arg TOKEN={{.Values.token}} .',
          '  - id: use',
          `    cmd: $Registry/refit/busybox:stable sh -c 'sleep 2; echo "step-token-length=\${#TOKEN}"'`,
          '    env: ["TOKEN={{.Values.token}}"]',
          '',
        ].join('\n'),
        { Dockerfile: `FROM ${busyboxBase()}\nARG TOKEN\nRUN sleep 2; echo "token-length=\${#TOKEN}"\n` },
        [{ name: 'token', value: secret, isSecret: true }],
      );

      const watched = await watchCommandLines(runId, secret, {
        bud: (line) => line.startsWith('buildah ') && line.includes(' bud ') && line.includes(`/${runId}-`),
        run: (line) =>
          line.startsWith('buildah ') &&
          line.includes(' run ') &&
          line.includes(`refit-${runId.toLowerCase()}-use-`),
        sleep: (line) => line.includes('sleep 2; echo'),
      });

      expect(watched.run.status).toBe('Succeeded');
      expect(watched.seen).toEqual(['bud', 'run', 'sleep']);
      expect(watched.leaked).toEqual([]);
      const log = await runLog(runId);
      expect(log).toContain(`token-length=${secret.length}`);
      expect(log).toContain(`step-token-length=${secret.length}`);
    });
  });

  describe('pull requests from forks', () => {
    const git = new GitServer();
    const token = `ghp_${randomBytes(16).toString('hex')}`;
    const secretArg = `pr-secret-${randomBytes(12).toString('hex')}`;
    const dockerfile = `FROM ${busyboxBase()}\nARG SECRET_ARG\nRUN echo "arg=[$SECRET_ARG]"\n`;
    let repoUrl = '';

    beforeAll(async () => {
      await git.start();
      git.commit('trusted', 'main', { Dockerfile: dockerfile });
      repoUrl = git.url('trusted');
      const created = await call('PUT', '/tasks/pr-trust', {
        properties: {
          step: {
            type: 'Docker',
            contextPath: `${repoUrl}#main`,
            contextAccessToken: token,
            imageNames: ['trust/pr:{{.Run.ID}}'],
            arguments: [{ name: 'SECRET_ARG', value: secretArg, isSecret: true }],
          },
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
      expect(created.status).toBe(201);
    });
    afterAll(() => git.stop());

    /** Delivers a signed `pull_request` (opened) from `headRepo` at `sha` into `base`; returns the run it started. */
    async function pullRequest(
      headRepo: string,
      branch: string,
      sha: string,
      delivery: string,
      { base = repoUrl }: { base?: string } = {},
    ): Promise<any> {
      const raw = JSON.stringify({
        action: 'opened',
        number: 12,
        pull_request: {
          number: 12,
          head: { sha, ref: branch, repo: { clone_url: headRepo } },
          base: { ref: 'main', repo: { clone_url: base } },
        },
        repository: { clone_url: base },
      });
      const res = await fetch(`${process.env.REFIT_URL}/api/hooks/github`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'pull_request',
          'x-github-delivery': delivery,
          'x-hub-signature-256': signGitHubBody(stackFile('webhook.secret'), raw),
        },
        body: raw,
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { decisions: { decision: string; runId?: string }[] };
      expect(body.decisions[0]).toMatchObject({ decision: 'triggered' });
      return waitForRun(body.decisions[0]!.runId!);
    }

    it("builds a fork's pull request without the task's secrets and pushes nothing, saying so in one line", async () => {
      const sha = git.commit('fork', 'feature', { Dockerfile: dockerfile });

      const run = await pullRequest(git.url('fork'), 'feature', sha, `fork-pr-${Date.now()}`);
      const log = await runLog(run.runId);

      expect(run.status).toBe('Succeeded');
      expect(log.split('\n').filter((l) => l.includes(UNTRUSTED_SOURCE_LINE))).toHaveLength(1);
      expect(log).toMatch(/^arg=\[\]$/m);
      expect(log).not.toContain(secretArg);
      expect(log).not.toContain(token);
      expect(log).not.toContain('*****');
      expect(run.outputImages).toEqual([]);
      expect(await registryDigest('trust/pr', run.runId)).toBeNull();
    });

    it("runs a fork's multi-step pull request with its push steps pushing nothing", async () => {
      const acbYaml = [
        'version: v1.1.0',
        'steps:',
        '  - id: build',
        '    build: -t $Registry/trust/pr-steps:$ID --build-arg SECRET_ARG={{.Values.SECRET_ARG}} .',
        '  - id: push',
        '    push: [$Registry/trust/pr-steps:$ID]',
        '',
      ].join('\n');
      git.commit('trusted-steps', 'main', { Dockerfile: dockerfile, 'acb.yaml': acbYaml });
      const created = await call('PUT', '/tasks/pr-trust-steps', {
        properties: {
          step: {
            type: 'FileTask',
            contextPath: `${git.url('trusted-steps')}#main`,
            contextAccessToken: token,
            taskFilePath: 'acb.yaml',
            values: [{ name: 'SECRET_ARG', value: secretArg, isSecret: true }],
          },
          trigger: {
            sourceTriggers: [
              {
                name: 'src',
                sourceRepository: {
                  sourceControlType: 'Github',
                  repositoryUrl: git.url('trusted-steps'),
                  branch: 'main',
                },
                sourceTriggerEvents: ['pullrequest'],
              },
            ],
          },
        },
      });
      expect(created.status).toBe(201);
      const sha = git.commit('fork-steps', 'feature', { Dockerfile: dockerfile, 'acb.yaml': acbYaml });

      const run = await pullRequest(git.url('fork-steps'), 'feature', sha, `fork-steps-${Date.now()}`, {
        base: git.url('trusted-steps'),
      });
      const log = await runLog(run.runId);

      expect(run.status).toBe('Succeeded');
      expect(log.split('\n').filter((l) => l.includes(UNTRUSTED_SOURCE_LINE))).toHaveLength(1);
      expect(log).toMatch(/\[build\] arg=\[\]$/m);
      expect(log).toMatch(
        /\[push\] Not pushed: \S+\/trust\/pr-steps:\S+ \(a pull request from a fork pushes nothing\)$/m,
      );
      expect(log).not.toContain(secretArg);
      expect(run.outputImages).toEqual([]);
      expect(await registryDigest('trust/pr-steps', run.runId)).toBeNull();
    });

    it('builds a same-repository pull request with the secrets and pushes it, as before', async () => {
      const sha = git.commit('trusted', 'feature-same', {
        Dockerfile: dockerfile,
        'change.txt': 'same repo\n',
      });

      const run = await pullRequest(repoUrl, 'feature-same', sha, `same-pr-${Date.now()}`);
      const log = await runLog(run.runId);

      expect(run.status).toBe('Succeeded');
      expect(log).not.toContain(UNTRUSTED_SOURCE_LINE);
      expect(log).toMatch(/^arg=\[\*+\]$/m);
      expect(log).not.toContain(secretArg);
      expect(await registryDigest('trust/pr', run.runId)).not.toBeNull();
    });
  });
});
