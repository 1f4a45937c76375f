import type { AcbStep, AcbTask } from './task-file';

/** How one attempt of a step ended: its exit code (null when killed) and its output (for retryOnErrors). */
export interface AttemptResult {
  readonly code: number | null;
  readonly output: string;
  /** What went wrong, when the attempt's output says it plainly (a registry that refused a pull, say). */
  readonly reason?: string;
}

/** Runs one attempt of a step; `signal` aborts it (the run failed elsewhere, was canceled, or the step timed out). */
export type RunAttempt = (step: AcbStep, signal: AbortSignal) => Promise<AttemptResult>;

/** A step that failed the run. */
export class StepFailedError extends Error {
  constructor(
    readonly stepId: string,
    reason: string,
  ) {
    super(`failed to run step ID: ${stepId}: ${reason}`);
  }
}

/** Options of {@link runGraph}. */
export interface RunGraphOptions {
  readonly log: (line: string) => void;
  /** Aborts the whole graph (a cancel or the run's timeout). */
  readonly signal: AbortSignal;
  /** Waits (startDelay, retryDelay); replaceable so that tests need not wait. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs a task's step graph as acb does: a step starts when every step it waits for has finished (successfully, or
 * failed with ignoreErrors), so independent steps run in parallel. The first step that fails without ignoreErrors
 * fails the run: the steps still running are aborted and the ones not started never start. Each step waits
 * `startDelay`, runs 1 + `repeat` times, and each of those runs is retried up to `retries` times (after
 * `retryDelay`, and only when its output has one of `retryOnErrors`, if given), each attempt within `timeout`.
 */
export async function runGraph(task: AcbTask, attempt: RunAttempt, options: RunGraphOptions): Promise<void> {
  const sleep = options.sleep ?? defaultSleep;
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const done = new Set<string>();
  const started = new Set<string>();
  const running = new Set<Promise<void>>();
  let failure: StepFailedError | undefined;

  const runStep = async (step: AcbStep): Promise<void> => {
    const began = Date.now();
    if (step.startDelay > 0) {
      options.log(`Step ID: ${step.id} starts after a delay of ${step.startDelay} seconds`);
      await sleep(step.startDelay * 1000, signal);
    }
    if (signal.aborted) return;
    options.log(
      `Executing step ID: ${step.id}. Timeout(sec): ${step.timeout}, Working directory: '${step.workingDirectory}', Network: '${step.network ?? ''}'`,
    );
    const errors: string[] = [];
    for (let r = 0; r <= step.repeat && !signal.aborted; r++) {
      if (step.repeat > 0) options.log(`Step ID: ${step.id}: run ${r + 1} of ${step.repeat + 1}`);
      const error = await runWithRetries(step);
      if (error) errors.push(error);
    }
    if (options.signal.aborted) return;
    if (stop.signal.aborted) {
      options.log(`Step ID: ${step.id} was stopped: step ${failure?.stepId ?? '?'} failed`);
      return;
    }
    const seconds = ((Date.now() - began) / 1000).toFixed(3);
    if (errors.length > 0) {
      const reason = errors.join('; ');
      if (step.ignoreErrors) {
        options.log(`Step ID: ${step.id} failed and its errors are ignored (ignoreErrors): ${reason}`);
      } else {
        options.log(`Step ID: ${step.id} marked as failed (elapsed time in seconds: ${seconds})`);
        if (!failure) {
          failure = new StepFailedError(step.id, reason);
          stop.abort();
        }
        return;
      }
    } else {
      options.log(`Step ID: ${step.id} marked as successful (elapsed time in seconds: ${seconds})`);
    }
    done.add(step.id);
    startReady();
  };

  /** One run of a step with its retries; the error, or undefined when it succeeded. */
  const runWithRetries = async (step: AcbStep): Promise<string | undefined> => {
    for (let n = 0; ; n++) {
      const timeout = AbortSignal.timeout(step.timeout * 1000);
      let crash: string | undefined;
      const result = await attempt(step, AbortSignal.any([signal, timeout])).catch(
        (err: unknown): AttemptResult => {
          crash = (err as Error).message;
          return { code: null, output: '' };
        },
      );
      if (result.code === 0) return undefined;
      const error = crash
        ? crash
        : timeout.aborted
          ? `the step timed out after ${step.timeout} seconds`
          : signal.aborted
            ? 'the step was stopped'
            : `exit code ${result.code ?? 'none (killed)'}${result.reason ? `: ${result.reason}` : ''}`;
      if (signal.aborted) return error;
      const retryable =
        step.retryOnErrors.length === 0 || step.retryOnErrors.some((e) => result.output.includes(e));
      if (n >= step.retries || !retryable) return error;
      options.log(
        `Step ID: ${step.id} failed (${error}); retry ${n + 1} of ${step.retries} in ${step.retryDelay} seconds`,
      );
      await sleep(step.retryDelay * 1000, signal);
      if (signal.aborted) return 'the step was stopped';
    }
  };

  const startReady = (): void => {
    if (signal.aborted) return;
    for (const step of task.steps) {
      if (started.has(step.id) || !step.dependsOn.every((d) => done.has(d))) continue;
      started.add(step.id);
      const p: Promise<void> = runStep(step).finally(() => running.delete(p));
      running.add(p);
    }
  };

  startReady();
  while (running.size > 0) await Promise.race(running);
  if (failure) throw failure;
  if (options.signal.aborted) throw new StepFailedError([...started].pop() ?? 'none', 'the run was stopped');
  const skipped = task.steps.filter((s) => !started.has(s.id));
  if (skipped.length > 0)
    throw new StepFailedError(skipped[0]!.id, 'it never became ready (a step it waits for did not finish)');
}
