import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AciExecutor } from '../../src/executors/aci/aci-executor';
import { aciClient } from '../../src/executors/aci/aci-client';
import { Admission } from '../../src/executors/aci/admission';
import { loadConfig } from '../../src/config';
import { createRefit, type Refit } from '../../src/refit';
import type { Run } from '../../src/runs/run';
import { RunStore } from '../../src/runs/run-store';
import { newQuickBuildRun, parseRunRequest } from '../../src/runs/schedule-run';
import { ensureStorage, names } from '../../src/storage/storage';
import { registry, untilTrue } from '../support/api';
import { startAzurite, type RunningAzurite } from '../support/azurite';
import { validateAciTraffic } from '../support/aci-traffic';
import { FakeAci } from '../support/fake-aci';
import { testPort } from '../support/private-registry';

const SUB = '00000000-0000-0000-0000-0000000000a2';
const RG = 'rg-refit-scenarios';
const DIGEST = `sha256:${'cd'.repeat(32)}`;
const credential = {
  getToken: async () => ({ token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3600e3 }),
};

/**
 * The aci executor's scenarios, driven step by step: a Refit on an Azurite of its own with no host (the test calls
 * dispatch, complete and reconcile as the queue and timer triggers would), and a fake ARM whose groups are not played:
 * the test moves each container group through its states with the fake's controls.
 */
describe('AciExecutor scenarios', () => {
  const root = mkdtempSync(join(tmpdir(), 'refit-aci-scenarios-'));
  const fake = new FakeAci();
  let azurite: RunningAzurite;
  let r: Refit;
  let store: RunStore;
  let executor: AciExecutor;

  const config = (azuriteConnection: string, env: Record<string, string> = {}) =>
    loadConfig({
      REFIT_EXECUTOR: 'aci',
      REFIT_STORAGE: azuriteConnection,
      REFIT_REGISTRY: registry(),
      REFIT_SECRET_KEY: readFileSync(join(process.env.REFIT_TEST_DATA_DIR!, 'secret.key'), 'utf8').trim(),
      REFIT_WORK_DIR: join(root, 'work'),
      REFIT_ACI_SUBSCRIPTION_ID: SUB,
      REFIT_ACI_RESOURCE_GROUP: RG,
      REFIT_ACI_LOCATION: 'westeurope',
      REFIT_ACI_IDENTITY_ID: `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-builder`,
      REFIT_ACI_IDENTITY_CLIENT_ID: '00000000-0000-0000-0000-0000000000c2',
      // A budget that refills in a blink, so that a test's pause (429) does not hold up the next test's create.
      REFIT_ACI_CREATES_PER_HOUR: '360000',
      ...env,
    });

  beforeAll(async () => {
    azurite = await startAzurite(join(root, 'azurite'), testPort(610));
    r = createRefit(config(azurite.connectionString), { azure: { httpClient: fake, credential } });
    await ensureStorage(r.storage);
    store = new RunStore(r.storage, r.config.runIdPrefix);
    executor = r.executor as AciExecutor;
  });
  afterAll(async () => {
    await fake.stop();
    await azurite.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** Stores a Queued quick build (its source is never fetched: the groups are not played). */
  async function queued(overrides: Record<string, unknown> = {}): Promise<string> {
    const request = parseRunRequest({
      type: 'DockerBuildRequest',
      sourceLocation: 'source/20261129/context.tar.gz',
      dockerFilePath: 'Dockerfile',
      imageNames: [`${registry()}/scenario/app:{{.Run.ID}}`],
      platform: { os: 'Linux', architecture: 'amd64' },
      ...overrides,
    });
    const runId = await r.runs.nextRunId();
    await store.create(
      newQuickBuildRun(request, {
        runId,
        now: new Date(),
        homeRegistry: r.config.homeRegistry,
        secretKey: r.config.secretKey,
      }),
    );
    return runId;
  }

  /** A run dispatched: Queued → Started → its group created → Running. */
  async function running(overrides: Record<string, unknown> = {}): Promise<string> {
    const runId = await queued(overrides);
    await r.runs.dispatch({ runId });
    expect((await r.runs.get(runId)).status).toBe('Running');
    return runId;
  }

  const group = (runId: string) => fake.groups().find((g) => g.name === executor.groupName(runId));

  /** The completion token the run's reporter was given (a secure value of its group, as the fake recorded it). */
  function tokenOf(runId: string): string {
    const put = fake.requests.find(
      (p) =>
        p.request.method === 'PUT' &&
        p.request.url.includes(`/containerGroups/${executor.groupName(runId)}?`),
    );
    const body = put?.request.body as {
      properties: {
        containers: {
          name: string;
          properties: { environmentVariables: { name: string; secureValue?: string }[] };
        }[];
      };
    };
    const reporter = body.properties.containers.find((c) => c.name === 'report');
    return reporter!.properties.environmentVariables.find((e) => e.name === 'REFIT_REPORT_TOKEN')!
      .secureValue!;
  }

  /** A report as the run's reporter sends it. */
  const report = (runId: string, fields: Record<string, unknown> = {}) => ({
    token: tokenOf(runId),
    exitCode: 0,
    images: [],
    restarted: false,
    error: '',
    dockerfile: '',
    ...fields,
  });

  /** An executor of `r` with a clock and an admission of the test's own (the region's budget by default). */
  function executorWith(
    now: () => Date,
    admission = new Admission(r.storage.table(names.tables.aciAdmission), {
      ...r.config.aciAdmission,
      scope: 'westeurope',
    }),
  ): AciExecutor {
    return new AciExecutor(r.config, {
      client: aciClient(r.config, { httpClient: fake, credential }),
      storage: r.storage,
      logs: r.logs,
      callbacks: {
        running: (id) => r.runs.running(id),
        finished: async () => undefined,
        requeue: async () => false,
      },
      registry: r.registry,
      admission,
      sources: r.sources,
      now,
    });
  }

  /** The run's executor as it would be `offsetMs` from now (the grace after a group ends is five minutes). */
  const executorAt = (offsetMs: number): AciExecutor => executorWith(() => new Date(Date.now() + offsetMs));

  /** Runs `body` with `other` as `r`'s executor. */
  async function withExecutor(other: AciExecutor, body: () => Promise<void>): Promise<void> {
    Object.defineProperty(r, 'executor', { get: () => other, configurable: true });
    try {
      await body();
    } finally {
      Object.defineProperty(r, 'executor', { get: () => executor, configurable: true });
    }
  }
  const get = (runId: string): Promise<Run> => r.runs.get(runId);
  const log = async (runId: string) => (await r.logs.blob(runId).downloadToBuffer()).toString('utf8');

  /** Waits (on the fake's recorded state) until the group is provisioned and its containers run. */
  async function provisioned(runId: string): Promise<void> {
    for (let i = 0; i < 200 && group(runId)?.state !== 'Running'; i++)
      await new Promise((res) => setTimeout(res, 10));
    expect(group(runId)?.state).toBe('Running');
  }

  describe('start', () => {
    it('creates one run-once group per run, in the configured resource group, and moves the run to Running', async () => {
      const runId = await running();
      expect(group(runId)).toMatchObject({ resourceGroup: RG, provisioningState: expect.any(String) });
      const mine = fake.requests.filter((p) => p.request.url.includes(executor.groupName(runId)));
      const put = mine.find((p) => p.request.method === 'PUT');
      expect(put?.request.body).toMatchObject({ properties: { restartPolicy: 'Never', osType: 'Linux' } });
      // No poll per run: one PUT, and no GET of the group (the group reports its own end).
      expect(mine.map((p) => p.request.method)).toEqual(['PUT']);
    });

    it('leaves the run Queued with the reason when ARM answers 429, and starts it when its message comes back', async () => {
      fake.throttleCreates(1, 1);
      const runId = await queued();
      await r.runs.dispatch({ runId });
      expect(await get(runId)).toMatchObject({
        status: 'Queued',
        statusDetail: expect.stringMatching(/^Azure throttled container group creates: retrying in 1 s/),
      });
      expect(group(runId)).toBeUndefined();
      // Creates are paused for the Retry-After; the message returns after it (and again while still paused).
      await untilTrue('the run to start', async () => {
        await r.runs.dispatch({ runId });
        return (await get(runId)).status === 'Running';
      });
      expect((await get(runId)).statusDetail).toBeUndefined();
    });
  });

  describe('complete', () => {
    it("records Failed with the builder's reason when kaniko exited non-zero", async () => {
      const runId = await runningAfterPause();
      await r.runs.complete({
        runId,
        report: report(runId, { exitCode: 1 }),
      });
      expect(await get(runId)).toMatchObject({
        status: 'Failed',
        runErrorMessage: 'the build failed with exit code 1',
      });
      expect(group(runId)).toBeUndefined();
      expect(await log(runId)).toContain(`Run ID: ${runId} failed: the build failed with exit code 1`);
    });

    it('records Succeeded with the images the builder pushed, and the cost', async () => {
      const runId = await runningAfterPause();
      const image = `${registry()}/scenario/app:${runId}@${DIGEST}`;
      await r.runs.complete({
        runId,
        report: report(runId, { images: [image] }),
      });
      expect(await get(runId)).toMatchObject({
        status: 'Succeeded',
        outputImages: [{ registry: registry(), repository: 'scenario/app', tag: runId, digest: DIGEST }],
        costEstimate: { currency: 'USD', cores: 2.25 },
      });
    });

    it('fails a run whose build container the platform restarted (restartCount 1), whatever its report says', async () => {
      const runId = await runningAfterPause();
      await provisioned(runId);
      fake.restartOnce(executor.groupName(runId), 'build');
      fake.terminate(executor.groupName(runId), 'build', 1);
      expect(group(runId)?.containers.find((c) => c.name === 'build')?.restartCount).toBe(1);
      await r.runs.complete({
        runId,
        report: report(runId),
      });
      expect(await get(runId)).toMatchObject({
        status: 'Error',
        runErrorMessage: expect.stringMatching(/restarted the build container \(restartCount 1\)/),
      });
    });

    it('ends the run Error, naming the field, when the report is not one the builder writes', async () => {
      const runId = await runningAfterPause();
      await r.runs.complete({ runId, report: { ...report(runId), exitCode: 'zero' } });
      expect(await get(runId)).toMatchObject({
        status: 'Error',
        runErrorMessage: expect.stringMatching(/^the build's report could not be read: exitCode/),
      });
    });
  });

  describe('complete, a forged report', () => {
    it("drops a report that lacks the run's completion token (a build posting for another run): the run goes on", async () => {
      const victim = await runningAfterPause();
      const attacker = await runningAfterPause();
      await r.runs.complete({ runId: victim, report: { ...report(attacker), images: [] } });
      await r.runs.complete({ runId: victim, report: { ...report(victim), token: undefined } });
      expect((await get(victim)).status).toBe('Running');
      expect(group(victim)).toBeDefined();
      await r.runs.complete({ runId: victim, report: report(victim, { exitCode: 2 }) });
      expect((await get(victim)).status).toBe('Failed');
    });
  });

  describe('reconcile', () => {
    it("ends Error a run whose group failed to provision, with ACI's event message, and deletes the group", async () => {
      fake.failProvisioning(
        'next',
        'Failed to pull image "ghcr.io/osscontainertools/kaniko:v1.28.3-debug": unauthorized',
      );
      const runId = await runningAfterPause();
      await until(() => group(runId)?.provisioningState === 'Failed');
      await r.runs.reconcile({ startup: false });
      expect(await get(runId)).toMatchObject({
        status: 'Error',
        runErrorMessage: expect.stringContaining('could not be provisioned: Failed to pull image'),
      });
      expect(group(runId)).toBeUndefined();
    });

    it('waits five minutes for the report of a group that ended, then ends the run Error (a lost completion message)', async () => {
      const runId = await runningAfterPause();
      await provisioned(runId);
      fake.terminate(executor.groupName(runId), 'build', 0);
      fake.terminate(executor.groupName(runId), 'report', 3);
      await r.runs.reconcile({ startup: false });
      expect((await get(runId)).status).toBe('Running');
      await withExecutor(executorAt(6 * 60_000), () =>
        r.runs.reconcile({ startup: false }).then(() => undefined),
      );
      expect(await get(runId)).toMatchObject({
        status: 'Error',
        runErrorMessage: expect.stringMatching(
          /ended \(Failed\) without its report arriving \(the reporter exited 3\)/,
        ),
      });
      expect(await log(runId)).toContain(`Run ID: ${runId} failed:`);
      expect(group(runId)).toBeUndefined();
    });

    it('leaves the group of a run that started after the sweep listed the active runs', async () => {
      const runId = await runningAfterPause();
      await executor.reconcile([], {
        startup: false,
        stillActive: async () => true,
        secretsOf: () => ({ arguments: {} }),
      });
      expect(group(runId)).toBeDefined();
      expect((await get(runId)).status).toBe('Running');
    });

    it('ends Error a run whose group someone else deleted', async () => {
      const runId = await runningAfterPause();
      fake.deleteBehindTheBack(executor.groupName(runId));
      await r.runs.reconcile({ startup: false });
      expect(await get(runId)).toMatchObject({
        status: 'Error',
        runErrorMessage: "the run's container group is gone: it was deleted outside Refit",
      });
    });

    it('ends a run past its timeout Timeout and deletes its group', async () => {
      const runId = await runningAfterPause({ timeout: 300 });
      await store.update(runId, (run) => ({
        ...run,
        startTime: new Date(Date.now() - 301_000).toISOString(),
      }));
      await r.runs.reconcile({ startup: false });
      expect(await get(runId)).toMatchObject({
        status: 'Timeout',
        runErrorMessage: 'the run timed out after 300 seconds',
      });
      expect(group(runId)).toBeUndefined();
    });

    it('leaves a running group alone, and deletes a group whose run is not active', async () => {
      const alive = await runningAfterPause();
      const done = await runningAfterPause();
      // The run ended, but its group's delete never happened (a host died between the two).
      await store.update(done, (run) => ({
        ...run,
        status: 'Succeeded',
        finishTime: new Date().toISOString(),
      }));
      await r.runs.reconcile({ startup: false });
      expect((await get(alive)).status).toBe('Running');
      expect(group(alive)).toBeDefined();
      expect(group(done)).toBeUndefined();
    });
  });

  describe('cancel', () => {
    it('deletes the group, and the run ends Canceled with its log closed', async () => {
      const runId = await runningAfterPause();
      await r.runs.cancel(runId);
      expect((await get(runId)).status).toBe('Canceled');
      expect(group(runId)).toBeUndefined();
      expect((await r.logs.blob(runId).getProperties()).metadata).toEqual({ complete: 'canceled' });
    });
  });

  describe('its traffic', () => {
    it('holds to the ACI OpenAPI spec', async () => {
      expect(await validateAciTraffic(fake.requests)).toEqual([]);
    });
  });

  // Last but one: ACI's quota error pauses creates in the region for a minute (it gives no Retry-After).
  describe('a quota error', () => {
    it('leaves the run Queued, naming the quota, when ACI refuses the create for its quota', async () => {
      fake.quotaExceeded(1);
      const runId = await queued();
      await r.runs.dispatch({ runId });
      expect(await get(runId)).toMatchObject({
        status: 'Queued',
        statusDetail: expect.stringMatching(
          /container instance quota of westeurope is used up.*StandardCores/,
        ),
      });
    });
  });

  describe('admission', () => {
    it('with 300 runs queued at once and a budget of 100 creates, starts at most 100 at a time, keeps the rest Queued with the reason, and finishes every one exactly once', async () => {
      let clock = Date.now();
      const admission = new Admission(r.storage.table(names.tables.aciAdmission), {
        maxCores: 10_000,
        createsPerHour: 100,
        scope: 'admission-test',
        now: () => clock,
      });
      const metered = executorWith(() => new Date(clock), admission);
      Object.defineProperty(r, 'executor', { get: () => metered, configurable: true });
      const runIds = await Promise.all(Array.from({ length: 300 }, () => queued()));
      const creates = () => fake.requests.filter((p) => p.request.method === 'PUT').length;
      const before = creates();
      let waiting = runIds;
      const rounds: number[] = [];
      while (waiting.length > 0) {
        await Promise.all(waiting.map((runId) => r.runs.dispatch({ runId })));
        const runs = await Promise.all(waiting.map(get));
        const started = runs.filter((run) => run.status === 'Running');
        rounds.push(started.length);
        for (const run of started)
          await r.runs.complete({
            runId: run.runId,
            report: report(run.runId),
          });
        const deferred = runs.filter((run) => run.status === 'Queued');
        // Every run was either started or told to wait for the budget: none failed, none was left half-claimed.
        expect(runs.filter((run) => run.status !== 'Running' && run.status !== 'Queued')).toEqual([]);
        for (const run of deferred)
          expect(run.statusDetail).toMatch(/^waiting for the container-create budget/);
        waiting = deferred.map((run) => run.runId);
        // The messages come back after their delays: the clock moves by the longest.
        clock += (3600_000 / 100) * Math.max(1, waiting.length);
        expect(rounds.length).toBeLessThan(10);
      }
      // Never more creates at once than the budget holds; every run created exactly once, and all finished.
      expect(Math.max(...rounds)).toBeLessThanOrEqual(100);
      expect(rounds.reduce((a, b) => a + b, 0)).toBe(300);
      expect(creates() - before).toBe(300);
      const finished = await Promise.all(runIds.map(get));
      expect(finished.every((run) => run.status === 'Succeeded')).toBe(true);
    });
  });

  /** A running run, once a pause an earlier test left (429, quota) has passed. */
  async function runningAfterPause(overrides: Record<string, unknown> = {}): Promise<string> {
    const runId = await queued(overrides);
    for (let i = 0; i < 100; i++) {
      await r.runs.dispatch({ runId });
      if ((await get(runId)).status === 'Running') return runId;
      await new Promise((res) => setTimeout(res, 200));
    }
    throw new Error(`run ${runId} did not start: ${(await get(runId)).statusDetail}`);
  }

  async function until(done: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !done(); i++) await new Promise((res) => setTimeout(res, 10));
    expect(done()).toBe(true);
  }
});
