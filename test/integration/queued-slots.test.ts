import { randomUUID } from 'node:crypto';
import { createRefit, type Refit } from '../../src/refit';
import type { Run } from '../../src/runs/run';
import { RunStore } from '../../src/runs/run-store';
import { newQuickBuildRun, parseRunRequest } from '../../src/runs/schedule-run';
import { CLAIM_LEASE_MS, Claims } from '../../src/storage/claims';
import { names } from '../../src/storage/storage';
import { StorageFaults } from '../../src/storage/storage-faults';
import { dockerBuild, stackConfig, until } from '../support/api';

// Refits in this process on the test stack's Azurite: a plain one, one whose storage requests can be made to fail (the
// SDKs do not retry then, so it makes only the call under test), and one whose clock runs two leases ahead (a slot
// claimed by a host that died before queueing has expired for it).
const refit = createRefit(stackConfig());
const faults = new StorageFaults();
const faulty = createRefit(stackConfig(), { faults });
const later = createRefit(stackConfig(), { claims: { now: () => Date.now() + 2 * CLAIM_LEASE_MS } });
const store = new RunStore(refit.storage, refit.config.runIdPrefix);
afterEach(() => faults.clear());

const uniqueTask = (): string => `slots-${randomUUID().slice(0, 8)}`;

/** A run of `task` (its source does not exist, so a dispatch fails it at once), not yet stored or queued. */
async function newRun(task: string): Promise<Run> {
  const runId = await refit.runs.nextRunId();
  const request = parseRunRequest(dockerBuild(`source/${randomUUID()}.tar.gz`));
  const run = newQuickBuildRun(request, {
    runId,
    now: new Date(),
    homeRegistry: refit.config.homeRegistry,
    secretKey: refit.config.secretKey,
  });
  return { ...run, taskName: task };
}

/**
 * A Queued run of `task` holding the task's slot, as an image update leaves it: stored, with no queue message (so
 * that the stack does not dispatch it and each test moves it on by the path it is about).
 */
async function queuedRunHoldingSlot(task: string): Promise<Run> {
  const slot = await refit.runs.claimQueuedSlot(task);
  if (!slot) throw new Error(`the slot of ${task} is taken`);
  const run = await newRun(task);
  await store.create(run);
  await slot.confirm({ runId: run.runId });
  return run;
}

/** Whether the slot row is gone: a take with no staleness check finds a confirmed slot done. */
async function slotRowFreed(task: string): Promise<boolean> {
  const claims = new Claims(refit.storage.table(names.tables.queuedRuns));
  const taken = await claims.take('task', task.toLowerCase());
  if (taken.status === 'taken') await taken.claim.release();
  return taken.status === 'taken';
}

const statusOf = async (r: Refit, runId: string): Promise<Run> => r.runs.get(runId);

describe('RunService', () => {
  describe('claimQueuedSlot', () => {
    it('refuses the slot while its run is Queued', async () => {
      const task = uniqueTask();
      await queuedRunHoldingSlot(task);
      expect(await refit.runs.claimQueuedSlot(task)).toBeNull();
    });

    it('takes over a slot whose run left Queued by a path that did not free it', async () => {
      const task = uniqueTask();
      const run = await queuedRunHoldingSlot(task);
      // A host that died after failing the run, before freeing the slot.
      await store.update(run.runId, (r) => ({ ...r, status: 'Error', runErrorMessage: 'host stopped' }));

      expect(await refit.runs.claimQueuedSlot(task)).not.toBeNull();
    });

    it('takes over a slot whose claimer died before queueing, once its lease ended', async () => {
      const task = uniqueTask();
      expect(await refit.runs.claimQueuedSlot(task)).not.toBeNull();

      expect(await refit.runs.claimQueuedSlot(task)).toBeNull();
      expect(await later.runs.claimQueuedSlot(task)).not.toBeNull();
    });
  });

  describe('cancel', () => {
    it('frees the slot of a Queued run it cancels', async () => {
      const task = uniqueTask();
      const run = await queuedRunHoldingSlot(task);

      await refit.runs.cancel(run.runId);

      expect((await statusOf(refit, run.runId)).status).toBe('Canceled');
      expect(await slotRowFreed(task)).toBe(true);
    });
  });

  describe('dispatch', () => {
    it('frees the slot of the run it dispatches', async () => {
      const task = uniqueTask();
      const run = await queuedRunHoldingSlot(task);

      await refit.runs.dispatch({ runId: run.runId });

      expect(await slotRowFreed(task)).toBe(true);
      // The source does not exist: the run fails at once (wait for it, so the executor is idle when the file ends).
      await until('the run to end', async () => {
        const now = await statusOf(refit, run.runId);
        return ['Failed', 'Error'].includes(now.status) ? now : undefined;
      });
    });
  });

  describe('enqueue', () => {
    it('ends the run Error when the queue send fails, and the caller gets the error', async () => {
      const run = await newRun(uniqueTask());
      faults.inject({ method: 'POST', path: /\/runs\/messages/, times: 1 });

      await expect(faulty.runs.enqueue(run)).rejects.toThrow(/injected storage fault/);

      expect(await statusOf(refit, run.runId)).toMatchObject({
        status: 'Error',
        runErrorMessage: expect.stringMatching(/^the run could not be queued: injected storage fault/),
      });
      // Its log is complete too: a follower of the log does not wait for a run that will never start.
      expect((await refit.logs.blob(run.runId).getProperties()).metadata?.complete).toBeDefined();
    });
  });

  describe('failPoisoned', () => {
    it('ends the Queued runs of a poisoned message Error with the reason, and frees their slots', async () => {
      const task = uniqueTask();
      const run = await queuedRunHoldingSlot(task);
      const dispatched = await queuedRunHoldingSlot(uniqueTask());
      await store.update(dispatched.runId, (r) => ({ ...r, status: 'Running' }));

      await refit.runs.failPoisoned({ runIds: [run.runId, dispatched.runId] });

      expect(await statusOf(refit, run.runId)).toMatchObject({
        status: 'Error',
        runErrorMessage: expect.stringMatching(/queue message failed every try/),
      });
      expect((await statusOf(refit, dispatched.runId)).status).toBe('Running');
      expect(await slotRowFreed(task)).toBe(true);
    });

    it('is what the host does with a message in the runs poison queue', async () => {
      const task = uniqueTask();
      const run = await queuedRunHoldingSlot(task);

      await refit.storage.queue(names.queues.runsPoison).sendMessage(JSON.stringify({ runId: run.runId }));

      const failed = await until('the poisoned run to end', async () => {
        const now = await statusOf(refit, run.runId);
        return now.status === 'Queued' ? undefined : now;
      });
      expect(failed).toMatchObject({
        status: 'Error',
        runErrorMessage: expect.stringMatching(/poison|set aside/),
      });
      expect(await slotRowFreed(task)).toBe(true);
    });
  });

  describe('reconcileQueuedSlots', () => {
    it("frees the slots whose run is no longer Queued and those whose claimer died, and keeps the others'", async () => {
      const [kept, ended, abandoned] = [uniqueTask(), uniqueTask(), uniqueTask()];
      await queuedRunHoldingSlot(kept);
      const endedRun = await queuedRunHoldingSlot(ended);
      await store.update(endedRun.runId, (r) => ({ ...r, status: 'Error' }));
      expect(await refit.runs.claimQueuedSlot(abandoned)).not.toBeNull();

      await later.runs.reconcileQueuedSlots();

      expect(await slotRowFreed(ended)).toBe(true);
      expect(await slotRowFreed(abandoned)).toBe(true);
      expect(await slotRowFreed(kept)).toBe(false);
    });
  });
});
