import type { InvocationContext, Timer } from '@azure/functions';
import { log } from '../src/log';
import { refit } from '../src/refit';

/** A message's JSON; text that is not JSON is passed on as it is (the handler drops what it cannot read). */
function parsed(message: unknown): unknown {
  if (typeof message !== 'string') return message;
  try {
    return JSON.parse(message) as unknown;
  } catch {
    return message;
  }
}

/** The runs queue trigger: hands a Queued run to the executor (idempotent: redeliveries do nothing). */
export async function runDispatch(message: unknown, _context: InvocationContext): Promise<void> {
  const r = await refit();
  await r.runs.dispatch(parsed(message));
}

/**
 * The runs poison-queue trigger: a message whose dispatch failed every try (the host moved it to runs-poison) ends
 * its Queued runs Error with the reason and frees their tasks' Queued slots (idempotent as well).
 */
export async function runPoisoned(message: unknown, _context: InvocationContext): Promise<void> {
  const r = await refit();
  await r.runs.failPoisoned(parsed(message));
}

/**
 * The run-completions queue trigger: a run's end as where it ran reported it (in Azure, its container group); the
 * outcome is recorded through the same finish path as a local run's (idempotent: a repeat only frees again).
 */
export async function runCompletion(message: unknown, _context: InvocationContext): Promise<void> {
  const r = await refit();
  await r.runs.complete(parsed(message));
}

/**
 * Once a minute: settles active runs whose end was never reported (a lost completion message, a container group
 * that vanished or failed to provision, a timeout) and lets the executor remove what finished runs left behind.
 */
export async function reconcileRuns(_timer: Timer, _context: InvocationContext): Promise<void> {
  const r = await refit();
  const report = await r.runs.reconcile({ startup: false });
  if (report.failed || report.requeued || report.completed) log.info('runs reconciled', { ...report });
}
