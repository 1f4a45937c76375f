import type { ActiveRunState, Executor, RunOutcome, StartResult } from '../../src/executors/executor';
import { LocalExecutor } from '../../src/executors/local/local-executor';
import type { Refit } from '../../src/refit';
import type { Run, RunStatus } from '../../src/runs/run';
import { runResource } from '../../src/runs/run';
import { RunStore } from '../../src/runs/run-store';
import { busyboxBase } from '../support/api';
import { inProcessRefit, isFinished, storeQuickBuild, waitForRecorded } from '../support/in-process';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

/**
 * An executor that answers as a test scripts it and records what the run service asked: the real one is an Azure
 * executor whose group ran elsewhere; this one stands for it at the seam (the service under test is the real one).
 */
class ScriptedExecutor implements Executor {
  readonly released: string[] = [];
  readonly states = new Map<string, ActiveRunState>();
  startAnswers: StartResult[] = [];
  constructor(private readonly real: LocalExecutor) {}
  async start(run: Run, secrets: Parameters<Executor['start']>[1]): Promise<StartResult> {
    const answer = this.startAnswers.shift();
    return answer ?? this.real.start(run, secrets);
  }
  cancel(runId: string): Promise<boolean> {
    return this.real.cancel(runId);
  }
  async reconcile(active: readonly Run[]): Promise<ReadonlyMap<string, ActiveRunState>> {
    return new Map([...this.states].filter(([runId]) => active.some((r) => r.runId === runId)));
  }
  outcome(
    run: Run,
    secrets: Parameters<Executor['outcome']>[1],
    report: unknown,
  ): Promise<RunOutcome | null> {
    return this.real.outcome(run, secrets, report);
  }
  async release(runId: string): Promise<void> {
    this.released.push(runId);
  }
  probe(): Promise<void> {
    return this.real.probe();
  }
  close(): Promise<void> {
    return this.real.close();
  }
}

/** Stores a quick build in `status` (as if an executor had it), without dispatching it, its log created. */
async function storedRun(r: Refit, status: RunStatus): Promise<string> {
  const runId = await storeQuickBuild(r, { Dockerfile: `FROM ${busyboxBase()}\n` }, {}, status);
  await r.logs.create(runId);
  return runId;
}

async function logOf(r: Refit, runId: string): Promise<{ text: string; complete: string | undefined }> {
  const blob = r.logs.blob(runId);
  const props = await blob.getProperties();
  return { text: (await blob.downloadToBuffer()).toString('utf8'), complete: props.metadata?.complete };
}

describe('RunService', () => {
  const r = inProcessRefit();
  const executor = new ScriptedExecutor(r.executor as LocalExecutor);
  Object.defineProperty(r, 'executor', { get: () => executor });
  afterAll(() => executor.close());

  describe('complete', () => {
    it('records the reported outcome through the finish path, closes the log and frees what the run held', async () => {
      const runId = await storedRun(r, 'Running');
      const image = {
        registry: r.config.homeRegistry,
        repository: 'completed/app',
        tag: 'v1',
        digest: DIGEST,
      };

      await r.runs.complete({ runId, report: { status: 'Succeeded', outputImages: [image] } });

      const run = await r.runs.get(runId);
      expect(run).toMatchObject({ status: 'Succeeded', outputImages: [image] });
      expect(run.finishTime).toBeDefined();
      expect(await logOf(r, runId)).toEqual({
        text: expect.stringContaining(`Run ID: ${runId} was successful`),
        complete: 'successful',
      });
      expect(executor.released).toContain(runId);
    });

    it('changes nothing when the message comes again, and frees again', async () => {
      const runId = await storedRun(r, 'Running');
      const message = { runId, report: { status: 'Failed', outputImages: [], runErrorMessage: 'exit 2' } };
      await r.runs.complete(message);
      const first = await r.runs.get(runId);

      await r.runs.complete({ ...message, report: { status: 'Succeeded', outputImages: [] } });

      expect(await r.runs.get(runId)).toEqual(first);
      expect(first).toMatchObject({ status: 'Failed', runErrorMessage: 'exit 2' });
      expect(executor.released.filter((id) => id === runId)).toHaveLength(2);
    });

    it('ends the run Error, naming the field, when the report cannot be read', async () => {
      const runId = await storedRun(r, 'Running');

      await r.runs.complete({ runId, report: { status: 'Succeeded', outputImages: [{ digest: 'nope' }] } });

      expect(await r.runs.get(runId)).toMatchObject({
        status: 'Error',
        runErrorMessage: expect.stringMatching(
          /^the report of run \w+ could not be read: outputImages\.0\.registry/,
        ),
      });
    });

    it('drops a message without a run ID, and one of a run that does not exist', async () => {
      await expect(r.runs.complete({ report: {} })).resolves.toBeUndefined();
      await expect(r.runs.complete('not json at all')).resolves.toBeUndefined();
      await expect(r.runs.complete({ runId: 'zz9', report: {} })).resolves.toBeUndefined();
    });
  });

  describe('reconcile', () => {
    it("records the outcome of a run that ended unreported, fails a lost Running run with the executor's reason, queues a lost Started one again", async () => {
      const ended = await storedRun(r, 'Running');
      const vanished = await storedRun(r, 'Running');
      const unstarted = await storedRun(r, 'Started');
      const alive = await storedRun(r, 'Running');
      executor.states.set(ended, {
        state: 'ended',
        outcome: { status: 'Failed', outputImages: [], runErrorMessage: 'the build failed with exit code 1' },
      });
      executor.states.set(vanished, { state: 'lost', reason: 'the container group was deleted' });
      executor.states.set(unstarted, { state: 'lost', reason: 'the container group was never created' });
      executor.states.set(alive, { state: 'active' });

      const report = await r.runs.reconcile({ startup: false });

      expect(report).toMatchObject({ completed: 1, failed: 1, requeued: 1 });
      expect(await r.runs.get(ended)).toMatchObject({
        status: 'Failed',
        runErrorMessage: 'the build failed with exit code 1',
      });
      expect(await r.runs.get(vanished)).toMatchObject({
        status: 'Error',
        runErrorMessage: 'the container group was deleted',
      });
      expect((await logOf(r, vanished)).text).toContain(
        `Run ID: ${vanished} failed: the container group was deleted`,
      );
      expect((await r.runs.get(alive)).status).toBe('Running');
      expect(executor.released).toEqual(expect.arrayContaining([ended, vanished]));
      // Queued again, the run's message reaches the test stack, whose executor builds it.
      expect((await waitForRecorded(r, unstarted, isFinished)).status).toBe('Succeeded');
      for (const runId of [ended, vanished, unstarted, alive]) executor.states.delete(runId);
    });
  });

  describe('dispatch', () => {
    it("gives a deferred task run its task's queued slot back, so that an update meanwhile finds the task queued", async () => {
      const runId = await storedRun(r, 'Queued');
      const task = `deferred-${runId}`;
      await new RunStore(r.storage, r.config.runIdPrefix).update(runId, (run) => ({
        ...run,
        taskName: task,
      }));
      executor.startAnswers.push({
        started: false,
        reason: 'waiting for a build slot',
        retryAfterSeconds: 1,
      });

      await r.runs.dispatch({ runId });

      expect((await r.runs.get(runId)).status).toBe('Queued');
      expect(await r.runs.claimQueuedSlot(task)).toBeNull();
      await waitForRecorded(r, runId, isFinished);
    });

    it('puts a run the executor cannot start yet back to Queued with the reason shown, and dispatches it again later', async () => {
      const runId = await storedRun(r, 'Queued');
      const reason = 'waiting for a build slot: 100 of 100 cores in use';
      executor.startAnswers.push({ started: false, reason, retryAfterSeconds: 1 });

      await r.runs.dispatch({ runId });

      const waiting = await r.runs.get(runId);
      expect(waiting).toMatchObject({ status: 'Queued', statusDetail: reason });
      expect(waiting.startTime).toBeUndefined();
      expect(runResource(waiting).properties).toMatchObject({ status: 'Queued', statusDetail: reason });
      // Its message comes back after the delay; the test stack takes it this time.
      const run = await waitForRecorded(r, runId, isFinished);
      expect(run.status).toBe('Succeeded');
      expect(run.statusDetail).toBeUndefined();
      expect(runResource(run).properties).not.toHaveProperty('statusDetail');
    });
  });
});
