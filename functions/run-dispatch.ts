import type { InvocationContext } from '@azure/functions';
import { refit } from '../src/refit';

/** The runs queue trigger: hands a Queued run to the executor (idempotent: redeliveries do nothing). */
export async function runDispatch(message: unknown, _context: InvocationContext): Promise<void> {
  const r = await refit();
  await r.runs.dispatch(typeof message === 'string' ? (JSON.parse(message) as unknown) : message);
}
