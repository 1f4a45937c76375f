import {
  attemptEnded,
  startGraph,
  StepFailedError,
  type AttemptEnd,
  type GraphAction,
  type GraphState,
  type Transition,
} from './step-graph';
import type { AcbStep, AcbTask } from './task-file';

export { StepFailedError } from './step-graph';

/** How one attempt of a step ended: its exit code (null when killed) and its output (for retryOnErrors). */
export interface AttemptResult {
  readonly code: number | null;
  readonly output: string;
  /** What went wrong, when the attempt's output says it plainly (a registry that refused a pull, say). */
  readonly reason?: string;
}

/** Runs one attempt of a step; `signal` aborts it (the run failed elsewhere, was canceled, or the step timed out). */
export type RunAttempt = (step: AcbStep, signal: AbortSignal) => Promise<AttemptResult>;

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

type StartAction = Extract<GraphAction, { kind: 'start' }>;

/**
 * Runs a task's step graph as acb does, in this process: a thin driver of the step-graph machine (step-graph.ts,
 * which holds the semantics: when, parallel steps, startDelay, repeat, retries, retryOnErrors, ignoreErrors, the
 * first failure stopping the rest). Each attempt gets its own AbortController (what a `stop` aborts) and the step's
 * timeout; its end is fed back to the machine. When `options.signal` aborts (a cancel or the run's timeout), every
 * attempt is stopped, their ends are no longer reported, and the run fails once they have all returned.
 */
export async function runGraph(task: AcbTask, attempt: RunAttempt, options: RunGraphOptions): Promise<void> {
  const sleep = options.sleep ?? defaultSleep;
  if (options.signal.aborted) throw new StepFailedError('none', 'the run was stopped');
  const steps = new Map(task.steps.map((s) => [s.id, s]));
  const stops = new Map<string, AbortController>();
  const running = new Set<Promise<void>>();
  const key = (stepId: string, attemptKey: string): string => JSON.stringify([stepId, attemptKey]);
  let state: GraphState | undefined;
  let finish: Extract<GraphAction, { kind: 'finish' }> | undefined;

  /** One attempt: its delay, its lines once it begins, then the attempt itself within the step's timeout. */
  const runAttempt = async (step: AcbStep, action: StartAction, signal: AbortSignal): Promise<AttemptEnd> => {
    // No sleep for no delay: the attempt then begins in the same tick as its start (steps started together begin
    // in the task's order, and their lines come in that order).
    if (action.delaySeconds > 0) await sleep(action.delaySeconds * 1000, signal);
    if (signal.aborted) return { code: null, output: '', stopped: true };
    for (const line of action.lines) options.log(line);
    const timeout = AbortSignal.timeout(step.timeout * 1000);
    const flags = (): Pick<AttemptEnd, 'timedOut' | 'stopped'> => ({
      ...(timeout.aborted ? { timedOut: true } : {}),
      ...(signal.aborted ? { stopped: true } : {}),
    });
    try {
      const result = await attempt(step, AbortSignal.any([signal, timeout]));
      return { ...result, ...flags() };
    } catch (err) {
      return { code: null, output: '', crash: (err as Error).message, ...flags() };
    }
  };

  const start = (action: StartAction): void => {
    const step = steps.get(action.stepId)!;
    const stop = new AbortController();
    const id = key(action.stepId, action.attempt);
    stops.set(id, stop);
    const p: Promise<void> = runAttempt(step, action, AbortSignal.any([options.signal, stop.signal]))
      .then((end) => {
        stops.delete(id);
        // Once the run is aborted, nothing more is decided: the attempts only have to return.
        if (options.signal.aborted || !state) return;
        apply(attemptEnded(task, state, action.stepId, action.attempt, end, Date.now()));
      })
      .finally(() => running.delete(p));
    running.add(p);
  };

  const apply = (t: Transition): void => {
    state = t.state;
    for (const line of t.lines) options.log(line);
    for (const action of t.actions) {
      if (action.kind === 'start') start(action);
      else if (action.kind === 'stop') stops.get(key(action.stepId, action.attempt))?.abort();
      else finish = action;
    }
  };

  apply(startGraph(task, Date.now()));
  while (running.size > 0) await Promise.race(running);
  const failure = state?.failure;
  if (finish?.status === 'failed') throw finish.error;
  if (failure) throw new StepFailedError(failure.stepId, failure.reason);
  if (options.signal.aborted)
    throw new StepFailedError(state?.started.at(-1) ?? 'none', 'the run was stopped');
  if (!finish) throw new Error('the step graph ended without finishing');
}
