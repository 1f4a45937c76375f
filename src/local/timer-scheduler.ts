import type { Timer } from '@azure/functions';
import { Cron } from 'croner';
import type { TimerFunction } from '../../functions/definitions';
import { log } from '../log';
import { invocationContext, type HostContext } from './host-context';

/** Fires a timer function on its schedule (UTC), one call at a time; a failure is logged and the next tick comes. */
export function scheduleTimer(fn: TimerFunction, ctx: HostContext): Cron {
  let last: Date | undefined;
  const schedule = fn.localSchedule ?? fn.schedule;
  const cron: Cron = new Cron(schedule, { timezone: 'UTC', protect: true }, async () => {
    const timer: Timer = {
      isPastDue: false,
      schedule: { adjustForDST: false },
      scheduleStatus: {
        last: (last ?? new Date()).toISOString(),
        next: cron.nextRun()?.toISOString() ?? '',
        lastUpdated: new Date().toISOString(),
      },
    };
    last = new Date();
    const context = invocationContext(fn.name);
    try {
      await ctx.track(fn.handler(timer, context));
    } catch (err) {
      log.error('timer function failed', { function: fn.name, error: (err as Error).message });
    }
  });
  // Azure's runOnStartup: one call now, as its own tick (protect keeps it from overlapping a scheduled one).
  if (fn.runOnStartup) void cron.trigger();
  return cron;
}
