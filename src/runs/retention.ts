import type { ContainerClient } from '@azure/storage-blob';
import pLimit from 'p-limit';
import { log } from '../log';
import { FINISHED } from './run';
import { parseRunId } from './run-id';
import type { RunLogs } from './run-log';
import type { RetentionCandidate, RunStore } from './run-store';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Deletes under way at once: Azurite is one process, and a storage account has its own request budget. */
const DEFAULT_CONCURRENCY = 8;

/** What the purge works on. */
export interface RetentionDeps {
  readonly store: RunStore;
  readonly logs: RunLogs;
  /** The logs container, swept for logs whose run record is already gone. */
  readonly logContainer: ContainerClient;
  /** The deployment's run ID prefix: only its own logs are swept. */
  readonly runIdPrefix: string;
  /** REFIT_RETENTION_DAYS. */
  readonly days: number;
  /** Runs read per page of the runs table. */
  readonly pageSize?: number;
  /** Deletes under way at once. */
  readonly concurrency?: number;
}

/** What one purge did. */
export interface PurgeReport {
  /** Runs whose record and log were deleted. */
  readonly purged: number;
  /** Logs deleted whose record an earlier, interrupted purge had deleted. */
  readonly orphanLogs: number;
  /** Runs or logs that could not be deleted this time (storage failed): the next purge tries again. */
  readonly failed: number;
}

/** Whether a run is past retention at `cutoff`: finished (when it ended, or was created) before it, and not archived. */
export function isExpired(run: RetentionCandidate, cutoff: Date): boolean {
  return (
    run.isArchiveEnabled !== true &&
    FINISHED.has(run.status) &&
    (run.finishTime ?? run.createTime) < cutoff.toISOString()
  );
}

// Counts what failed; a failure is logged and left for the next purge, and the purge goes on with the rest.
interface Attempts {
  failed: number;
}

async function attempt(
  tally: Attempts,
  what: 'record' | 'log',
  runId: string,
  action: () => Promise<boolean>,
): Promise<boolean> {
  try {
    return await action();
  } catch (err) {
    tally.failed++;
    log.warn('retention could not delete a run; the next purge retries', {
      runId,
      what,
      error: (err as Error)?.message ?? String(err),
    });
    return false;
  }
}

/**
 * ACR's run retention: a finished run's record and log are deleted `days` after it ended, unless the run is archived
 * (Runs_Update `isArchiveEnabled`, `update-run --no-archive false`); Queued and running runs are never touched, nor
 * are the dependency index and the image-update audit (they are not run data). A function of `now`, so a test can
 * move the clock.
 *
 * Idempotent, and safe to stop at any point: each record is deleted only if unchanged since it was read (a run
 * archived meanwhile stays), and before its log, so an interruption can leave a log without a record but never a
 * kept run without its log; {@link sweepOrphanLogs} then deletes such logs. The runs table is read a page at a time.
 */
export async function purgeExpiredRuns(now: Date, deps: RetentionDeps): Promise<PurgeReport> {
  const cutoff = new Date(now.getTime() - deps.days * DAY_MS);
  const limit = pLimit(deps.concurrency ?? DEFAULT_CONCURRENCY);
  const tally: Attempts = { failed: 0 };
  let purged = 0;
  for await (const page of deps.store.listFinishedBefore(cutoff, deps.pageSize ?? 100)) {
    await Promise.all(
      page
        .filter((run) => isExpired(run, cutoff))
        .map((run) =>
          limit(async () => {
            const gone = await attempt(tally, 'record', run.runId, () =>
              deps.store.deleteIfUnchanged(run.runId, run.etag),
            );
            if (!gone) return;
            const deleted = await attempt(tally, 'log', run.runId, async () => {
              await deps.logs.delete(run.runId);
              return true;
            });
            if (deleted) purged++;
          }),
        ),
    );
  }
  const orphanLogs = await sweepOrphanLogs(cutoff, deps, tally);
  const report = { purged, orphanLogs, failed: tally.failed };
  log.info('retention purge done', { ...report, days: deps.days, cutoff: cutoff.toISOString() });
  return report;
}

/**
 * Deletes the run logs last written before `cutoff` whose run record is gone (what an interrupted purge leaves
 * behind); only this deployment's logs, named as {@link RunLogs} names them. Returns how many it deleted.
 */
export async function sweepOrphanLogs(
  cutoff: Date,
  deps: RetentionDeps,
  tally: Attempts = { failed: 0 },
): Promise<number> {
  const limit = pLimit(deps.concurrency ?? DEFAULT_CONCURRENCY);
  let deleted = 0;
  for await (const page of deps.logContainer.listBlobsFlat().byPage({ maxPageSize: 1000 })) {
    const runIds = page.segment.blobItems
      .filter((blob) => blob.properties.lastModified < cutoff)
      .map((blob) => ({ blob: blob.name, runId: blob.name.split('/')[0]! }))
      .filter(
        ({ blob, runId }) =>
          parseRunId(deps.runIdPrefix, runId) !== null && deps.logs.blob(runId).name === blob,
      )
      .map(({ runId }) => runId);
    await Promise.all(
      runIds.map((runId) =>
        limit(async () => {
          const orphan = await attempt(tally, 'record', runId, async () => !(await deps.store.find(runId)));
          if (!orphan) return;
          const gone = await attempt(tally, 'log', runId, async () => {
            await deps.logs.delete(runId);
            return true;
          });
          if (gone) deleted++;
        }),
      ),
    );
  }
  return deleted;
}
