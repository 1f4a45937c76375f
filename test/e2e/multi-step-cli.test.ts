import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, registry, registryDigest, writeContext } from '../support/api';
import { refit } from '../support/cli';

const runIdOf = (stderr: string): string => /Queued a run with ID: (\w+)/.exec(stderr)![1]!;
const show = async (runId: string): Promise<any> =>
  JSON.parse((await refit(['task', 'show-run', '--run-id', runId])).stdout).properties;

// The examples of examples/multi-step, through `refit run`, against the real stack (buildah, registry, Azurite).
describe('refit run: multi-step task files (e2e)', () => {
  it('build-push: builds and pushes both tags, with the digests the registry holds', async () => {
    const result = await refit(['run', 'examples/multi-step/build-push']);
    expect(result.stderr).toContain('Waiting for an agent...');
    expect(result.code).toBe(0);
    const runId = runIdOf(result.stderr);
    const run = await show(runId);
    expect(run).toMatchObject({ status: 'Succeeded', runType: 'QuickRun' });
    expect(run.outputImages).toEqual([
      {
        registry: registry(),
        repository: 'multistep/hello',
        tag: runId,
        digest: await registryDigest('multistep/hello', runId),
      },
      {
        registry: registry(),
        repository: 'multistep/hello',
        tag: 'latest',
        digest: await registryDigest('multistep/hello', 'latest'),
      },
    ]);
    // The build step's base image is recorded, as for Docker builds.
    expect(run.baseImageDependencies).toEqual([
      expect.objectContaining({
        type: 'RunTime',
        registry: registry(),
        repository: 'refit/busybox',
        tag: 'stable',
      }),
    ]);
    expect(result.stdout).toMatch(/\[build\] /);
  });

  it('build-run-test: runs the image built by an earlier step, with its entry point and another one', async () => {
    const result = await refit(['run', 'examples/multi-step/build-run-test']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('[smoke] 5');
    expect(result.stdout).toContain('[report] test passed');
  });

  it('parallel: independent steps overlap in time, and the join waits for all of them', async () => {
    // Each probe succeeds only if it sees the other's marker while it runs: they must overlap.
    const result = await refit(['run', 'examples/multi-step/parallel']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Step ID: probe-a marked as successful');
    expect(result.stdout).toContain('Step ID: probe-b marked as successful');
    const out = result.stdout;
    const joinStart = out.indexOf('Executing step ID: taste');
    for (const id of ['build-vanilla', 'build-chocolate', 'probe-a', 'probe-b'])
      expect(out.indexOf(`Step ID: ${id} marked as successful`)).toBeLessThan(joinStart);
    expect(result.stdout).toContain('[taste] vanilla');
  });

  it('retries: a flaky step passes on its retry', async () => {
    const result = await refit(['run', 'examples/multi-step/retries']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('retry 1 of 2 in 1 seconds');
    expect(result.stdout).toContain('[flaky] second try, ok');
  });

  it('ignore-errors: a failing step with ignoreErrors lets the run go on', async () => {
    const result = await refit(['run', 'examples/multi-step/ignore-errors']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Step ID: lint failed and its errors are ignored');
    expect(result.stdout).toContain('[build-anyway] lint failed, and the run goes on');
  });

  it('fails the run at a failing step; its dependents never start; secret values are masked', async () => {
    const dir = writeContext({
      'acb.yaml': [
        'version: v1.1.0',
        'steps:',
        '  - id: fails',
        '    cmd: $Registry/refit/busybox:stable sh -c "echo {{.Values.greeting}} $$SECRET; exit 3"',
        '    env: ["SECRET={{.Values.pw}}"]',
        '  - id: never',
        '    cmd: $Registry/refit/busybox:stable echo never',
        '',
      ].join('\n'),
    });
    const result = await refit(['run', '--set', 'greeting=hello', '--set-secret', 'pw=hunter2-secret', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Run failed: failed to run step ID: fails: exit code 3');
    expect(result.stdout).toContain('[fails] hello ***');
    expect(result.stdout).not.toContain('hunter2-secret');
    expect(result.stdout).not.toContain('Executing step ID: never');
    expect((await show(runIdOf(result.stderr))).status).toBe('Failed');
  });

  it('keeps a detached step running beside later steps and stops it when the run ends', async () => {
    const dir = writeContext({
      'acb.yaml': [
        'version: v1.1.0',
        'steps:',
        '  - id: ticker',
        '    cmd: $Registry/refit/busybox:stable sh -c "while true; do date >> /workspace/ticks; sleep 0.2; done"',
        '    detach: true',
        '  - id: watch',
        '    cmd: $Registry/refit/busybox:stable sh -c "for i in $$(seq 150); do [ -s /workspace/ticks ] && echo ticking && exit 0; sleep 0.2; done; exit 1"',
        '',
      ].join('\n'),
    });
    // The ticker never ends by itself: the run finishing at all shows it was stopped.
    const result = await refit(['run', dir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('[watch] ticking');
    expect(result.stdout).toContain('Started in the background (detach)');
    expect((await show(runIdOf(result.stderr))).status).toBe('Succeeded');
  });

  it('stops a step at its timeout and fails the run naming it', async () => {
    const dir = writeContext({
      'acb.yaml':
        'steps:\n  - id: sleepy\n    cmd: "{{.Run.Registry}}/refit/busybox:stable sleep 120"\n    timeout: 2\n',
    });
    const result = await refit(['run', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('failed to run step ID: sleepy: the step timed out after 2 seconds');
  });

  it("refuses a build step whose context or Dockerfile is outside the source (this machine's files)", async () => {
    const dir = writeContext({
      'acb.yaml': 'steps:\n  - id: escape\n    build: -t leak:1 -f /etc/hostname /\n',
    });
    const result = await refit(['run', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "failed to run step ID: escape: the build context '/' is outside the source",
    );
    expect(result.stdout).not.toContain('Running command buildah bud');
  });

  it('runs one --cmd with no source (/dev/null), aliases expanded', async () => {
    const result = await refit([
      'run',
      '--cmd',
      '$Registry/refit/busybox:stable echo hi from $ID',
      '/dev/null',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`hi from ${runIdOf(result.stderr)}`);
  });

  it('runs a task file given with -f and /dev/null, with a values file, --set winning', async () => {
    const dir = writeContext({
      'task.yaml':
        'steps:\n  - cmd: "{{.Run.Registry}}/refit/busybox:stable echo {{.Values.a}} {{.Values.b}}"\n',
      'values.yaml': 'a: from-file\nb: from-file\n',
    });
    const result = await refit([
      'run',
      '-f',
      join(dir, 'task.yaml'),
      '--values',
      join(dir, 'values.yaml'),
      '--set',
      'b=from-set',
      '/dev/null',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('[acb_step_0] from-file from-set');
  });

  describe('--dry-run', () => {
    it('prints the step graph without running anything', async () => {
      // No server at all: a dry run never queues anything.
      const result = await refit(['run', '--dry-run', 'examples/multi-step/parallel'], {
        REFIT_URL: 'http://127.0.0.1:9',
      });
      expect(result.code).toBe(0);
      const graph = JSON.parse(result.stdout);
      expect(graph.steps.map((s: any) => [s.id, s.when])).toEqual([
        ['build-vanilla', []],
        ['build-chocolate', []],
        ['probe-a', []],
        ['probe-b', []],
        ['taste', ['build-vanilla', 'build-chocolate', 'probe-a', 'probe-b']],
        ['push', ['taste']],
      ]);
      expect(graph.steps[0].build).toMatch(/^-t \S+\/multistep\/ice:vanilla-dryrun /);
      expect(graph.steps[5].push).toHaveLength(2);
    });

    it.each([
      [
        'steps:\n- id: a\n  cmd: x\n  when: [b]\n- id: b\n  cmd: y\n',
        "steps[0] (a): when names 'b', a later step",
      ],
      ['steps:\n- id: a\n  cmd: x\n- id: a\n  cmd: y\n', 'steps[1] (a): a already exists as a vertex'],
      ['version: v9\nsteps:\n- cmd: x\n', 'invalid version specified: "v9"'],
      [
        'steps:\n- id: a\n  cmd: x\n  build: .\n',
        'steps[0] (a): step must only contain a single build, cmd, or push property',
      ],
      ['steps:\n- cmd: x\n   when: oops\n', 'not valid YAML (line 2)'],
    ])('names the culprit of an invalid file (%#)', async (content, message) => {
      const file = join(writeContext({}), 'acb.yaml');
      writeFileSync(file, content);
      const result = await refit(['run', '--dry-run', '-f', file, '/dev/null']);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(message);
      expect(result.stdout).toBe('');
    });
  });

  it('answers an invalid encoded task with 400 naming the step', async () => {
    const res = await call('POST', '/scheduleRun', {
      type: 'EncodedTaskRunRequest',
      encodedTaskContent: Buffer.from('steps:\n- id: a\n  cmd: x\n  retries: -1\n').toString('base64'),
      platform: { os: 'linux', architecture: 'amd64' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ target: 'encodedTaskContent' });
    expect(res.body.error.message).toContain('steps[0] (a): step must specify retries >= 0');
  });
});
