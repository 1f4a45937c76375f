import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, waitForRun } from '../support/api';
import { refit } from '../support/cli';
import { GitServer } from '../support/git';
import { copyBusybox, startRegistry, testPort, type RunningRegistry } from '../support/private-registry';

const USER = 'alice';
const PASSWORD = 'pr1vate-Registry-pw-93';
const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const runIdOf = (stderr: string): string => /Queued a run with ID: (\w+)/.exec(stderr)![1]!;

/** The digest the private registry holds for repository:tag (asked with the credentials). */
async function privateDigest(host: string, repository: string, tag: string): Promise<string | null> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      authorization: basic,
      accept:
        'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
    },
  });
  return res.ok ? res.headers.get('docker-content-digest') : null;
}

/** `refit task credential VERB -n private-task --login-server SERVER ...rest`. */
function credential(verb: string, server: string, ...rest: string[]): ReturnType<typeof refit> {
  return refit(['task', 'credential', verb, '-n', 'private-task', '--login-server', server, ...rest]);
}

// A task FROM a base on a private registry (htpasswd, on loopback), as a new user sets it up: the registry refuses a
// run without credentials, `refit task credential add` gives the task its login, and the run builds and pushes there.
describe('refit task credential (e2e)', () => {
  const root = mkdtempSync(join(tmpdir(), 'refit-private-'));
  const git = new GitServer();
  let priv: RunningRegistry;
  beforeAll(async () => {
    await git.start();
    priv = await startRegistry(join(root, 'private'), 'private', testPort(940), {
      htpasswd: { user: USER, password: PASSWORD },
    });
    await copyBusybox(root, [`${priv.host}/private/base:1`], { username: USER, password: PASSWORD });
  });
  afterAll(async () => {
    git.stop();
    await priv.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('builds FROM a private base and pushes there with the login added by the CLI; the password shows nowhere', async () => {
    git.commit('private-app', 'main', {
      Dockerfile: `FROM ${priv.host}/private/base:1\nRUN echo built-from-private > /m.txt\n`,
    });
    const created = await refit([
      'task',
      'create',
      '-n',
      'private-task',
      '-c',
      `${git.url('private-app')}#main`,
      '-t',
      `${priv.host}/private/app:{{.Run.ID}}`,
      '--commit-trigger-enabled',
      'false',
    ]);
    expect(created.code).toBe(0);

    // Without a login: the registry's refusal, named in the run's error.
    const refused = await refit(['task', 'run', '-n', 'private-task', '--no-logs']);
    const refusedRun = await waitForRun(runIdOf(refused.stderr));
    expect(refusedRun.status).toBe('Failed');
    expect(refusedRun.runErrorMessage).toBe(
      `the build failed with exit code 125: ${priv.host} refused the request: unauthorized`,
    );

    const add = await credential('add', priv.host, '-u', USER, '-p', PASSWORD);
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toEqual({
      [priv.host]: { userName: { type: 'Opaque', value: USER }, password: { type: 'Opaque' } },
    });
    const again = await credential('add', priv.host, '-u', USER, '-p', 'other');
    expect({ code: again.code, stderr: again.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining(`login server '${priv.host}' already exists on task 'private-task'`),
    });
    const noPassword = await credential('update', priv.host, '-u', USER);
    expect(noPassword.stderr).toContain('-p/--password is required with -u/--username');
    const missing = await credential('remove', 'other.example.com');
    expect(missing.stderr).toContain("task 'private-task' has no login for 'other.example.com'");
    const list = await refit(['task', 'credential', 'list', '-n', 'private-task', '-o', 'table']);
    expect(list.stdout.split('\n')[0]).toMatch(
      /^LOGIN SERVER\s+USERNAME\s+USERNAME TYPE\s+PASSWORD TYPE\s+IDENTITY$/,
    );
    expect(list.stdout).toMatch(
      new RegExp(`${priv.host.replace(/\./g, '\\.')}\\s+${USER}\\s+Opaque\\s+Opaque`),
    );

    const run = await refit(['task', 'run', '-n', 'private-task']);
    expect(run.code).toBe(0);
    const runId = runIdOf(run.stderr);
    const finished = (await call('GET', `/runs/${runId}`)).body;
    expect(finished.properties.status).toBe('Succeeded');
    // Pushed to the private registry, with the digest it holds there.
    expect(finished.properties.outputImages).toEqual([
      {
        registry: priv.host,
        repository: 'private/app',
        tag: runId,
        digest: await privateDigest(priv.host, 'private/app', runId),
      },
    ]);
    // The dependency is recorded with the base's digest (looked up with the task's login).
    const baseDigest = await privateDigest(priv.host, 'private/base', '1');
    expect(baseDigest).toMatch(/^sha256:/);
    const task = (await call('GET', '/tasks/private-task')).body;
    expect(task.properties.step.baseImageDependencies).toEqual([
      expect.objectContaining({
        registry: priv.host,
        repository: 'private/base',
        tag: '1',
        digest: baseDigest,
      }),
    ]);

    // The password is in no response and no log.
    const seen = [
      JSON.stringify(task),
      JSON.stringify((await call('GET', '/tasks')).body),
      JSON.stringify(finished),
      (await call('GET', `/runs/${runId}/log`)).body as string,
      (await call('GET', `/runs/${refusedRun.runId}/log`)).body as string,
      run.stdout + run.stderr,
      add.stdout + add.stderr,
      list.stdout,
      readFileSync(join(process.env.REFIT_TEST_DATA_DIR!, 'stack.out'), 'utf8'),
    ];
    for (const text of seen) expect(text).not.toContain(PASSWORD);
    expect(seen[3]).toContain('built-from-private');

    const removed = await credential('remove', priv.host);
    expect(JSON.parse(removed.stdout)).toEqual({});
  });
});
