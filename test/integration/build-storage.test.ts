import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRefit } from '../../src/refit';
import { busyboxBase, stackConfig, until } from '../support/api';
import { isFinished, startQuickBuild, waitForRecorded } from '../support/in-process';
import { leftWorkingContainers } from '../support/stack';

// A Refit in this process with a buildah storage of its own, so that what its builds leave can be seen apart from
// the test stack's (other files build there at the same time).
describe('LocalExecutor', () => {
  describe('a build', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'refit-build-storage-'));
    const workDir = join(dataDir, 'work');
    const refit = createRefit(
      stackConfig({
        REFIT_BUILDAH_STORAGE: join(dataDir, 'buildah'),
        REFIT_WORK_DIR: workDir,
        REFIT_CONTAINERS_REGISTRIES_CONF: join(process.env.REFIT_TEST_DATA_DIR!, 'registries.conf'),
      }),
    );
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

    it.each([
      ['only a FROM (buildah 1.28 leaves the working container of such a build)', ''],
      ['a FROM and a RUN', 'RUN echo built > /built.txt\n'],
      ['a FROM-only target stage', 'RUN true\nFROM scratch AS other\n'],
    ])('leaves no working container in the storage: %s', async (_name, rest) => {
      const runId = await startQuickBuild(
        refit,
        { Dockerfile: `FROM ${busyboxBase()} AS app\n${rest}` },
        {
          imageNames: [`leftovers/app:${Date.now()}`],
          ...(rest.includes('AS other') ? { target: 'app' } : {}),
        },
      );
      const run = await waitForRecorded(refit, runId, isFinished);
      expect({ status: run.status, error: run.runErrorMessage }).toEqual({
        status: 'Succeeded',
        error: undefined,
      });
      // The run's housekeeping ends with its work folder's removal.
      await until('the run to clean up', async () =>
        readdirSync(workDir).some((e) => e.startsWith(`${runId}-`)) ? undefined : true,
      );
      expect(leftWorkingContainers(dataDir)).toEqual([]);
    });
  });
});
