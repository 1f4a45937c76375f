import type { InvocationContext, Timer } from '@azure/functions';
import { refit } from '../src/refit';
import { evaluateTimers } from '../src/triggers/timers';

/** Once a minute in Azure, every 5 s locally: starts the runs whose timer occurrences are due (each exactly once). */
export async function timerTriggers(_timer: Timer, _context: InvocationContext): Promise<void> {
  const r = await refit();
  await evaluateTimers(new Date(), { tasks: r.tasks, dedupe: r.dedupe, decisions: r.decisions });
}
