// The retention purge on the test stack's Azurite, with a fake clock: the runs are recorded as created and finished
// long ago (so no run of another test is ever old enough), and the purge is given a `now` 31 days after them.
import { randomUUID } from 'node:crypto';
import { createRefit } from '../../src/refit';
import { purgeExpiredRuns, sweepOrphanLogs, type RetentionDeps } from '../../src/runs/retention';
import type { Run, RunStatus } from '../../src/runs/run';
import { RunStore } from '../../src/runs/run-store';
import { newQuickBuildRun, parseRunRequest } from '../../src/runs/schedule-run';
import { names } from '../../src/storage/storage';
import { StorageFaults } from '../../src/storage/storage-faults';
import { dockerBuild, stackConfig } from '../support/api';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('runs/retention', () => {
  const faults = new StorageFaults();
  const r = createRefit(stackConfig(), { faults });
  const store = new RunStore(r.storage, r.config.runIdPrefix);
  const created: string[] = [];
  // What a test kept is removed, so that no other test (nor the stack's own purge) meets its runs.
  afterEach(async () => {
    faults.clear();
    for (const runId of created.splice(0)) {
      const found = await store.find(runId);
      if (found) await store.deleteIfUnchanged(runId, found.etag);
      await r.logs.delete(runId);
    }
  });

  /** A run recorded `createdAt`, in `status`, finished an hour later when the status is final, with its log. */
  async function recordRun(
    createdAt: Date,
    status: RunStatus,
    options: { archived?: boolean } = {},
  ): Promise<string> {
    const runId = await store.nextRunId();
    created.push(runId);
    const queued = newQuickBuildRun(parseRunRequest(dockerBuild(`source/20010101/${randomUUID()}.tar.gz`)), {
      runId,
      now: createdAt,
      homeRegistry: r.config.homeRegistry,
      secretKey: r.config.secretKey,
    });
    const final = !['Queued', 'Started', 'Running'].includes(status);
    const run: Run = {
      ...queued,
      status,
      isArchiveEnabled: options.archived ?? false,
      ...(status !== 'Queued' ? { startTime: createdAt.toISOString() } : {}),
      ...(final ? { finishTime: new Date(createdAt.getTime() + 3600_000).toISOString() } : {}),
    };
    await store.create(run);
    await r.logs.create(runId);
    if (final) await r.logs.markComplete(runId, status, `the log of ${runId}`);
    return runId;
  }

  const exists = async (runId: string): Promise<{ record: boolean; log: boolean }> => ({
    record: (await store.find(runId)) !== null,
    log: await r.logs.blob(runId).exists(),
  });

  const deps = (overrides: Partial<RetentionDeps> = {}): RetentionDeps => ({
    store,
    logs: r.logs,
    logContainer: r.storage.container(names.containers.logs),
    runIdPrefix: r.config.runIdPrefix,
    days: 30,
    pageSize: 2,
    ...overrides,
  });

  // Each test has its own stretch of the past, so that one test's runs are never in another's window.
  const epoch = (year: number): Date => new Date(Date.UTC(year, 0, 1));

  describe('purgeExpiredRuns', () => {
    it('purges finished runs and their logs 30 days on, and keeps archived, unfinished and younger runs', async () => {
      const t0 = epoch(2001);
      const expired = await Promise.all(
        (['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout'] as const).map((s) => recordRun(t0, s)),
      );
      const archived = await recordRun(t0, 'Succeeded', { archived: true });
      const queued = await recordRun(t0, 'Queued');
      const running = await recordRun(t0, 'Running');
      const younger = await recordRun(new Date(t0.getTime() + 2 * DAY_MS), 'Succeeded');

      const report = await purgeExpiredRuns(new Date(t0.getTime() + 31 * DAY_MS), deps());

      expect(report).toEqual({ purged: 5, orphanLogs: 0, failed: 0 });
      for (const runId of expired) expect(await exists(runId)).toEqual({ record: false, log: false });
      for (const runId of [archived, queued, running, younger])
        expect(await exists(runId)).toEqual({ record: true, log: true });
    });

    it('is a no-op when repeated', async () => {
      const t0 = epoch(2002);
      const expired = await recordRun(t0, 'Succeeded');
      const kept = await recordRun(t0, 'Failed', { archived: true });
      const now = new Date(t0.getTime() + 31 * DAY_MS);

      expect((await purgeExpiredRuns(now, deps())).purged).toBe(1);
      expect(await purgeExpiredRuns(now, deps())).toEqual({ purged: 0, orphanLogs: 0, failed: 0 });
      expect(await exists(expired)).toEqual({ record: false, log: false });
      expect(await exists(kept)).toEqual({ record: true, log: true });
    });

    it('honours REFIT_RETENTION_DAYS', async () => {
      const t0 = epoch(2003);
      const runId = await recordRun(t0, 'Succeeded');
      const now = new Date(t0.getTime() + 31 * DAY_MS);

      expect((await purgeExpiredRuns(now, deps({ days: 60 }))).purged).toBe(0);
      expect(await exists(runId)).toEqual({ record: true, log: true });
      expect((await purgeExpiredRuns(now, deps({ days: 7 }))).purged).toBe(1);
      expect(await exists(runId)).toEqual({ record: false, log: false });
    });

    it('keeps a run archived after it was listed (the record is deleted only if unchanged)', async () => {
      const t0 = epoch(2004);
      const runId = await recordRun(t0, 'Succeeded');
      const [candidate] = (await store.listFinishedBefore(new Date(t0.getTime() + DAY_MS), 100).next())
        .value!;
      expect(candidate?.runId).toBe(runId);
      await store.update(runId, (run) => ({ ...run, isArchiveEnabled: true }));

      expect(await store.deleteIfUnchanged(runId, candidate!.etag)).toBe(false);
      expect(await exists(runId)).toEqual({ record: true, log: true });
    });

    it('loses nothing that should stay when storage fails mid-way, and a later purge finishes the job', async () => {
      const t0 = epoch(2005);
      const expired = await Promise.all([1, 2, 3, 4].map(() => recordRun(t0, 'Succeeded')));
      const kept = await recordRun(t0, 'Succeeded', { archived: true });
      const now = new Date(t0.getTime() + 31 * DAY_MS);
      // One record delete and one log delete fail, as a host dying between two writes would leave them.
      faults.inject({ method: 'DELETE', path: /^\/devstoreaccount1\/runs\(/, times: 1 });
      faults.inject({ method: 'DELETE', path: /^\/devstoreaccount1\/logs\//, times: 1 });

      const interrupted = await purgeExpiredRuns(now, deps());

      expect(interrupted).toMatchObject({ purged: 2, failed: 2 });
      expect(await exists(kept)).toEqual({ record: true, log: true });
      const states = await Promise.all(expired.map(exists));
      // Never a record without its log: the record goes first.
      expect(states.filter((s) => s.record && !s.log)).toEqual([]);
      const leftLog = expired[states.findIndex((s) => !s.record && s.log)]!;

      faults.clear();
      expect(await purgeExpiredRuns(now, deps())).toMatchObject({ purged: 1, failed: 0 });
      // The log whose record went first is an orphan: the sweep removes it once it is past retention.
      expect(await sweepOrphanLogs(new Date(Date.now() + 60_000), deps())).toBeGreaterThanOrEqual(1);
      for (const runId of expired) expect(await exists(runId)).toEqual({ record: false, log: false });
      expect(await exists(kept)).toEqual({ record: true, log: true });
      expect(leftLog).toBeDefined();
    });
  });
});
