import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import pLimit from 'p-limit';
import { createRefit } from '../../src/refit';
import { Admission, type AdmissionOptions } from '../../src/executors/aci/admission';
import { ValidationError } from '../../src/errors';
import { names } from '../../src/storage/storage';
import { StorageFaults } from '../../src/storage/storage-faults';
import { stackConfig } from '../support/api';

// The budget lives in the table the test stack created (ensureStorage), each test in a scope (region) of its own.
const refit = createRefit(stackConfig());
const table = refit.storage.table(names.tables.aciAdmission);
// The same table through clients whose requests can be made to fail (the SDK does not retry when faults are wired).
const faults = new StorageFaults();
const faultyTable = createRefit(stackConfig(), { faults }).storage.table(names.tables.aciAdmission);
afterEach(() => faults.clear());

/** A clock the test moves. */
class Clock {
  constructor(public ms = Date.UTC(2026, 10, 29, 12)) {}
  readonly now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

function admission(clock: Clock, options: AdmissionOptions & { scope: string }): Admission {
  return new Admission(table, { now: clock.now, ...options });
}

const newScope = (): string => `test-${randomUUID().slice(0, 8)}`;

/** The invariant everything rests on: the cores counted are the leases' cores, and never above the limit. */
async function expectConsistent(a: Admission): Promise<void> {
  const status = await a.status();
  expect(status.coresInUse).toBe(status.leases.reduce((sum, l) => sum + l.cores, 0));
  expect(status.coresInUse).toBeLessThanOrEqual(status.maxCores);
}

describe('Admission', () => {
  describe('acquire', () => {
    it('admits runs while their cores fit the slot limit, then says how many cores are in use', async () => {
      const a = admission(new Clock(), { scope: newScope(), maxCores: 4 });
      expect(await a.acquire('run1', 2)).toEqual({ admitted: true });
      expect(await a.acquire('run2', 2)).toEqual({ admitted: true });
      const refused = await a.acquire('run3', 1);
      expect(refused).toMatchObject({
        admitted: false,
        reason: 'waiting for a build slot: 4 of 4 cores in use',
      });
      expect(await a.leases()).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ runId: 'run1', cores: 2 }),
          expect.objectContaining({ runId: 'run2', cores: 2 }),
        ]),
      );
      await expectConsistent(a);
    });

    it('admits a waiting run once a lease is released', async () => {
      const a = admission(new Clock(), { scope: newScope(), maxCores: 2 });
      await a.acquire('run1', 2);
      expect((await a.acquire('run2', 2)).admitted).toBe(false);
      await a.release('run1');
      expect(await a.acquire('run2', 2)).toEqual({ admitted: true });
      expect((await a.leases()).map((l) => l.runId)).toEqual(['run2']);
      await expectConsistent(a);
    });

    it('admits a run that already holds a lease again without taking more (a redelivered message)', async () => {
      const clock = new Clock();
      const a = admission(clock, { scope: newScope(), maxCores: 2, createsPerHour: 1 });
      expect(await a.acquire('run1', 2)).toEqual({ admitted: true });
      // The slots are full and the create budget is spent, yet the holder is admitted, and nothing more is taken.
      expect(await a.acquire('run1', 2)).toEqual({ admitted: true });
      const status = await a.status();
      expect(status.coresInUse).toBe(2);
      expect(status.tokens).toBe(0);
      expect(status.leases).toHaveLength(1);
    });

    it('spends one token of the create budget per run; past the burst it says when the next comes', async () => {
      const clock = new Clock();
      const a = admission(clock, { scope: newScope(), maxCores: 1000, createsPerHour: 3 });
      for (const id of ['r1', 'r2', 'r3']) expect(await a.acquire(id, 1)).toEqual({ admitted: true });
      const refused = await a.acquire('r4', 1);
      if (refused.admitted) throw new Error('r4 was admitted past the budget');
      // 3 per hour: a token every 1,200 s; the delay lands within the next token's interval.
      expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1200);
      expect(refused.retryAfterSeconds).toBeLessThanOrEqual(2400);
      expect(refused.reason).toBe(
        `waiting for the container-create budget (3 per hour): next in ${refused.retryAfterSeconds} s`,
      );
      clock.advance(1199);
      expect((await a.acquire('r4', 1)).admitted).toBe(false);
      clock.advance(1);
      expect(await a.acquire('r4', 1)).toEqual({ admitted: true });
    });

    it('lets through at most 100 creates at once (ACI allows 100 per 5 minutes), however high the hourly rate', async () => {
      const a = admission(new Clock(), { scope: newScope(), maxCores: 10000, createsPerHour: 6000 });
      expect(a.burst).toBe(100);
      const limit = pLimit(8);
      const answers = await Promise.all(
        Array.from({ length: 101 }, (_, i) => limit(() => a.acquire(`r${i}`, 1))),
      );
      expect(answers.filter((d) => d.admitted)).toHaveLength(100);
    });

    it('answers every one of 300 callers at once on 30 instances: admitted or told to wait, never an error', async () => {
      const clock = new Clock();
      const scope = newScope();
      const instances = Array.from({ length: 30 }, () => admission(clock, { scope, maxCores: 1000 }));
      const answers = await Promise.all(
        Array.from({ length: 300 }, (_, i) => instances[i % 30]!.acquire(`r${i}`, 1)),
      );
      const admitted = answers.filter((d) => d.admitted).length;
      expect(admitted).toBeLessThanOrEqual(100);
      expect(admitted).toBe((await instances[0]!.leases()).length);
      await expectConsistent(instances[0]!);
    });

    it('sends the runs it refuses back at different times, each after the next refill, never at 0 s', async () => {
      const clock = new Clock();
      const a = admission(clock, { scope: newScope(), maxCores: 1000, createsPerHour: 300 });
      for (let i = 0; i < 100; i++) await a.acquire(`first${i}`, 1);
      const delays: number[] = [];
      for (let i = 0; i < 50; i++) {
        const d = await a.acquire(`waiting${i}`, 1);
        if (d.admitted) throw new Error('admitted past the budget');
        delays.push(d.retryAfterSeconds);
      }
      // One token every 12 s: the nth waiting run is promised the nth token and comes back within its interval.
      delays.forEach((d, i) => {
        expect(d).toBeGreaterThanOrEqual(12 * (i + 1));
        expect(d).toBeLessThanOrEqual(12 * (i + 2));
      });
      expect(new Set(delays).size).toBeGreaterThan(40);
    });

    it('refuses a build larger than the whole slot limit, and nonsense, as bad input', async () => {
      const a = admission(new Clock(), { scope: newScope(), maxCores: 4 });
      await expect(a.acquire('run1', 5)).rejects.toThrow(ValidationError);
      await expect(a.acquire('run1', 5)).rejects.toThrow(/REFIT_ACI_MAX_CORES is 4/);
      await expect(a.acquire('run1', 0)).rejects.toThrow(ValidationError);
      await expect(a.acquire("run'1", 1)).rejects.toThrow(ValidationError);
      expect(() => new Admission(table, { scope: "west'europe" })).toThrow(ValidationError);
      expect(await a.leases()).toEqual([]);
    });

    it('never exceeds the slot limit with 50 acquires in parallel from two instances (ETag clashes resolved, none lost)', async () => {
      const clock = new Clock();
      const scope = newScope();
      const one = admission(clock, { scope, maxCores: 40 });
      const two = admission(clock, { scope, maxCores: 40 });
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? one : two).acquire(`run${i}`, 1)),
      );
      const admitted = answers.filter((d) => d.admitted).length;
      expect(admitted).toBe(40);
      for (const d of answers.filter((x) => !x.admitted))
        expect(d).toMatchObject({ reason: 'waiting for a build slot: 40 of 40 cores in use' });
      expect(await one.leases()).toHaveLength(40);
      await expectConsistent(one);
    });

    it('drains 300 runs queued at once with a budget of 100 creates: 100 at once, each of the rest admitted exactly once at the budget’s pace', async () => {
      const clock = new Clock();
      const start = clock.ms;
      const perHour = 100;
      const a = admission(clock, { scope: newScope(), maxCores: 150, createsPerHour: perHour });
      const BUILD_SECONDS = 600;
      // The events of the dispatch queue (a run message becoming visible) and of builds finishing, by time.
      type Event = { at: number; kind: 'message' | 'finished'; runId: string };
      const events: Event[] = [];
      const admittedAt = new Map<string, number>();
      const waited = new Map<string, number>();
      const handle = async (e: Event): Promise<void> => {
        if (e.kind === 'finished') return a.release(e.runId);
        const d = await a.acquire(e.runId, 1);
        if (d.admitted) {
          expect(admittedAt.has(e.runId)).toBe(false);
          admittedAt.set(e.runId, clock.ms);
          events.push({ at: clock.ms + BUILD_SECONDS * 1000, kind: 'finished', runId: e.runId });
        } else {
          expect(d.retryAfterSeconds).toBeGreaterThanOrEqual(1);
          waited.set(e.runId, (waited.get(e.runId) ?? 0) + 1);
          events.push({ at: clock.ms + d.retryAfterSeconds * 1000, kind: 'message', runId: e.runId });
        }
      };

      // All 300 at once, through a few dispatchers.
      const limit = pLimit(8);
      const runIds = Array.from({ length: 300 }, (_, i) => `run${i}`);
      await Promise.all(runIds.map((runId) => limit(() => handle({ at: start, kind: 'message', runId }))));
      expect(admittedAt.size).toBe(100);
      expect(waited.size).toBe(200);

      // Bounded, so that a budget that sends runs back too often fails here instead of running for ever.
      for (let step = 0; events.length > 0; step++) {
        if (step > 2000) throw new Error(`still ${events.length} events after ${step} steps`);
        events.sort((x, y) => x.at - y.at);
        const e = events.shift()!;
        clock.ms = e.at;
        await handle(e);
      }

      expect([...admittedAt.keys()].sort()).toEqual([...runIds].sort());
      // Never faster than the budget: in any span, at most the burst plus what the span refilled.
      const times = [...admittedAt.values()].sort((x, y) => x - y);
      let worstExcess = -Infinity;
      for (let i = 0; i < times.length; i++)
        for (let j = i; j < times.length; j++) {
          const allowed = 100 + Math.floor(((times[j]! - times[i]!) * perHour) / 3_600_000) + 1;
          worstExcess = Math.max(worstExcess, j - i + 1 - allowed);
        }
      expect(worstExcess).toBeLessThanOrEqual(0);
      // The waiting runs came back about once each (promised a token each), not once a refill each.
      const retries = [...waited.values()].reduce((s, n) => s + n, 0);
      expect(retries).toBeLessThanOrEqual(250);
      expect(await a.leases()).toEqual([]);
      expect((await a.status()).coresInUse).toBe(0);
    });

    it('keeps cores in use equal to the sum of the leases and within the limit, whatever the sequence', async () => {
      const command = fc.oneof(
        fc.record({
          op: fc.constant('acquire' as const),
          run: fc.integer({ min: 0, max: 5 }),
          cores: fc.integer({ min: 1, max: 4 }),
        }),
        fc.record({ op: fc.constant('release' as const), run: fc.integer({ min: 0, max: 5 }) }),
        fc.record({ op: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 3600 }) }),
        fc.record({ op: fc.constant('pause' as const), seconds: fc.integer({ min: 1, max: 600 }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 15 }), async (commands) => {
          const clock = new Clock();
          const a = admission(clock, { scope: newScope(), maxCores: 6, createsPerHour: 4 });
          const held = new Map<number, number>();
          for (const c of commands) {
            if (c.op === 'acquire') {
              const d = await a.acquire(`run${c.run}`, c.cores);
              if (d.admitted) held.set(c.run, held.get(c.run) ?? c.cores);
              else expect(held.has(c.run)).toBe(false);
            } else if (c.op === 'release') {
              await a.release(`run${c.run}`);
              held.delete(c.run);
            } else if (c.op === 'advance') clock.advance(c.seconds);
            else await a.pause(c.seconds, 'Azure throttled container creates');
            const status = await a.status();
            expect(status.coresInUse).toBe(status.leases.reduce((sum, l) => sum + l.cores, 0));
            expect(status.coresInUse).toBeLessThanOrEqual(6);
            expect(new Map(status.leases.map((l) => [Number(l.runId.slice(3)), l.cores]))).toEqual(held);
          }
        }),
        { numRuns: 25 },
      );
    });
  });

  describe('acquire and release', () => {
    it.each(['POST', 'PUT', 'MERGE', 'PATCH', 'DELETE'])(
      'never leave a lease without its cores counted, or the reverse, when a %s to storage fails',
      async (method) => {
        const clock = new Clock();
        const scope = newScope();
        const a = admission(clock, { scope, maxCores: 10 });
        const faulty = new Admission(faultyTable, { scope, maxCores: 10, now: clock.now });
        await a.acquire('held', 2);
        faults.inject({ method });
        await faulty.acquire('new', 3).catch(() => undefined);
        await faulty.release('held').catch(() => undefined);
        faults.clear();
        await expectConsistent(a);
      },
    );
  });

  describe('release', () => {
    it('is idempotent: a second release, or one for a run without a lease, changes nothing', async () => {
      const a = admission(new Clock(), { scope: newScope(), maxCores: 4 });
      await a.acquire('run1', 3);
      await a.acquire('run2', 1);
      await a.release('run1');
      await a.release('run1');
      await a.release('never-admitted');
      expect((await a.status()).coresInUse).toBe(1);
      await expectConsistent(a);
    });
  });

  describe('pause', () => {
    it('admits no create until the pause ends, telling waiting runs why and when, then refills from there', async () => {
      const clock = new Clock();
      const a = admission(clock, { scope: newScope(), maxCores: 100, createsPerHour: 300 });
      expect(await a.acquire('run1', 1)).toEqual({ admitted: true });
      await a.pause(30, 'Azure throttled container creates');
      const refused = await a.acquire('run2', 1);
      if (refused.admitted) throw new Error('admitted during a pause');
      expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(30);
      expect(refused.reason).toBe(
        `Azure throttled container creates: retrying in ${refused.retryAfterSeconds} s`,
      );
      // A shorter pause does not cut the longer one short.
      await a.pause(5, 'something else');
      clock.advance(29);
      expect((await a.acquire('run2', 1)).admitted).toBe(false);
      // After the pause the budget starts empty (ARM said it was spent): the first token comes 12 s later.
      clock.advance(1);
      expect(await a.acquire('run2', 1)).toMatchObject({
        admitted: false,
        reason: expect.stringMatching(/container-create budget/),
      });
      clock.advance(12);
      expect(await a.acquire('run2', 1)).toEqual({ admitted: true });
    });
  });
});
