import type { TimerFunction } from '../../../functions/definitions';
import type { HostContext } from '../../../src/local/host-context';
import { scheduleTimer } from '../../../src/local/timer-scheduler';

const ctx = {
  options: {},
  track: <T>(promise: Promise<T>): Promise<T> => promise,
  wake: () => undefined,
} as unknown as HostContext;

describe('local/timer-scheduler', () => {
  describe('scheduleTimer', () => {
    it('calls a runOnStartup function once at start, as Azure does, besides its schedule', async () => {
      let resolveCalled: (name: string) => void = () => undefined;
      const called = new Promise<string>((resolve) => (resolveCalled = resolve));
      const fn: TimerFunction = {
        kind: 'timer',
        name: 'daily',
        // Once a year: only the start-up call can happen during the test.
        schedule: '0 0 0 1 1 *',
        runOnStartup: true,
        handler: async (_timer, context) => resolveCalled(context.functionName),
      };
      const cron = scheduleTimer(fn, ctx);
      try {
        await expect(called).resolves.toBe('daily');
        expect(cron.nextRun()!.getTime()).toBeGreaterThan(Date.now());
      } finally {
        cron.stop();
      }
    });
  });
});
