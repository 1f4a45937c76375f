import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Executor } from '../../src/executors/executor';
import { LocalExecutor } from '../../src/executors/local/local-executor';
import { createRefit } from '../../src/refit';
import type { Run, RunSecrets } from '../../src/runs/run';
import { RunStore } from '../../src/runs/run-store';
import { newQuickBuildRun, parseRunRequest } from '../../src/runs/schedule-run';
import { busyboxBase, dockerBuild, registry, stackConfig, uploadContext, writeContext } from '../support/api';

// A Refit in this process whose executor is the real LocalExecutor (buildah), with the cancel placed exactly where
// the race puts it: after dispatch claimed the run (Queued → Started), before the executor starts it.
describe('RunService', () => {
  describe('dispatch', () => {
    it('never builds a run canceled between its claim and its start', async () => {
      // The stack's registries.conf: buildah pulls the base from the stack's plain-HTTP registry.
      const refit = createRefit(
        stackConfig({
          REFIT_CONTAINERS_REGISTRIES_CONF: join(process.env.REFIT_TEST_DATA_DIR!, 'registries.conf'),
          REFIT_WORK_DIR: mkdtempSync(join(tmpdir(), 'refit-dispatch-cancel-')),
        }),
      );
      const real = refit.executor as LocalExecutor;
      let canceledAt: string | undefined;
      const cancelFirst: Executor = {
        start: async (run: Run, secrets: RunSecrets) => {
          canceledAt = (await refit.runs.get(run.runId)).status;
          await refit.runs.cancel(run.runId);
          await real.start(run, secrets);
        },
        cancel: (runId) => real.cancel(runId),
        close: () => real.close(),
      };
      Object.defineProperty(refit, 'executor', { get: () => cancelFirst });
      const image = `${registry()}/dispatch-cancel/${randomUUID().slice(0, 8)}:1`;
      const source = await uploadContext(
        writeContext({ Dockerfile: `FROM ${busyboxBase()}\nRUN echo built > /built.txt\n` }),
      );
      const runId = await refit.runs.nextRunId();
      const run = newQuickBuildRun(parseRunRequest(dockerBuild(source, { imageNames: [image] })), {
        runId,
        now: new Date(),
        homeRegistry: refit.config.homeRegistry,
        secretKey: refit.config.secretKey,
      });
      // Stored without a queue message: this process dispatches it, not the stack.
      await new RunStore(refit.storage, refit.config.runIdPrefix).create(run);

      await refit.runs.dispatch({ runId });
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
async function waitForCompleteLog(refit: ReturnType<typeof createRefit>, runId: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const props = await refit.logs
      .blob(runId)
      .getProperties()
      .catch(() => undefined);
    if (props?.metadata?.complete) {
      return (await refit.logs.blob(runId).downloadToBuffer()).toString('utf8');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the log of ${runId} was never completed`);
}
