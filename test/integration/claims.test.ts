import { randomUUID } from 'node:crypto';
import { createRefit, imageUpdateDeps, type Refit } from '../../src/refit';
import { CLAIM_LEASE_MS, Claims } from '../../src/storage/claims';
import { names } from '../../src/storage/storage';
import { StorageFaults } from '../../src/storage/storage-faults';
import { handleImagePush, type ImagePush } from '../../src/triggers/image-update';
import { handleSourceEvent, type SourceEvent } from '../../src/triggers/source-event';
import { evaluateTimers } from '../../src/triggers/timers';
import type { Run } from '../../src/runs/run';
import { registry, stackConfig } from '../support/api';

// Refits in this process on the test stack's Azurite: one whose storage requests can be made to fail (it makes the
// calls under test; with faults wired the SDKs do not retry, so everything else goes through `plain`), and one whose
// clock runs two leases ahead (it sees every pending claim of the others as left by a holder that died).
const faults = new StorageFaults();
const refit = createRefit(stackConfig(), { faults });
const plain = createRefit(stackConfig());
const later = createRefit(stackConfig(), { claims: { now: () => Date.now() + 2 * CLAIM_LEASE_MS } });
afterEach(() => faults.clear());

/** Nothing answers here: runs of these tasks end Error at once on the stack, and their creation scans nothing. */
const UNREACHABLE = 'https://127.0.0.1:9/unreachable.git';
const QUEUE_SEND = { method: 'POST', path: /\/runs\/messages/, times: 1 } as const;
const RUN_INSERT = { method: 'POST', path: /\/runs(\?|$)/, times: 1 } as const;

const uniqueName = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

async function runsOf(task: string): Promise<Run[]> {
  return (await plain.runs.list({ filter: `taskName eq '${task}'`, top: 100 })).runs;
}

/** The runs that were queued (a run whose queue send failed ends Error, never left Queued). */
async function queuedRunsOf(task: string): Promise<Run[]> {
  const runs = await runsOf(task);
  for (const run of runs.filter((r) => r.runErrorMessage?.startsWith('the run could not be queued'))) {
    expect(run.status).toBe('Error');
  }
  return runs.filter((r) => !r.runErrorMessage?.startsWith('the run could not be queued'));
}

describe('Claims', () => {
  const claims = (now?: () => number): Claims =>
    new Claims(plain.storage.table(names.tables.dedupe), now ? { now } : {});

  describe('take', () => {
    it('gives a key to one caller; once confirmed it is done for every later caller', async () => {
      const key = randomUUID();
      const first = await claims().take('claims-test', key);
      expect(first.status).toBe('taken');
      expect((await claims().take('claims-test', key)).status).toBe('held');
      if (first.status === 'taken') await first.claim.confirm({ runId: 'r1' });
      const again = await claims(() => Date.now() + 10 * CLAIM_LEASE_MS).take('claims-test', key);
      expect(again).toMatchObject({
        status: 'done',
        record: { state: 'confirmed', detail: { runId: 'r1' } },
      });
    });

    it('gives a released key to the next caller', async () => {
      const key = randomUUID();
      const first = await claims().take('claims-test', key);
      if (first.status !== 'taken') throw new Error(`not taken: ${first.status}`);
      await first.claim.release();
      expect((await claims().take('claims-test', key)).status).toBe('taken');
    });

    it('lets exactly one of two callers take over a pending claim whose holder died (its lease ended)', async () => {
      const key = randomUUID();
      expect((await claims().take('claims-test', key)).status).toBe('taken');
      const afterLease = (): number => Date.now() + 2 * CLAIM_LEASE_MS;

      const takers = await Promise.all([
        claims(afterLease).take('claims-test', key),
        claims(afterLease).take('claims-test', key),
      ]);

      expect(takers.map((t) => t.status).sort()).toEqual(['held', 'taken']);
    });

    it('claims a burst of keys at once, each caller getting its own claim', async () => {
      const keys = Array.from({ length: 120 }, () => randomUUID());
      const c = claims();
      const taken = await Promise.all(keys.map((key) => c.take('claims-burst', key)));
      expect(taken.every((t) => t.status === 'taken')).toBe(true);
      await Promise.all(taken.map((t) => (t.status === 'taken' ? t.claim.confirm() : Promise.resolve())));
      const again = await Promise.all(keys.map((key) => c.take('claims-burst', key)));
      expect(again.every((t) => t.status === 'done')).toBe(true);
    });
  });

  describe('once', () => {
    it('releases the claim when the act fails, so that the retry acts', async () => {
      const key = randomUUID();
      const c = claims();
      await expect(c.once('claims-test', key, () => Promise.reject(new Error('queue down')))).rejects.toThrow(
        'queue down',
      );
      await expect(c.once('claims-test', key, () => Promise.resolve(42))).resolves.toEqual({
        status: 'acted',
        value: 42,
      });
      expect((await c.once('claims-test', key, () => Promise.resolve(43))).status).toBe('done');
    });
  });
});

describe('handleImagePush', () => {
  const OLD = `sha256:${'a'.repeat(64)}`;
  const NEW = `sha256:${'b'.repeat(64)}`;

  /** A task built FROM a base image (recorded in the dependency index at OLD), and a push of the base at NEW. */
  async function dependentTask(): Promise<{ task: string; push: ImagePush }> {
    const task = uniqueName('claims-img');
    await plain.tasks.create(task, {
      properties: {
        step: { type: 'Docker', contextPath: UNREACHABLE, imageNames: [`claims/${task}:{{.Run.ID}}`] },
        trigger: { baseImageTrigger: { name: 'base', baseImageTriggerType: 'All' } },
      },
    });
    const base = { registry: registry(), repository: `claims/base-${task}`, tag: '1' };
    await plain.dependencyIndex.record(
      task,
      [{ type: 'RunTime', ...base, digest: OLD, platformDigest: null }],
      [],
    );
    const push: ImagePush = {
      source: 'claims-test',
      eventId: randomUUID(),
      ...base,
      digest: NEW,
      timestamp: new Date().toISOString(),
    };
    return { task, push };
  }

  const deps = imageUpdateDeps;

  it.each([
    ['the runs queue send', QUEUE_SEND],
    ['the runs table insert', RUN_INSERT],
  ])(
    'fails when %s fails after the claim, and the retry of the same push queues exactly one run',
    async (_what, fault) => {
      const { task, push } = await dependentTask();
      faults.inject(fault);

      await expect(handleImagePush(push, deps(refit))).rejects.toThrow(/injected storage fault/);
      expect(faults.injected).toBe(1);
      const retried = await handleImagePush(push, deps(refit));
      const again = await handleImagePush({ ...push, eventId: randomUUID() }, deps(refit));

      expect(retried?.decisions).toEqual([expect.objectContaining({ task, decision: 'triggered' })]);
      expect(again?.decisions).toEqual([
        expect.objectContaining({ task, decision: 'skipped', reason: `already triggered for ${NEW}` }),
      ]);
      const runs = await queuedRunsOf(task);
      expect(runs.map((r) => r.runId)).toEqual([retried!.decisions[0]!.runId]);
    },
  );

  it('takes over the claim of a holder that died before queueing the run', async () => {
    const { task, push } = await dependentTask();
    const image = refit.dependencyIndex.key(push);
    // The holder claimed the update, then died: its claim stays pending.
    const held = await refit.dedupe.take('image-update', `${task.toLowerCase()} ${image} ${NEW}`);
    expect(held.status).toBe('taken');

    // While its lease runs, a redelivery is told to come back later (the queue retries it) rather than dropped.
    await expect(handleImagePush(push, deps(refit))).rejects.toThrow(/is being handled/);
    const record = await handleImagePush(push, deps(later));

    expect(record?.decisions).toEqual([expect.objectContaining({ task, decision: 'triggered' })]);
    expect((await queuedRunsOf(task)).map((r) => r.runId)).toEqual([record!.decisions[0]!.runId]);
  });

  it('queues one run when two instances handle the same push at once', async () => {
    const { task, push } = await dependentTask();
    const other = createRefit(stackConfig());

    await Promise.allSettled([handleImagePush(push, deps(refit)), handleImagePush(push, deps(other))]);

    expect(await queuedRunsOf(task)).toHaveLength(1);
  });
});

describe('handleSourceEvent', () => {
  async function watchingTask(): Promise<{ task: string; event: SourceEvent }> {
    const task = uniqueName('claims-src');
    const repositoryUrl = `https://127.0.0.1:9/${task}.git`;
    await plain.tasks.create(task, {
      properties: {
        step: { type: 'Docker', contextPath: `${repositoryUrl}#main`, imageNames: [`claims/${task}:1`] },
        trigger: {
          sourceTriggers: [
            {
              name: 'src',
              sourceRepository: { sourceControlType: 'Github', repositoryUrl, branch: 'main' },
              sourceTriggerEvents: ['commit'],
            },
          ],
        },
      },
    });
    const event: SourceEvent = {
      source: 'github',
      provider: 'Github',
      deliveryId: randomUUID(),
      eventType: 'commit',
      repositoryUrl,
      branch: 'main',
      commitId: 'c'.repeat(40),
      cloneUrl: repositoryUrl,
      cloneBranch: 'main',
    };
    return { task, event };
  }

  const deps = (r: Refit): Parameters<typeof handleSourceEvent>[1] => ({
    tasks: r.tasks,
    dedupe: r.dedupe,
    decisions: r.decisions,
  });

  it.each([
    ['the runs queue send', QUEUE_SEND],
    ['the runs table insert', RUN_INSERT],
  ])(
    'fails when %s fails after the claim, and the redelivery queues exactly one run',
    async (_what, fault) => {
      const { task, event } = await watchingTask();
      faults.inject(fault);

      await expect(handleSourceEvent(event, deps(refit))).rejects.toThrow(/injected storage fault/);
      const redelivered = await handleSourceEvent(event, deps(refit));
      const again = await handleSourceEvent(event, deps(refit));

      expect(redelivered).toEqual([expect.objectContaining({ task, decision: 'triggered' })]);
      expect(again).toEqual([expect.objectContaining({ task, decision: 'skipped' })]);
      expect((await queuedRunsOf(task)).map((r) => r.runId)).toEqual([redelivered[0]!.runId]);
    },
  );

  it('answers a redelivery that arrives while the first delivery is queueing the run with how that ended', async () => {
    const { task, event } = await watchingTask();
    const first = await refit.dedupe.take('github', `${event.deliveryId} ${task.toLowerCase()}`);
    if (first.status !== 'taken')
      throw new Error(`the first delivery did not get the claim: ${first.status}`);

    // The redelivery finds the claim held, and waits (bounded) for the first delivery, which takes a second to
    // queue its run, to finish.
    const redelivery = handleSourceEvent(event, deps(plain));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await first.claim.confirm({ runId: 'the-first-delivery-run' });

    expect(await redelivery).toEqual([
      expect.objectContaining({
        task,
        decision: 'skipped',
        reason: expect.stringMatching(/already handled/),
      }),
    ]);
    expect(await queuedRunsOf(task)).toEqual([]);
  });

  it('takes over the claim of a holder that died, and queues one run for two deliveries at once', async () => {
    const { task, event } = await watchingTask();
    expect((await refit.dedupe.take('github', `${event.deliveryId} ${task.toLowerCase()}`)).status).toBe(
      'taken',
    );

    await expect(handleSourceEvent(event, deps(refit))).rejects.toThrow(/is being handled/);
    await Promise.allSettled([handleSourceEvent(event, deps(later)), handleSourceEvent(event, deps(later))]);

    expect(await queuedRunsOf(task)).toHaveLength(1);
  });
});

describe('evaluateTimers', () => {
  // A yearly occurrence three years ahead: only the fake clock reaches it, never the stack's own timer.
  const year = new Date().getUTCFullYear() + 3;
  const tick = new Date(Date.UTC(year, 5, 13, 12, 0, 30));
  const occurrence = `${year}-06-13T12:00:00.000Z`;

  async function timedTask(): Promise<string> {
    const task = uniqueName('claims-timer');
    await plain.tasks.create(task, {
      properties: {
        step: { type: 'Docker', contextPath: UNREACHABLE, imageNames: [`claims/${task}:1`] },
        trigger: { timerTriggers: [{ name: 'yearly', schedule: '0 0 12 13 6 *' }] },
      },
    });
    return task;
  }

  const deps = (r: Refit): Parameters<typeof evaluateTimers>[1] => ({
    tasks: r.tasks,
    dedupe: r.dedupe,
    decisions: r.decisions,
  });
  const triggered = (decisions: { task?: string; decision: string }[], task: string): unknown[] =>
    decisions.filter((d) => d.task === task && d.decision === 'triggered');

  it('fails the tick when queueing fails after the claim, and the next tick fires the occurrence once', async () => {
    const task = await timedTask();
    faults.inject(QUEUE_SEND);

    await expect(evaluateTimers(tick, deps(refit))).rejects.toThrow(/injected storage fault/);
    const next = await evaluateTimers(new Date(tick.getTime() + 5000), deps(refit));
    const after = await evaluateTimers(new Date(tick.getTime() + 10000), deps(refit));

    expect(triggered(next, task)).toHaveLength(1);
    expect(triggered(after, task)).toHaveLength(0);
    const runs = await queuedRunsOf(task);
    expect(runs.map((r) => r.timerTrigger?.scheduleOccurrence)).toEqual([occurrence]);
  });

  it('fires an occurrence whose holder died once its lease ended, exactly once for two instances', async () => {
    const task = await timedTask();
    const held = await refit.dedupe.take('timer', `${task}/yearly/${occurrence}`.toLowerCase());
    expect(held.status).toBe('taken');

    const during = await evaluateTimers(tick, deps(refit));
    const other = createRefit(stackConfig(), { claims: { now: () => Date.now() + 2 * CLAIM_LEASE_MS } });
    const [a, b] = await Promise.all([evaluateTimers(tick, deps(later)), evaluateTimers(tick, deps(other))]);

    expect(triggered(during, task)).toHaveLength(0);
    expect([...triggered(a, task), ...triggered(b, task)]).toHaveLength(1);
    expect(await queuedRunsOf(task)).toHaveLength(1);
  });
});
