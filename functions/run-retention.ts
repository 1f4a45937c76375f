import type { InvocationContext, Timer } from '@azure/functions';
import { refit } from '../src/refit';
import { purgeExpiredRuns } from '../src/runs/retention';
import { RunStore } from '../src/runs/run-store';
import { names } from '../src/storage/storage';

/** Daily, and once when the host starts: purges finished runs past REFIT_RETENTION_DAYS that are not archived. */
export async function runRetention(_timer: Timer, _context: InvocationContext): Promise<void> {
  const r = await refit();
  await purgeExpiredRuns(new Date(), {
    store: new RunStore(r.storage, r.config.runIdPrefix),
    logs: r.logs,
    logContainer: r.storage.container(names.containers.logs),
    runIdPrefix: r.config.runIdPrefix,
    days: r.config.retentionDays,
  });
}
