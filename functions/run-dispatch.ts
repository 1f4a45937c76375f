import type { InvocationContext } from '@azure/functions';
import { refit } from '../src/refit';

function parsed(message: unknown): unknown {
  return typeof message === 'string' ? (JSON.parse(message) as unknown) : message;
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
