// Runs_List's `$filter` on the test stack's Azurite: what the table answers and what is checked on each run.
import { randomUUID } from 'node:crypto';
import { createRefit } from '../../src/refit';
import type { Run } from '../../src/runs/run';
import { RunStore } from '../../src/runs/run-store';
import { newQuickBuildRun, parseRunRequest } from '../../src/runs/schedule-run';
import { dockerBuild, stackConfig } from '../support/api';

describe('runs/run-store', () => {
  const r = createRefit(stackConfig());
  const store = new RunStore(r.storage, r.config.runIdPrefix);
  const created: string[] = [];
  afterAll(async () => {
    for (const runId of created) {
      const found = await store.find(runId);
      if (found) await store.deleteIfUnchanged(runId, found.etag);
    }
  });

  /** A finished run that pushed `repository:tag`, created at `createdAt`. */
  async function recordRun(repository: string, tag: string, createdAt: Date): Promise<string> {
    const runId = await store.nextRunId();
    created.push(runId);
    const queued = newQuickBuildRun(parseRunRequest(dockerBuild(`source/20010101/${randomUUID()}.tar.gz`)), {
      runId,
      now: createdAt,
      homeRegistry: r.config.homeRegistry,
      secretKey: r.config.secretKey,
    });
    const run: Run = {
      ...queued,
      status: 'Succeeded',
      startTime: createdAt.toISOString(),
      finishTime: new Date(createdAt.getTime() + 1000).toISOString(),
      outputImages: [
        {
          registry: r.config.homeRegistry,
          repository,
          tag,
          digest: `sha256:${'a'.repeat(63)}${created.length}`,
        },
      ],
    };
    await store.create(run);
    return runId;
  }

  describe('list', () => {
    it('pages a contains(outputImageManifests) filter without skipping or repeating a run, and combines it with times and ne', async () => {
      const repo = `filter-${randomUUID().slice(0, 8)}`;
      const t0 = Date.now();
      const older = await recordRun(repo, 'v1', new Date(t0));
      const other = await recordRun(repo, 'v10', new Date(t0 + 1000));
      const newer = await recordRun(repo, 'v1', new Date(t0 + 2000));
      const filter = `contains(outputImageManifests, '${repo}:v1')`;

      const first = await store.list({ filter, top: 1 });
      expect(first.runs.map((x) => x.runId)).toEqual([newer]);
      expect(first.continuationToken).toBeDefined();
      const second = await store.list({ filter, top: 1, continuationToken: first.continuationToken! });
      expect(second.runs.map((x) => x.runId)).toEqual([older]);

      // Older runs of other tests may follow (a token then), never these two again.
      const rest = second.continuationToken
        ? await store.list({ filter, top: 10, continuationToken: second.continuationToken })
        : { runs: [] };
      expect(rest.runs.map((x) => x.runId)).toEqual([]);
      await expect(
        store.list({ filter, top: 1, continuationToken: (await store.list({ top: 1 })).continuationToken! }),
      ).rejects.toThrow('is not a token from a nextLink of this $filter');

      const all = await store.list({ filter, top: 10 });
      expect(all.runs.map((x) => x.runId)).toEqual([newer, older]);

      const byDigest = await store.list({
        filter: `contains(outputImageManifests, '${r.config.homeRegistry}/${repo}@${all.runs[1]!.outputImages[0]!.digest}')`,
        top: 10,
      });
      expect(byDigest.runs.map((x) => x.runId)).toEqual([older]);

      const since = new Date(t0 + 1000).toISOString();
      const recent = await store.list({ filter: `${filter} and createTime ge '${since}'`, top: 10 });
      expect(recent.runs.map((x) => x.runId)).toEqual([newer]);
      const notNewer = await store.list({ filter: `${filter} and runId ne '${newer}'`, top: 10 });
      expect(notNewer.runs.map((x) => x.runId)).toEqual([older]);
      expect(other).not.toBe(newer);
    });

    it('answers time comparisons in the table', async () => {
      const repo = `filter-${randomUUID().slice(0, 8)}`;
      const at = new Date(Date.UTC(2001, 0, 2, 3, 4, 5));
      const runId = await recordRun(repo, 'v1', at);
      const page = await store.list({
        filter: `createTime eq ${at.toISOString().replace('.000', '')} and finishTime gt datetime'${at.toISOString()}'`,
        top: 10,
      });
      expect(page.runs.map((x) => x.runId)).toEqual([runId]);
    });
  });
});
