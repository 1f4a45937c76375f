// agentConfiguration.cpu (`refit build --cpu N`) on this machine: buildah's chroot isolation applies no cgroup limits,
// so the local executor holds the build to N CPUs by CPU affinity. What a user relies on is what the build sees: a
// RUN step of a Docker build, and a build step's RUN and a cmd step of a task file, run on at most N CPUs.
import { allowedCpus } from '../../src/executors/local/cpu-affinity';
import type { Refit } from '../../src/refit';
import { busyboxBase, uploadContext, writeContext } from '../support/api';
import {
  inProcessRefit,
  isFinished,
  runLogText,
  startQuickBuild,
  startTaskFileRun,
  waitForRecorded,
} from '../support/in-process';

/** The CPU counts the build printed (`cpus=<n>` lines, each a step's `nproc`), in the order printed. */
function cpusSeen(log: string): number[] {
  return [...log.matchAll(/(?:^|\] )cpus=(\d+)\s*$/gm)].map((m) => Number(m[1]));
}

describe('LocalExecutor', () => {
  describe('agentConfiguration.cpu', () => {
    let r: Refit;
    const machine = allowedCpus().length;

    beforeAll(() => {
      r = inProcessRefit();
    });
    afterAll(async () => {
      await r.executor.close();
    });

    async function finished(runId: string): Promise<string> {
      const run = await waitForRecorded(r, runId, isFinished, 180000);
      const log = await runLogText(r, runId);
      expect({ status: run.status, error: run.runErrorMessage }).toEqual({
        status: 'Succeeded',
        error: undefined,
      });
      expect(run.agentConfiguration).toEqual({ cpu: expect.any(Number) });
      return log;
    }

    it('holds a Docker build to N CPUs: its RUN step sees N of the machine, and all of them when N covers it', async () => {
      const files = { Dockerfile: `FROM ${busyboxBase()}\nRUN echo "cpus=$(nproc)"\n` };
      const one = await startQuickBuild(r, files, { agentConfiguration: { cpu: 1 }, noCache: true });
      const all = await startQuickBuild(r, files, { agentConfiguration: { cpu: 64 }, noCache: true });
      const held = await finished(one);
      expect(cpusSeen(held)).toEqual([1]);
      expect(held).toContain('agentConfiguration.cpu is 1: the build runs on CPU');
      expect((await r.runs.get(one)).agentConfiguration).toEqual({ cpu: 1 });
      expect(cpusSeen(await finished(all))).toEqual([machine]);
    }, 240000);

    it('holds a task file to N CPUs: the RUN of its build step and its cmd step see N', async () => {
      const context = await uploadContext(
        writeContext({ Dockerfile: `FROM ${busyboxBase()}\nRUN echo "cpus=$(nproc)"\n` }),
      );
      const task = [
        'steps:',
        '  - id: b',
        '    build: -f Dockerfile -t {{.Run.Registry}}/cpu-probe:{{.Run.ID}} --no-cache .',
        '  - id: c',
        `    cmd: ${busyboxBase()} sh -c "printf cpus=; nproc"`,
        '',
      ].join('\n');
      const runId = await startTaskFileRun(r, task, {
        sourceLocation: context,
        agentConfiguration: { cpu: 1 },
      });
      expect(cpusSeen(await finished(runId))).toEqual([1, 1]);
    }, 240000);
  });
});
