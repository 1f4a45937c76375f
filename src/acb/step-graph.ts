import { z } from 'zod';
import type { AcbStep, AcbTask } from './task-file';

/**
 * The step graph of a multi-step run as a state machine: pure (no I/O, no timers, no clock; `now` is passed in),
 * with a JSON-serialisable state, so the same semantics drive the local executor (in memory, see runner.ts) and a
 * run in Azure, where the state is stored with the run and advanced by one event per ended attempt.
 */

/** A step that failed the run. */
export class StepFailedError extends Error {
  constructor(
    readonly stepId: string,
    reason: string,
  ) {
    super(`failed to run step ID: ${stepId}: ${reason}`);
  }
}

/** How one attempt of a step ended. */
export interface AttemptEnd {
  /** Its exit code; null when it was killed. */
  readonly code: number | null;
  /** Its output (a tail is enough), matched against the step's retryOnErrors. */
  readonly output: string;
  /** What went wrong, when the output says it plainly (a registry that refused a pull, say). */
  readonly reason?: string;
  /** The attempt passed the step's timeout. */
  readonly timedOut?: boolean;
  /** The attempt could not run at all: its message. */
  readonly crash?: string;
  /** It was stopped (the graph stopped it, or the run was aborted). */
  readonly stopped?: boolean;
}

/** Where one step is: not started, running one attempt (or waiting its delay before it), or ended. */
export type StepStatus = 'waiting' | 'running' | 'succeeded' | 'ignored' | 'failed' | 'stopped';

/** The stored state of one step. */
export interface StepState {
  readonly id: string;
  readonly status: StepStatus;
  /** The run (0 … repeat) and the retry (0 … retries) of the current or last attempt. */
  readonly run: number;
  readonly retry: number;
  /** The key of the attempt running now; present only while status is 'running'. */
  readonly attempt?: string;
  /** Epoch ms of the step's first start (before its startDelay), for the elapsed time. */
  readonly startedAt?: number;
  /** The error of each failed run (after its retries), joined into the step's reason. */
  readonly errors: readonly string[];
}

/** JSON-serialisable state of a run's graph (stored between events in Azure). */
export interface GraphState {
  /** One entry per step of the task, in the task's order (an array: step IDs are user input, never object keys). */
  readonly steps: readonly StepState[];
  /** The IDs of the started steps, in the order they started. */
  readonly started: readonly string[];
  /** The first step that failed without ignoreErrors: the graph stops, and fails once nothing runs. */
  readonly failure?: { readonly stepId: string; readonly reason: string };
  /** Set once `finish` has been emitted. */
  readonly finished?: 'succeeded' | 'failed';
}

const stepStateSchema = z
  .object({
    id: z.string(),
    status: z.enum(['waiting', 'running', 'succeeded', 'ignored', 'failed', 'stopped']),
    run: z.number().int().min(0),
    retry: z.number().int().min(0),
    attempt: z.string().exactOptional(),
    startedAt: z.number().exactOptional(),
    errors: z.array(z.string()),
  })
  .refine((s) => (s.status === 'running') === (s.attempt !== undefined), {
    message: 'a step has an attempt exactly when it is running',
  });

/** The schema of a stored {@link GraphState}: a driver parses the state it reads back from storage with it. */
export const graphStateSchema = z.object({
  steps: z.array(stepStateSchema),
  started: z.array(z.string()),
  failure: z.object({ stepId: z.string(), reason: z.string() }).exactOptional(),
  finished: z.enum(['succeeded', 'failed']).exactOptional(),
}) satisfies z.ZodType<GraphState>;

/** What the driver must do next. */
export type GraphAction =
  | {
      /**
       * Start one attempt of the step after delaySeconds (startDelay before its first run, retryDelay before a
       * retry, 0 otherwise); `attempt` is unique within the step ("r0a1": run 0, retry 1); `lines` are written
       * when the attempt actually begins, after the delay.
       */
      readonly kind: 'start';
      readonly stepId: string;
      readonly attempt: string;
      readonly delaySeconds: number;
      readonly lines: readonly string[];
    }
  /** Abort that running attempt (or its delay); its end must still be reported (stopped: true). */
  | { readonly kind: 'stop'; readonly stepId: string; readonly attempt: string }
  | { readonly kind: 'finish'; readonly status: 'succeeded' }
  | { readonly kind: 'finish'; readonly status: 'failed'; readonly error: StepFailedError };

/** One transition: the new state, what to do, and log lines to write now. */
export interface Transition {
  readonly state: GraphState;
  readonly actions: readonly GraphAction[];
  readonly lines: readonly string[];
}

/** A transition being built: the state's steps copied so that the input state is never changed. */
interface Draft {
  steps: StepState[];
  started: string[];
  failure?: { stepId: string; reason: string };
  finished?: 'succeeded' | 'failed';
  actions: GraphAction[];
  lines: string[];
}

const NEVER_READY = 'it never became ready (a step it waits for did not finish)';

function attemptKey(run: number, retry: number): string {
  return `r${run}a${retry}`;
}

function elapsed(step: StepState, now: number): string {
  return ((now - (step.startedAt ?? now)) / 1000).toFixed(3);
}

function draftOf(state: GraphState): Draft {
  return {
    steps: [...state.steps],
    started: [...state.started],
    ...(state.failure ? { failure: { ...state.failure } } : {}),
    ...(state.finished ? { finished: state.finished } : {}),
    actions: [],
    lines: [],
  };
}

function transitionOf(d: Draft): Transition {
  const state: GraphState = {
    steps: d.steps,
    started: d.started,
    ...(d.failure ? { failure: d.failure } : {}),
    ...(d.finished ? { finished: d.finished } : {}),
  };
  return { state, actions: d.actions, lines: d.lines };
}

function setStep(d: Draft, next: StepState): void {
  d.steps = d.steps.map((s) => (s.id === next.id ? next : s));
}

/** Emits the start of run `run`, retry `retry` of a step that is (or becomes) running. */
function startAttempt(
  d: Draft,
  step: AcbStep,
  current: StepState,
  run: number,
  retry: number,
  now: number,
): void {
  const first = current.status === 'waiting';
  const attempt = attemptKey(run, retry);
  const lines: string[] = [];
  let delaySeconds = 0;
  if (first) {
    d.started.push(step.id);
    if (step.startDelay > 0) {
      d.lines.push(`Step ID: ${step.id} starts after a delay of ${step.startDelay} seconds`);
      delaySeconds = step.startDelay;
    }
    lines.push(
      `Executing step ID: ${step.id}. Timeout(sec): ${step.timeout}, Working directory: '${step.workingDirectory}', Network: '${step.network ?? ''}'`,
    );
  } else if (retry > 0) {
    delaySeconds = step.retryDelay;
  }
  if (retry === 0 && step.repeat > 0) lines.push(`Step ID: ${step.id}: run ${run + 1} of ${step.repeat + 1}`);
  setStep(d, {
    ...current,
    status: 'running',
    run,
    retry,
    attempt,
    ...(first ? { startedAt: now } : {}),
  });
  d.actions.push({ kind: 'start', stepId: step.id, attempt, delaySeconds, lines });
}

/** Starts every step whose dependencies all ended successfully or with ignored errors, in the task's order. */
function startReady(d: Draft, task: AcbTask, now: number): void {
  if (d.failure) return;
  const done = new Set(
    d.steps.filter((s) => s.status === 'succeeded' || s.status === 'ignored').map((s) => s.id),
  );
  for (const step of task.steps) {
    const current = d.steps.find((s) => s.id === step.id);
    if (!current || current.status !== 'waiting' || !step.dependsOn.every((dep) => done.has(dep))) continue;
    startAttempt(d, step, current, 0, 0, now);
  }
}

/** Emits `finish` once nothing runs any more. */
function finishIfIdle(d: Draft): void {
  if (d.finished || d.steps.some((s) => s.status === 'running')) return;
  if (d.failure) {
    d.finished = 'failed';
    d.actions.push({
      kind: 'finish',
      status: 'failed',
      error: new StepFailedError(d.failure.stepId, d.failure.reason),
    });
    return;
  }
  const skipped = d.steps.find((s) => s.status === 'waiting');
  if (skipped) {
    d.finished = 'failed';
    d.failure = { stepId: skipped.id, reason: NEVER_READY };
    d.actions.push({ kind: 'finish', status: 'failed', error: new StepFailedError(skipped.id, NEVER_READY) });
    return;
  }
  d.finished = 'succeeded';
  d.actions.push({ kind: 'finish', status: 'succeeded' });
}

/** The error text of a failed attempt, as the run's error names it. */
function attemptError(step: AcbStep, end: AttemptEnd): string {
  if (end.crash !== undefined) return end.crash;
  if (end.timedOut) return `the step timed out after ${step.timeout} seconds`;
  if (end.stopped) return 'the step was stopped';
  return `exit code ${end.code ?? 'none (killed)'}${end.reason ? `: ${end.reason}` : ''}`;
}

/** Starts a task's graph: the steps that wait for nothing start at once. */
export function startGraph(task: AcbTask, now: number): Transition {
  const d = draftOf({
    steps: task.steps.map((s) => ({ id: s.id, status: 'waiting', run: 0, retry: 0, errors: [] })),
    started: [],
  });
  startReady(d, task, now);
  finishIfIdle(d);
  return transitionOf(d);
}

/**
 * An attempt ended. Idempotent: an end for an attempt that is not running (a repeated or stale report) returns the
 * state unchanged with no actions and no lines.
 */
export function attemptEnded(
  task: AcbTask,
  state: GraphState,
  stepId: string,
  attempt: string,
  end: AttemptEnd,
  now: number,
): Transition {
  const current = state.steps.find((s) => s.id === stepId);
  const step = task.steps.find((s) => s.id === stepId);
  if (!current || !step || current.status !== 'running' || current.attempt !== attempt)
    return { state, actions: [], lines: [] };
  const d = draftOf(state);

  if (d.failure) {
    // The graph is stopping: whatever this attempt did, the step counts as stopped and nothing more starts.
    setStep(d, { ...withoutAttempt(current), status: 'stopped' });
    d.lines.push(`Step ID: ${step.id} was stopped: step ${d.failure.stepId} failed`);
    finishIfIdle(d);
    return transitionOf(d);
  }

  const succeeded = end.crash === undefined && end.code === 0;
  let errors = current.errors;
  if (!succeeded) {
    const error = attemptError(step, end);
    const retryable =
      step.retryOnErrors.length === 0 || step.retryOnErrors.some((e) => end.output.includes(e));
    // A stopped attempt is never retried: someone meant it to end.
    if (!end.stopped && retryable && current.retry < step.retries) {
      d.lines.push(
        `Step ID: ${step.id} failed (${error}); retry ${current.retry + 1} of ${step.retries} in ${step.retryDelay} seconds`,
      );
      startAttempt(d, step, current, current.run, current.retry + 1, now);
      return transitionOf(d);
    }
    errors = [...errors, error];
  }
  // A failed run does not end the step: every run of 1 + repeat is made, and the step fails if any failed.
  if (current.run < step.repeat) {
    startAttempt(d, step, { ...current, errors }, current.run + 1, 0, now);
    return transitionOf(d);
  }

  const ended = { ...withoutAttempt(current), errors };
  if (errors.length === 0) {
    d.lines.push(
      `Step ID: ${step.id} marked as successful (elapsed time in seconds: ${elapsed(current, now)})`,
    );
    setStep(d, { ...ended, status: 'succeeded' });
  } else if (step.ignoreErrors) {
    d.lines.push(
      `Step ID: ${step.id} failed and its errors are ignored (ignoreErrors): ${errors.join('; ')}`,
    );
    setStep(d, { ...ended, status: 'ignored' });
  } else {
    d.lines.push(`Step ID: ${step.id} marked as failed (elapsed time in seconds: ${elapsed(current, now)})`);
    setStep(d, { ...ended, status: 'failed' });
    d.failure = { stepId: step.id, reason: errors.join('; ') };
    for (const { stepId: other, attempt: key } of runningAttempts(d))
      d.actions.push({ kind: 'stop', stepId: other, attempt: key });
  }
  startReady(d, task, now);
  finishIfIdle(d);
  return transitionOf(d);
}

function withoutAttempt(step: StepState): StepState {
  const { attempt: _, ...rest } = step;
  return rest;
}

/** The steps running now with their attempt keys (what a driver must stop when the whole run is canceled). */
export function runningAttempts(state: GraphState): { stepId: string; attempt: string }[] {
  return state.steps.flatMap((s) =>
    s.status === 'running' && s.attempt !== undefined ? [{ stepId: s.id, attempt: s.attempt }] : [],
  );
}
