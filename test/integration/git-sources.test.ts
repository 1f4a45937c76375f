import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { busyboxBase, call, dockerBuild, registry, waitForRun } from '../support/api';
import { GitServer } from '../support/git';
import { GitHttpServer } from '../support/git-http';

const token = `rt_${randomBytes(12).toString('hex')}`;
// The forms the token could take on its way: as is, and in the Basic header git sends.
const tokenForms = [token, Buffer.from(`x-access-token:${token}`).toString('base64')];

/**
 * A Dockerfile that copies the whole build context (.git included) and searches it for the token. The token is
 * assembled in the shell from two halves, so that the Dockerfile itself never holds it.
 */
const searchingDockerfile = (): string =>
  [
    `FROM ${busyboxBase()}`,
    'COPY . /src',
    `RUN T="${token.slice(0, 6)}"; T="\${T}${token.slice(6)}"; if grep -rqF "$T" /src; then echo "TOKEN-FOUND"; else echo "TOKEN-NOT-FOUND"; fi`,
    '',
  ].join('\n');

/** Every blob of a pushed image (config and layers, layers gunzipped). */
async function imageBlobs(repository: string, tag: string): Promise<Buffer[]> {
  const base = `http://${registry()}/v2/${repository}`;
  const manifest = (await (
    await fetch(`${base}/manifests/${tag}`, {
      headers: {
        accept:
          'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    })
  ).json()) as { config: { digest: string }; layers: { digest: string }[] };
  const blobs: Buffer[] = [];
  for (const { digest } of [manifest.config, ...manifest.layers]) {
    const bytes = Buffer.from(await (await fetch(`${base}/blobs/${digest}`)).arrayBuffer());
    blobs.push(bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes);
  }
  return blobs;
}

async function createTask(name: string, step: Record<string, unknown>): Promise<void> {
  const res = await call('PUT', `/tasks/${name}`, {
    properties: { step: { type: 'Docker', imageNames: [`git-sources/${name}:{{.Run.ID}}`], ...step } },
  });
  expect([200, 201]).toContain(res.status);
}

async function runTask(name: string): Promise<any> {
  const scheduled = await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: name });
  expect(scheduled.status).toBe(200);
  return waitForRun(scheduled.body.name);
}

describe('git sources', () => {
  const server = new GitHttpServer(token);
  beforeAll(async () => {
    await server.start();
    server.repos.commit('app', 'main', { Dockerfile: searchingDockerfile(), 'hello.txt': 'hello\n' });
  });
  afterAll(() => server.stop());

  describe('a task over a git server that needs a token', () => {
    it.each([
      [
        'the git access token',
        'token-header',
        () => ({ contextPath: `${server.url('app')}#main`, contextAccessToken: token }),
        () => `${server.url('app')}#main`,
      ],
      [
        'a user:password URL',
        'token-in-url',
        () => ({ contextPath: `${server.url('app').replace('//', `//x-access-token:${token}@`)}#main` }),
        () => `${server.url('app').replace('//', '//x-access-token@')}#main`,
      ],
    ])(
      'builds with %s, and the token reaches neither the source, the log, the API nor the image',
      async (_how, name, step, shownContext) => {
        await createTask(name, step());
        const shown = await call('GET', `/tasks/${name}`);
        expect(shown.body.properties.step.contextPath).toBe(shownContext());

        const run = await runTask(name);

        expect(run.status).toBe('Succeeded');
        expect(server.requests.some((r) => r.authorized)).toBe(true);
        const log = (await call('GET', `/runs/${run.runId}/log`)).text;
        // The RUN's output lines (the command itself is logged too, with both words in it).
        expect(log).toMatch(/^TOKEN-NOT-FOUND$/m);
        expect(log).not.toMatch(/^TOKEN-FOUND$/m);
        const blobs = await imageBlobs(`git-sources/${name}`, run.runId);
        expect(blobs.length).toBeGreaterThan(1);
        for (const form of tokenForms) {
          expect(log).not.toContain(form);
          expect(shown.text).not.toContain(form);
          expect(JSON.stringify(run)).not.toContain(form);
          for (const blob of blobs) expect(blob.includes(form)).toBe(false);
        }
      },
    );

    it('fails with a clear message when the token is wrong', async () => {
      await createTask('token-wrong', {
        contextPath: `${server.url('app')}#main`,
        contextAccessToken: 'not-the-token',
      });

      const run = await runTask('token-wrong');

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain('the git server refused the credentials');
      expect(JSON.stringify(run)).not.toContain('not-the-token');
    });
  });

  describe("a task file's build contexts", () => {
    const other = new GitHttpServer(token);
    beforeAll(async () => {
      await other.start();
      other.repos.commit('app', 'main', { Dockerfile: `FROM ${busyboxBase()}\n` });
    });
    afterAll(() => other.stop());

    it("get the run's token on the run's own server only, never on another one the task file names", async () => {
      const steps = [
        'steps:',
        `- build: -t own-server:{{.Run.ID}} ${server.url('app')}#main`,
        `- build: -t other-server:{{.Run.ID}} ${other.url('app')}#main`,
        '',
      ].join('\n');
      const ownBefore = server.requests.filter((r) => r.authorized).length;
      const scheduled = await call('POST', '/scheduleRun', {
        type: 'EncodedTaskRunRequest',
        encodedTaskContent: Buffer.from(steps).toString('base64'),
        sourceLocation: `${server.url('app').replace('//', `//x-access-token:${token}@`)}#main`,
        platform: { os: 'Linux', architecture: 'amd64' },
      });
      expect(scheduled.status).toBe(200);

      const run = await waitForRun(scheduled.body.name);

      expect(run.status).toBe('Failed');
      expect(server.requests.filter((r) => r.authorized).length).toBeGreaterThan(ownBefore);
      expect(other.requests.length).toBeGreaterThan(0);
      expect(other.requests.filter((r) => r.authorized)).toEqual([]);
      expect((await call('GET', `/runs/${run.runId}/log`)).text).toContain(
        'the git server asks for credentials',
      );
    });
  });

  describe('where a git source may connect', () => {
    it.each([
      ['git://169.254.169.254/repo.git', '169.254.169.254 is a cloud metadata address'],
      ['http://169.254.169.254/latest/repo.git', '169.254.169.254 is a cloud metadata address'],
      ['git://[fe80::1]/repo.git', 'fe80::1 is a link-local address'],
    ])('refuses %s at once, saying why', async (location, why) => {
      const scheduled = await call('POST', '/scheduleRun', dockerBuild(location));
      expect(scheduled.status).toBe(200);

      const run = await waitForRun(scheduled.body.name, 30000);

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain('was refused');
      expect(run.runErrorMessage).toContain(why);
    });
  });

  describe('a git:// source named by host name', () => {
    const daemon = new GitServer();
    beforeAll(() => daemon.start());
    afterAll(() => daemon.stop());

    it("is cloned from the address that was checked, and keeps its name as the clone's origin", async () => {
      daemon.commit('pinned', 'main', {
        Dockerfile: `FROM ${busyboxBase()}\nCOPY . /src\nRUN grep -h "url = " /src/.git/config\n`,
      });
      const named = `git://localhost:${daemon.port}/pinned.git`;
      const scheduled = await call('POST', '/scheduleRun', dockerBuild(`${named}#main`));

      const run = await waitForRun(scheduled.body.name);

      expect(run.status).toBe('Succeeded');
      const log = (await call('GET', `/runs/${run.runId}/log`)).text;
      expect(log).toContain(`-- git://127.0.0.1:${daemon.port}/pinned.git`);
      expect(log).toMatch(new RegExp(`^\\s*url = ${named.replace(/[.]/g, '\\.')}$`, 'm'));
    });
  });

  describe('URLs git would take but Refit does not', () => {
    it.each([
      ['file:///etc/refit/secret.git', 'uses file://'],
      ['ssh://git@github.com/o/r.git', 'uses ssh://'],
      ['ext::sh -c touch% /tmp/refit-pwned', 'transport::address'],
      ['git@github.com:o/r.git', 'scp-like'],
    ])('answers %s with a 400 naming the field, at scheduleRun and at task create', async (location, why) => {
      const run = await call('POST', '/scheduleRun', dockerBuild(location));
      const task = await call('PUT', '/tasks/refused-remote', {
        properties: { step: { type: 'Docker', contextPath: location } },
      });
      const override = await call('POST', '/scheduleRun', {
        type: 'TaskRunRequest',
        taskId: 'no-such-task',
        overrideTaskStepProperties: { contextPath: location },
      });

      for (const [res, field] of [
        [run, 'sourceLocation'],
        [task, 'properties.step.contextPath'],
        [override, 'overrideTaskStepProperties.contextPath'],
      ] as const) {
        expect(res.status).toBe(400);
        expect(res.body.error.target).toBe(field);
        expect(res.body.error.message).toContain(why);
      }
    });
  });

  describe('credentials in a URL', () => {
    it('are never shown by GET of the task, nor kept in its context', async () => {
      await createTask('url-secret', { contextPath: 'https://user:s3cret-in-url@127.0.0.1:9/repo.git#main' });

      const one = await call('GET', '/tasks/url-secret');
      const all = await call('GET', '/tasks?$top=100');

      expect(one.body.properties.step.contextPath).toBe('https://user@127.0.0.1:9/repo.git#main');
      for (const res of [one, all]) expect(res.text).not.toContain('s3cret-in-url');
    });
  });
});
