import { randomUUID } from 'node:crypto';
import type { Executor } from '../../src/executors/executor';
import { LocalExecutor } from '../../src/executors/local/local-executor';
import type { Run, RunSecrets } from '../../src/runs/run';
import type { Refit } from '../../src/refit';
import { busyboxBase, registry, until } from '../support/api';
import { inProcessRefit, startQuickBuild } from '../support/in-process';

// A Refit in this process whose executor is the real LocalExecutor (buildah), with the cancel placed exactly where
// the race puts it: after dispatch claimed the run (Queued → Started), before the executor starts it.
describe('RunService', () => {
  describe('dispatch', () => {
    it('never builds a run canceled between its claim and its start', async () => {
      const refit = inProcessRefit();
      const real = refit.executor as LocalExecutor;
      let canceledAt: string | undefined;
      const cancelFirst: Executor = {
        start: async (run: Run, secrets: RunSecrets) => {
          canceledAt = (await refit.runs.get(run.runId)).status;
          await refit.runs.cancel(run.runId);
          return real.start(run, secrets);
        },
        cancel: (runId) => real.cancel(runId),
        reconcile: (active, options) => real.reconcile(active, options),
        outcome: (run, secrets, report) => real.outcome(run, secrets, report),
        release: (runId) => real.release(runId),
        probe: () => real.probe(),
        close: () => real.close(),
      };
      Object.defineProperty(refit, 'executor', { get: () => cancelFirst });
      const image = `${registry()}/dispatch-cancel/${randomUUID().slice(0, 8)}:1`;
      // Stored without a queue message and dispatched by this process, not the stack.
      const runId = await startQuickBuild(
        refit,
        { Dockerfile: `FROM ${busyboxBase()}\nRUN echo built > /built.txt\n` },
        { imageNames: [image] },
      );
      const log = await waitForCompleteLog(refit, runId);
      await real.close();

      expect(canceledAt).toBe('Started');
      expect(await refit.runs.get(runId)).toMatchObject({ status: 'Canceled', outputImages: [] });
      expect(log).toMatch(/was canceled/);
      expect(log).not.toMatch(/STEP|COMMIT/);
      const [repository, tag] = image.slice(registry().length + 1).split(':');
      const manifest = await fetch(`http://${registry()}/v2/${repository}/manifests/${tag}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(manifest.status).toBe(404);
    });
  });
});

/** The run's log once it is marked complete (the executor marks it after the run's final status is written). */
function waitForCompleteLog(refit: Refit, runId: string): Promise<string> {
  const blob = refit.logs.blob(runId);
  return until(
    `the log of ${runId} marked complete`,
    async () => {
      const props = await blob.getProperties().catch(() => undefined);
      return props?.metadata?.complete ? (await blob.downloadToBuffer()).toString('utf8') : undefined;
    },
    60000,
  );
}
