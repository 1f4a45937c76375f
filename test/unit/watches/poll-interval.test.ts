import { pollDelayMs } from '../../../src/watches/poll-interval';

describe('watches/poll-interval', () => {
  describe('pollDelayMs', () => {
    const window = { intervalMinSeconds: 300, intervalMaxSeconds: 600 };

    it.each([
      [0, 300_000],
      [0.5, 450_000],
      [0.999999, 599_999.7],
    ])('maps a draw of %p into [min, max] seconds (%p ms)', (draw, expected) => {
      expect(pollDelayMs(window, () => draw)).toBeCloseTo(expected, -1);
    });

    it('spreads references watched at the same moment over the whole window', () => {
      const delays = Array.from({ length: 2000 }, () => pollDelayMs(window));
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(300_000);
      expect(Math.max(...delays)).toBeLessThanOrEqual(600_000);
      // Each fifth of the window gets its share (a constant or a clustered draw would fail this).
      const fifths = [0, 0, 0, 0, 0];
      for (const d of delays) fifths[Math.min(4, Math.floor((d - 300_000) / 60_000))]!++;
      for (const count of fifths) expect(count).toBeGreaterThan(250);
    });

    it('is exactly the interval when min equals max', () => {
      expect(pollDelayMs({ intervalMinSeconds: 7, intervalMaxSeconds: 7 }, Math.random)).toBe(7000);
    });
  });
});
