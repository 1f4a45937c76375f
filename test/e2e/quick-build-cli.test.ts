import { registry, registryDigest, writeContext } from '../support/api';
import { refit } from '../support/cli';

// The README's quickstart, through the CLI, against the real stack.
describe('refit build (e2e)', () => {
  it('builds examples/hello, pushes it with the digest the registry holds, and lists the run', async () => {
    const build = await refit([
      'build',
      '-t',
      'hello:{{.Run.ID}}',
      '--build-arg',
      `REGISTRY=${registry()}`,
      'examples/hello',
    ]);

    expect(build.code).toBe(0);
    const runId = /Queued a build with ID: (\w+)/.exec(build.stderr)?.[1];
    expect(runId).toBeDefined();
    expect(build.stderr).toContain('Waiting for an agent...');
    expect(build.stdout).toContain(`Run ID: ${runId} was successful`);

    const show = await refit(['task', 'show-run', '--run-id', runId!]);
    const run = JSON.parse(show.stdout);
    expect(run.properties.status).toBe('Succeeded');
    expect(run.properties.outputImages[0]).toMatchObject({
      registry: registry(),
      repository: 'hello',
      tag: runId,
    });
    expect(run.properties.outputImages[0].digest).toBe(await registryDigest('hello', runId!));

    const list = await refit(['task', 'list-runs', '-o', 'table', '--top', '50']);
    expect(list.code).toBe(0);
    const lines = list.stdout.split('\n');
    expect(lines[0]).toMatch(/^RUN ID\s+TASK\s+PLATFORM\s+STATUS\s+TRIGGER\s+STARTED\s+DURATION$/);
    expect(lines.find((l) => l.startsWith(`${runId} `))).toMatch(
      new RegExp(
        `^${runId}\\s+linux\\s+Succeeded\\s+Manual\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+\\d\\d:\\d\\d:\\d\\d$`,
      ),
    );

    const logs = await refit(['task', 'logs', '--run-id', runId!]);
    expect(logs.stdout).toContain(`Run ID: ${runId} was successful`);
  });

  it('exits non-zero and says why when the run fails', async () => {
    const dir = writeContext({
      Dockerfile: `FROM ${registry()}/refit/busybox:stable\nRUN echo about to fail && exit 7\n`,
    });
    const build = await refit(['build', dir]);
    expect(build.code).toBe(1);
    expect(build.stdout).toContain('about to fail');
    expect(build.stderr).toMatch(/Run failed: the build failed with exit code \d+/);
  });

  it('returns after queueing with --no-wait, printing the Queued run', async () => {
    const dir = writeContext({ Dockerfile: `FROM ${registry()}/refit/busybox:stable\n` });
    const build = await refit(['build', '--no-wait', dir]);
    expect(build.code).toBe(0);
    const run = JSON.parse(build.stdout);
    expect(run.properties.status).toBe('Queued');
    expect(run.properties.runType).toBe('QuickBuild');
  });

  it('honours .dockerignore when it uploads a directory', async () => {
    const dir = writeContext({
      Dockerfile: `FROM ${registry()}/refit/busybox:stable\nCOPY . /ctx\nRUN ls -A /ctx\n`,
      '.dockerignore': 'secret.txt\n',
      'secret.txt': 'do not send',
      'app.txt': 'send',
    });
    const build = await refit(['build', dir]);
    expect(build.code).toBe(0);
    expect(build.stdout).toMatch(/^app\.txt$/m);
    expect(build.stdout).not.toMatch(/^secret\.txt$/m);
  });

  it('gives clear errors for bad input, unknown runs and an unreachable server', async () => {
    const badImage = await refit(['build', '-t', 'Bad:Name', '--no-wait', 'examples/hello']);
    expect(badImage.code).toBe(1);
    expect(badImage.stderr).toContain("'Bad:Name' is not a valid image reference");

    const noDir = await refit(['build', 'does/not/exist']);
    expect(noDir.code).toBe(1);
    expect(noDir.stderr).toContain("the source 'does/not/exist' is not a directory");

    const unknown = await refit(['task', 'show-run', '--run-id', 'aa99999']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("run 'aa99999' was not found (HTTP 404)");

    const down = await refit(['task', 'list-runs'], { REFIT_URL: 'http://127.0.0.1:1' });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach Refit at http://127.0.0.1:1');
    expect(down.stderr).not.toMatch(/at .*\.js:\d+/);
  });

  it('cancels a run and updates its archive flag', async () => {
    const dir = writeContext({ Dockerfile: `FROM ${registry()}/refit/busybox:stable\nRUN sleep 30\n` });
    const queued = JSON.parse((await refit(['build', '--no-wait', dir])).stdout);
    const runId = queued.properties.runId as string;

    const cancel = await refit(['task', 'cancel-run', '--run-id', runId]);
    expect(cancel.code).toBe(0);
    const update = await refit(['task', 'update-run', '--run-id', runId, '--no-archive', 'false']);
    expect(update.code).toBe(0);
    expect(JSON.parse(update.stdout).properties).toMatchObject({
      isArchiveEnabled: true,
      status: 'Canceled',
    });
  });
});
