import { Cron } from 'croner';
import type { TaskService } from '../tasks/task-service';
import type { DecisionLog, TriggerDecision } from './decisions';
import type { Dedupe } from './dedupe';

/** How far back a tick looks for occurrences it has not fired yet (covers a restart or a late tick). */
export const TIMER_LOOKBACK_MS = 2 * 60 * 1000;

/** The occurrences of `schedule` (UTC) after `from` and at or before `to`, oldest first. */
export function occurrences(schedule: string, from: Date, to: Date, limit = 1000): Date[] {
  const cron = new Cron(schedule, { timezone: 'UTC', paused: true });
  const out: Date[] = [];
  let next = cron.nextRun(from);
  while (next && next.getTime() <= to.getTime() && out.length < limit) {
    out.push(next);
    next = cron.nextRun(next);
  }
  return out;
}

/**
 * The timer tick: for every task's enabled timer, each occurrence due since the last tick (and after the timer was
 * set) starts exactly one run. The claim on (task, timer, occurrence) makes it so across restarts and instances.
 */
export async function evaluateTimers(
  now: Date,
  deps: { tasks: TaskService; dedupe: Dedupe; decisions: DecisionLog },
): Promise<TriggerDecision[]> {
  const decisions: TriggerDecision[] = [];
  for await (const stored of deps.tasks.store.all('hasTimers eq true')) {
    const task = stored.task;
    for (const timer of task.trigger.timerTriggers) {
      if (timer.status === 'Disabled') continue;
      const since = Math.max(
        Date.parse(task.timerSince[timer.name] ?? task.creationDate),
        now.getTime() - TIMER_LOOKBACK_MS,
      );
      for (const at of occurrences(timer.schedule, new Date(since), now)) {
        const occurrence = at.toISOString();
        const eventId = `${task.name}/${timer.name}/${occurrence}`;
        // Claim, queue, confirm: an occurrence whose run could not be queued is fired again on the next tick, and
        // one whose holder died is taken over once its lease ends (well inside the look-back).
        const claimed = await deps.dedupe.once(
          'timer',
          eventId.toLowerCase(),
          async () =>
            task.status === 'Disabled'
              ? null
              : deps.tasks.startRun(stored, {
                  kind: 'timer',
                  descriptor: { timerTriggerName: timer.name, scheduleOccurrence: occurrence },
                }),
          { confirmed: (run) => (run ? { runId: run.runId } : {}) },
        );
        if (claimed.status !== 'acted') continue;
        const run = claimed.value;
        if (!run) {
          decisions.push(
            await deps.decisions.record({
              source: 'timer',
              eventId,
              task: task.name,
              decision: 'skipped',
              reason: 'the task is disabled',
            }),
          );
          continue;
        }
        decisions.push(
          await deps.decisions.record({
            source: 'timer',
            eventId,
            task: task.name,
            decision: 'triggered',
            reason: `occurrence ${occurrence}`,
            runId: run.runId,
          }),
        );
      }
    }
  }
  return decisions;
}
