import fc from 'fast-check';
import {
  attemptEnded,
  graphStateSchema,
  runningAttempts,
  startGraph,
  StepFailedError,
  type AttemptEnd,
  type GraphAction,
  type GraphState,
  type Transition,
} from '../../../src/acb/step-graph';
import { parseRenderedTask, type AcbTask } from '../../../src/acb/task-file';

const ok: AttemptEnd = { code: 0, output: '' };
const exit = (code: number, output = ''): AttemptEnd => ({ code, output });
const stopped: AttemptEnd = { code: null, output: '', stopped: true };

/** The `start` actions of a transition as "step/attempt" (with "+Ns" when delayed), in order. */
function starts(t: Transition): string[] {
  return t.actions.flatMap((a) =>
    a.kind === 'start' ? [`${a.stepId}/${a.attempt}${a.delaySeconds ? `+${a.delaySeconds}s` : ''}`] : [],
  );
}

function stops(t: Transition): string[] {
  return t.actions.flatMap((a) => (a.kind === 'stop' ? [`${a.stepId}/${a.attempt}`] : []));
}

function finishOf(t: Transition): Extract<GraphAction, { kind: 'finish' }> | undefined {
  return t.actions.find((a): a is Extract<GraphAction, { kind: 'finish' }> => a.kind === 'finish');
}

/** The state as a driver reads it back from storage: JSON, parsed with the schema. */
function stored(state: GraphState): GraphState {
  return graphStateSchema.parse(JSON.parse(JSON.stringify(state)));
}

/**
 * Keeps a graph's state between events as a queue-driven driver would: the state goes through JSON between every
 * transition (it is stored), and every transition is checked against the same transition on the unserialised state.
 */
function machine(yaml: string, now = 0) {
  const task = parseRenderedTask(yaml);
  const first = startGraph(task, now);
  let state: GraphState = stored(first.state);
  const end = (stepId: string, attempt: string, e: AttemptEnd, at = now): Transition => {
    const t = attemptEnded(task, state, stepId, attempt, e, at);
    state = stored(t.state);
    return t;
  };
  return { task, first, end, state: () => state };
}

describe('step-graph', () => {
  describe('startGraph', () => {
    it('starts every step that waits for nothing at once, in the task order, as attempt r0a0', () => {
      const { first } = machine(
        'steps:\n- id: a\n  cmd: x\n  when: ["-"]\n- id: b\n  cmd: x\n  when: ["-"]\n- id: c\n  cmd: x\n  when: [a]\n',
      );
      expect(starts(first)).toEqual(['a/r0a0', 'b/r0a0']);
      expect(first.lines).toEqual([]);
      expect(first.actions[0]).toEqual({
        kind: 'start',
        stepId: 'a',
        attempt: 'r0a0',
        delaySeconds: 0,
        lines: ["Executing step ID: a. Timeout(sec): 600, Working directory: '', Network: ''"],
      });
      expect(runningAttempts(first.state)).toEqual([
        { stepId: 'a', attempt: 'r0a0' },
        { stepId: 'b', attempt: 'r0a0' },
      ]);
    });

    it('starts a step without when only after the step before it', () => {
      const { first } = machine('steps:\n- id: a\n  cmd: x\n- id: b\n  cmd: x\n');
      expect(starts(first)).toEqual(['a/r0a0']);
    });

    it('delays the first attempt by startDelay and says so now; the Executing line waits for the delay', () => {
      const { first } = machine('steps:\n- id: s\n  cmd: x\n  startDelay: 7\n');
      expect(starts(first)).toEqual(['s/r0a0+7s']);
      expect(first.lines).toEqual(['Step ID: s starts after a delay of 7 seconds']);
      expect(first.actions[0]).toMatchObject({ lines: [expect.stringMatching(/^Executing step ID: s\./)] });
    });
  });

  describe('attemptEnded', () => {
    it('starts a join once the last step it waits for has succeeded, with the elapsed time from `now`', () => {
      const m = machine(
        'steps:\n- id: a\n  cmd: x\n  when: ["-"]\n- id: b\n  cmd: x\n  when: ["-"]\n- id: join\n  cmd: x\n  when: [a, b]\n',
        1000,
      );
      const b = m.end('b', 'r0a0', ok, 2234);
      expect(b.lines).toEqual(['Step ID: b marked as successful (elapsed time in seconds: 1.234)']);
      expect(starts(b)).toEqual([]);
      const a = m.end('a', 'r0a0', ok, 3000);
      expect(starts(a)).toEqual(['join/r0a0']);
      const join = m.end('join', 'r0a0', ok, 3500);
      expect(join.lines).toEqual(['Step ID: join marked as successful (elapsed time in seconds: 0.500)']);
      expect(join.actions).toEqual([{ kind: 'finish', status: 'succeeded' }]);
    });

    it('stops the running steps at the first failure and finishes only once the stopped attempt has reported', () => {
      const m = machine(
        'steps:\n- id: slow\n  cmd: x\n  when: ["-"]\n- id: bad\n  cmd: x\n  when: ["-"]\n- id: after\n  cmd: x\n  when: [bad]\n',
      );
      const failed = m.end('bad', 'r0a0', { code: 3, output: '', reason: 'no space left' });
      expect(failed.lines).toEqual(['Step ID: bad marked as failed (elapsed time in seconds: 0.000)']);
      expect(stops(failed)).toEqual(['slow/r0a0']);
      expect(starts(failed)).toEqual([]);
      expect(finishOf(failed)).toBeUndefined();

      const last = m.end('slow', 'r0a0', stopped);
      expect(last.lines).toEqual(['Step ID: slow was stopped: step bad failed']);
      const finish = finishOf(last);
      expect(finish).toMatchObject({ kind: 'finish', status: 'failed' });
      expect(finish?.kind === 'finish' && finish.status === 'failed' && finish.error).toBeInstanceOf(
        StepFailedError,
      );
      expect(finish?.kind === 'finish' && finish.status === 'failed' && finish.error.message).toBe(
        'failed to run step ID: bad: exit code 3: no space left',
      );
      expect(runningAttempts(last.state)).toEqual([]);
    });

    it('starts nothing after a failure, even when a running step then succeeds', () => {
      const m = machine(
        'steps:\n- id: a\n  cmd: x\n  when: ["-"]\n- id: bad\n  cmd: x\n  when: ["-"]\n- id: afterA\n  cmd: x\n  when: [a]\n',
      );
      m.end('bad', 'r0a0', exit(1));
      const late = m.end('a', 'r0a0', ok);
      expect(late.lines).toEqual(['Step ID: a was stopped: step bad failed']);
      expect(starts(late)).toEqual([]);
      expect(finishOf(late)).toMatchObject({ status: 'failed' });
    });

    it('lets the dependents of a step with ignoreErrors run, and the run succeed', () => {
      const m = machine('steps:\n- id: flaky\n  cmd: x\n  ignoreErrors: true\n- id: next\n  cmd: x\n');
      const t = m.end('flaky', 'r0a0', exit(1));
      expect(t.lines).toEqual([
        'Step ID: flaky failed and its errors are ignored (ignoreErrors): exit code 1',
      ]);
      expect(starts(t)).toEqual(['next/r0a0']);
      expect(m.end('next', 'r0a0', ok).actions).toEqual([{ kind: 'finish', status: 'succeeded' }]);
    });

    it('retries a failed attempt after retryDelay, up to retries times, then fails with the last error', () => {
      const m = machine('steps:\n- id: s\n  cmd: x\n  retries: 2\n  retryDelay: 3\n');
      const r1 = m.end('s', 'r0a0', exit(1));
      expect(r1.lines).toEqual(['Step ID: s failed (exit code 1); retry 1 of 2 in 3 seconds']);
      expect(starts(r1)).toEqual(['s/r0a1+3s']);
      expect(r1.actions[0]).toMatchObject({ lines: [] });
      const r2 = m.end('s', 'r0a1', exit(2));
      expect(starts(r2)).toEqual(['s/r0a2+3s']);
      const spent = m.end('s', 'r0a2', exit(4));
      expect(starts(spent)).toEqual([]);
      expect(finishOf(spent)).toMatchObject({
        status: 'failed',
        error: { message: 'failed to run step ID: s: exit code 4' },
      });
    });

    it('retries only when the output has one of retryOnErrors', () => {
      const yaml = 'steps:\n- id: s\n  cmd: x\n  retries: 2\n  retryOnErrors: ["connection reset"]\n';
      const denied = machine(yaml).end('s', 'r0a0', exit(1, 'permission denied'));
      expect(starts(denied)).toEqual([]);
      expect(finishOf(denied)).toMatchObject({ status: 'failed' });
      const reset = machine(yaml).end('s', 'r0a0', exit(1, 'read: connection reset by peer'));
      expect(starts(reset)).toEqual(['s/r0a1+5s']);
    });

    it('never retries a stopped attempt', () => {
      const t = machine('steps:\n- id: s\n  cmd: x\n  retries: 2\n').end('s', 'r0a0', stopped);
      expect(starts(t)).toEqual([]);
      expect(finishOf(t)).toMatchObject({
        error: { message: 'failed to run step ID: s: the step was stopped' },
      });
    });

    it('runs a step 1 + repeat times, each run on its own, and fails it if any run failed', () => {
      const m = machine('steps:\n- id: s\n  cmd: x\n  repeat: 2\n');
      expect(m.first.actions[0]).toMatchObject({
        lines: [expect.stringMatching(/^Executing step ID: s\./), 'Step ID: s: run 1 of 3'],
      });
      const run2 = m.end('s', 'r0a0', exit(1));
      expect(starts(run2)).toEqual(['s/r1a0']);
      expect(run2.actions[0]).toMatchObject({ delaySeconds: 0, lines: ['Step ID: s: run 2 of 3'] });
      const run3 = m.end('s', 'r1a0', ok);
      expect(starts(run3)).toEqual(['s/r2a0']);
      const last = m.end('s', 'r2a0', exit(2));
      expect(finishOf(last)).toMatchObject({
        error: { message: 'failed to run step ID: s: exit code 1; exit code 2' },
      });
    });

    it('retries within one run of a repeated step before the next run starts', () => {
      const m = machine('steps:\n- id: s\n  cmd: x\n  repeat: 1\n  retries: 1\n');
      expect(starts(m.end('s', 'r0a0', exit(1)))).toEqual(['s/r0a1+5s']);
      expect(starts(m.end('s', 'r0a1', ok))).toEqual(['s/r1a0']);
      expect(m.end('s', 'r1a0', ok).actions).toEqual([{ kind: 'finish', status: 'succeeded' }]);
    });

    it.each([
      ['a timeout', { code: null, output: '', timedOut: true }, 'the step timed out after 9 seconds'],
      [
        'a crash',
        { code: null, output: '', crash: 'spawn buildah ENOENT', timedOut: true },
        'spawn buildah ENOENT',
      ],
      ['a stop', { code: null, output: '', stopped: true }, 'the step was stopped'],
      ['a kill', { code: null, output: '' }, 'exit code none (killed)'],
      [
        'an exit code with a reason',
        { code: 125, output: '', reason: 'pull refused' },
        'exit code 125: pull refused',
      ],
    ] as [string, AttemptEnd, string][])('names %s in the run error', (_name, end, reason) => {
      const t = machine('steps:\n- id: s\n  cmd: x\n  timeout: 9\n').end('s', 'r0a0', end);
      expect(finishOf(t)).toMatchObject({ error: { message: `failed to run step ID: s: ${reason}` } });
    });

    it('is a no-op for a repeated report, a stale attempt and an unknown step', () => {
      const m = machine('steps:\n- id: s\n  cmd: x\n  retries: 1\n- id: t\n  cmd: x\n');
      m.end('s', 'r0a0', exit(1));
      const state = m.state();
      for (const [stepId, attempt] of [
        ['s', 'r0a0'], // the same report again: r0a1 runs now
        ['t', 'r0a0'], // a step that has not started
        ['nope', 'r0a0'],
      ] as const) {
        const t = attemptEnded(m.task, state, stepId, attempt, ok, 5);
        expect(t).toEqual({ state, actions: [], lines: [] });
        expect(t.state).toBe(state);
      }
      const done = m.end('s', 'r0a1', ok);
      expect(starts(done)).toEqual(['t/r0a0']);
      const again = attemptEnded(m.task, m.state(), 's', 'r0a1', ok, 6);
      expect(again.actions).toEqual([]);
      expect(again.state).toBe(m.state());
    });

    it('never changes the state it is given', () => {
      const m = machine('steps:\n- id: a\n  cmd: x\n  when: ["-"]\n- id: b\n  cmd: x\n  when: ["-"]\n');
      const before = m.state();
      const copy = JSON.parse(JSON.stringify(before)) as GraphState;
      attemptEnded(m.task, before, 'a', 'r0a0', exit(1), 1);
      expect(before).toEqual(copy);
    });
  });

  describe('graphStateSchema', () => {
    it('reads back every stored state and refuses one that is not a graph state', () => {
      const m = machine('steps:\n- id: a\n  cmd: x\n  retries: 1\n- id: b\n  cmd: x\n');
      m.end('a', 'r0a0', exit(1));
      expect(graphStateSchema.parse(JSON.parse(JSON.stringify(m.state())))).toEqual(m.state());
      const running = m.state().steps[0]!;
      const { attempt: _, ...withoutAttempt } = running;
      for (const bad of [
        {},
        { ...m.state(), steps: [withoutAttempt] },
        { ...m.state(), steps: [{ ...running, run: -1 }] },
        { ...m.state(), finished: 'maybe' },
      ])
        expect(graphStateSchema.safeParse(bad).success).toBe(false);
    });
  });

  describe('runningAttempts', () => {
    it('lists the attempt each running step is on, which a cancel must stop', () => {
      const m = machine(
        'steps:\n- id: a\n  cmd: x\n  when: ["-"]\n  retries: 1\n- id: b\n  cmd: x\n  when: ["-"]\n- id: c\n  cmd: x\n',
      );
      m.end('a', 'r0a0', exit(1));
      m.end('b', 'r0a0', ok);
      expect(runningAttempts(m.state())).toEqual([
        { stepId: 'a', attempt: 'r0a1' },
        { stepId: 'c', attempt: 'r0a0' },
      ]);
      m.end('c', 'r0a0', ok);
      m.end('a', 'r0a1', ok);
      expect(runningAttempts(m.state())).toEqual([]);
    });
  });

  describe('a graph driven to completion (property)', () => {
    /** A random task file: up to 6 steps, each waiting for the previous step, for nothing, or for earlier steps. */
    const taskArb = fc
      .array(
        fc.record({
          when: fc.constantFrom('previous', 'now', 'some'),
          deps: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
          retries: fc.integer({ min: 0, max: 2 }),
          repeat: fc.integer({ min: 0, max: 2 }),
          ignoreErrors: fc.boolean(),
          retryOnErrors: fc.boolean(),
          startDelay: fc.integer({ min: 0, max: 2 }),
        }),
        { minLength: 1, maxLength: 6 },
      )
      .map((specs) =>
        specs
          .map((s, i) => {
            const deps = s.deps.slice(0, i).flatMap((d, j) => (d ? [`s${j}`] : []));
            const when =
              s.when === 'now'
                ? '["-"]'
                : s.when === 'some' && deps.length > 0
                  ? `[${deps.join(', ')}]`
                  : null;
            return [
              `- id: s${i}`,
              '  cmd: x',
              ...(when ? [`  when: ${when}`] : []),
              `  retries: ${s.retries}`,
              `  repeat: ${s.repeat}`,
              `  ignoreErrors: ${s.ignoreErrors}`,
              `  startDelay: ${s.startDelay}`,
              ...(s.retryOnErrors ? ['  retryOnErrors: ["connection reset"]'] : []),
            ].join('\n');
          })
          .join('\n'),
      )
      .map((steps) => `steps:\n${steps}\n`);
    /** How the next reported attempt ends, and which of the running attempts reports. */
    const eventArb = fc.record({
      pick: fc.nat(),
      code: fc.constantFrom<number | null>(0, 0, 1, null),
      output: fc.constantFrom('', 'connection reset'),
      timedOut: fc.boolean(),
      crash: fc.constantFrom(undefined, undefined, undefined, 'crashed'),
    });

    it('starts a step only after its dependencies succeeded or were ignored, stops all and starts nothing after a failure, and finishes once', () => {
      fc.assert(
        fc.property(taskArb, fc.array(eventArb, { maxLength: 60 }), (yaml, events) => {
          const task: AcbTask = parseRenderedTask(yaml);
          const deps = new Map(task.steps.map((s) => [s.id, s.dependsOn]));
          const okSteps = new Set<string>();
          const startedSteps = new Set<string>();
          const running: { stepId: string; attempt: string; stop: boolean }[] = [];
          let failed = false;
          const finishes: Extract<GraphAction, { kind: 'finish' }>[] = [];
          /** The state as the last transition returned it, and as stored and read back. */
          let live: GraphState | undefined;
          let state: GraphState | undefined;
          let now = 0;

          const take = (t: Transition): void => {
            live = t.state;
            state = stored(t.state);
            expect(finishes).toHaveLength(0); // nothing happens after the finish
            for (const line of t.lines) {
              const m = /^Step ID: (\S+) (marked as successful|failed and its errors are ignored)/.exec(line);
              if (m) okSteps.add(m[1]!);
              if (/^Step ID: \S+ marked as failed/.test(line)) failed = true;
            }
            for (const a of t.actions) {
              if (a.kind === 'start') {
                expect(failed).toBe(false);
                if (!startedSteps.has(a.stepId)) {
                  for (const d of deps.get(a.stepId)!) expect(okSteps.has(d)).toBe(true);
                  startedSteps.add(a.stepId);
                }
                running.push({ stepId: a.stepId, attempt: a.attempt, stop: false });
              } else if (a.kind === 'stop') {
                const r = running.find((x) => x.stepId === a.stepId && x.attempt === a.attempt);
                expect(r).toBeDefined();
                r!.stop = true;
              } else finishes.push(a);
            }
            // A failure stops every other attempt still running.
            if (failed) for (const r of running) expect(r.stop).toBe(true);
          };

          take(startGraph(task, now));
          for (let i = 0; running.length > 0; i++) {
            expect(i).toBeLessThan(500); // the graph always ends
            // Past the scripted events (or with none), every attempt succeeds.
            const ev = events[i % Math.max(events.length, 1)] ?? {
              pick: 0,
              code: 0,
              output: '',
              timedOut: false,
              crash: undefined,
            };
            const [r] = running.splice(ev.pick % running.length, 1);
            const end: AttemptEnd = r!.stop
              ? stopped
              : {
                  code: ev.code,
                  output: ev.output,
                  ...(ev.timedOut ? { timedOut: true } : {}),
                  ...(ev.crash ? { crash: ev.crash } : {}),
                };
            now += 250;
            // The stored state gives the same transition as the one in memory.
            const t = attemptEnded(task, state!, r!.stepId, r!.attempt, end, now);
            const inMemory = attemptEnded(task, live!, r!.stepId, r!.attempt, end, now);
            expect(inMemory.state).toEqual(t.state);
            expect(inMemory.lines).toEqual(t.lines);
            expect(inMemory.actions).toEqual(t.actions);
            take(t);
            // The same report delivered again changes nothing.
            const again = attemptEnded(task, state!, r!.stepId, r!.attempt, end, now + 1);
            expect(again.actions).toEqual([]);
            expect(again.lines).toEqual([]);
            expect(again.state).toBe(state);
          }
          expect(finishes).toHaveLength(1);
          expect(finishes[0]!.status).toBe(failed ? 'failed' : 'succeeded');
          if (!failed) expect(okSteps.size).toBe(task.steps.length);
        }),
        { numRuns: 300 },
      );
    });
  });
});
