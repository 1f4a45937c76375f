import { runGraph, StepFailedError, type AttemptResult } from '../../../src/acb/runner';
import { parseRenderedTask, type AcbStep } from '../../../src/acb/task-file';

/** A promise with its resolve function exposed, so that a test decides when it settles. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * The scheduler is driven with scripted steps: each step's script says how each attempt ends; a step marked `held`
 * runs until the test calls `finish(id, code)` (or the scheduler aborts it), every other step ends at once. The trace
 * records when steps start and end, so ordering is decided by the test, never by timers racing.
 */
function harness(script: Record<string, { codes?: (number | null)[]; held?: boolean; output?: string }>) {
  const trace: string[] = [];
  const attempts: Record<string, number> = {};
  const startedSteps = new Map<string, ReturnType<typeof deferred>>();
  const finishers = new Map<string, (code: number | null) => void>();
  const startedSignal = (id: string): ReturnType<typeof deferred> => {
    let d = startedSteps.get(id);
    if (!d) startedSteps.set(id, (d = deferred()));
    return d;
  };
  const attempt = (step: AcbStep, signal: AbortSignal): Promise<AttemptResult> => {
    const n = (attempts[step.id] = (attempts[step.id] ?? 0) + 1);
    const s = script[step.id] ?? {};
    const code = s.codes?.[n - 1] ?? s.codes?.[s.codes.length - 1] ?? 0;
    trace.push(`start ${step.id}`);
    return new Promise((resolve) => {
      let settled = false;
      const finish = (c: number | null): void => {
        if (settled) return;
        settled = true;
        trace.push(`end ${step.id}${c === 0 ? '' : ` (${c})`}`);
        resolve({ code: c, output: s.output ?? '' });
      };
      signal.addEventListener('abort', () => finish(null), { once: true });
      if (s.held) finishers.set(step.id, finish);
      else queueMicrotask(() => finish(code));
      startedSignal(step.id).resolve();
    });
  };
  const lines: string[] = [];
  const sleeps: number[] = [];
  const run = (yaml: string, signal = new AbortController().signal): Promise<void> =>
    runGraph(parseRenderedTask(yaml), attempt, {
      log: (l) => lines.push(l),
      signal,
      sleep: async (ms) => void sleeps.push(ms),
    });
  /** Resolves once step `id` has started (its first attempt). */
  const started = (id: string): Promise<void> => startedSignal(id).promise;
  /** Ends the running attempt of a held step with `code`. */
  const finish = (id: string, code: number | null = 0): void => finishers.get(id)!(code);
  return { trace, attempts, lines, sleeps, run, started, finish };
}

describe('the step graph', () => {
  it('runs steps without when one after the other', async () => {
    const h = harness({});
    await h.run('steps:\n- id: a\n  cmd: x\n- id: b\n  cmd: x\n- id: c\n  cmd: x\n');
    expect(h.trace).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('starts when: ["-"] steps at once, in parallel, and joins them with when: [a, b]', async () => {
    const h = harness({ a: { held: true }, b: { held: true } });
    const run = h.run(
      'steps:\n- id: a\n  cmd: x\n  when: ["-"]\n- id: b\n  cmd: x\n  when: ["-"]\n- id: join\n  cmd: x\n  when: [a, b]\n',
    );
    // Both run at once (b starts while a is held); the join waits for the one that ends last. A scheduler running
    // them one after the other would never start b: the test's bound fails it.
    await Promise.all([h.started('a'), h.started('b')]);
    h.finish('b');
    h.finish('a');
    await run;
    expect(h.trace).toEqual(['start a', 'start b', 'end b', 'end a', 'start join', 'end join']);
  }, 5000);

  it('fails the run at the first failing step: its dependents never start and running steps are stopped', async () => {
    const h = harness({ slow: { held: true }, bad: { codes: [3] } });
    const run = h.run(
      'steps:\n- id: slow\n  cmd: x\n  when: ["-"]\n- id: bad\n  cmd: x\n  when: ["-"]\n- id: after\n  cmd: x\n  when: [bad]\n',
    );
    await expect(run).rejects.toThrow(StepFailedError);
    await expect(run).rejects.toThrow('failed to run step ID: bad: exit code 3');
    expect(h.trace).toEqual(['start slow', 'start bad', 'end bad (3)', 'end slow (null)']);
    expect(h.attempts.after).toBeUndefined();
  });

  it('lets a step with ignoreErrors fail without failing the run; its dependents run', async () => {
    const h = harness({ flaky: { codes: [1] } });
    await h.run('steps:\n- id: flaky\n  cmd: x\n  ignoreErrors: true\n- id: next\n  cmd: x\n');
    expect(h.trace).toEqual(['start flaky', 'end flaky (1)', 'start next', 'end next']);
    expect(h.lines.join('\n')).toMatch(/flaky failed and its errors are ignored/);
  });

  it('retries a failing step after retryDelay, up to retries times', async () => {
    const h = harness({ s: { codes: [1, 1, 0] } });
    await h.run('steps:\n- id: s\n  cmd: x\n  retries: 3\n  retryDelay: 2\n');
    expect(h.attempts.s).toBe(3);
    expect(h.sleeps).toEqual([2000, 2000]);
  });

  it('fails once retries are spent', async () => {
    const h = harness({ s: { codes: [1] } });
    await expect(h.run('steps:\n- id: s\n  cmd: x\n  retries: 2\n')).rejects.toThrow('step ID: s');
    expect(h.attempts.s).toBe(3);
    expect(h.sleeps).toEqual([5000, 5000]);
  });

  it('retries only on the listed errors when retryOnErrors is given', async () => {
    const h = harness({ s: { codes: [1], output: 'permission denied' } });
    await expect(
      h.run('steps:\n- id: s\n  cmd: x\n  retries: 2\n  retryOnErrors: ["connection reset"]\n'),
    ).rejects.toThrow();
    expect(h.attempts.s).toBe(1);
    const h2 = harness({ s: { codes: [1, 0], output: 'oops: connection reset by peer' } });
    await h2.run('steps:\n- id: s\n  cmd: x\n  retries: 2\n  retryOnErrors: ["connection reset"]\n');
    expect(h2.attempts.s).toBe(2);
  });

  it('runs a step 1 + repeat times', async () => {
    const h = harness({});
    await h.run('steps:\n- id: s\n  cmd: x\n  repeat: 2\n');
    expect(h.attempts.s).toBe(3);
  });

  it('waits startDelay before a step', async () => {
    const h = harness({});
    await h.run('steps:\n- id: s\n  cmd: x\n  startDelay: 7\n');
    expect(h.sleeps).toEqual([7000]);
  });

  it('stops a step at its timeout and fails the run naming it', async () => {
    // A held step never ends on its own: only the step's timeout can end it.
    const h = harness({ s: { held: true } });
    await expect(h.run('steps:\n- id: s\n  cmd: x\n  timeout: 1\n')).rejects.toThrow(
      'failed to run step ID: s: the step timed out after 1 seconds',
    );
  });

  it('stops everything when the run is canceled', async () => {
    const h = harness({ a: { held: true } });
    const cancel = new AbortController();
    const run = h.run('steps:\n- id: a\n  cmd: x\n- id: b\n  cmd: x\n', cancel.signal);
    await h.started('a');
    cancel.abort();
    await expect(run).rejects.toThrow(/stopped/);
    expect(h.trace).toEqual(['start a', 'end a (null)']);
    expect(h.attempts.b).toBeUndefined();
  });
});
