import {
  BACKOFF_BASE_SECONDS,
  BACKOFF_CAP_SECONDS,
  backoffSeconds,
  initialState,
  mayGet,
  pullReserve,
  RETRY_AFTER_CAP_SECONDS,
} from '../../../src/watches/registry-budget';

describe('watches/registry-budget', () => {
  describe('backoffSeconds', () => {
    it.each([
      [1, BACKOFF_BASE_SECONDS],
      [2, BACKOFF_BASE_SECONDS * 2],
      [3, BACKOFF_BASE_SECONDS * 4],
      [6, BACKOFF_BASE_SECONDS * 32],
      [40, BACKOFF_CAP_SECONDS],
    ])(
      'doubles its ceiling per consecutive failure up to the cap (failure %p: %p s)',
      (failures, ceiling) => {
        expect(backoffSeconds(failures, undefined, () => 0.999999)).toBeCloseTo(ceiling, 2);
      },
    );

    it('draws with full jitter: anywhere from 0 to the ceiling', () => {
      expect(backoffSeconds(3, undefined, () => 0)).toBe(0);
      expect(backoffSeconds(3, undefined, () => 0.25)).toBe(BACKOFF_BASE_SECONDS);
      const draws = Array.from({ length: 1000 }, () => backoffSeconds(3, undefined));
      expect(Math.min(...draws)).toBeLessThan(BACKOFF_BASE_SECONDS);
      expect(Math.max(...draws)).toBeGreaterThan(BACKOFF_BASE_SECONDS * 3);
    });

    it("never pauses for less than the registry's Retry-After", () => {
      expect(backoffSeconds(1, 30, () => 0)).toBe(30);
      expect(backoffSeconds(1, 30, () => 0.999999)).toBe(30);
      expect(backoffSeconds(8, 30, () => 0.999999)).toBeCloseTo(BACKOFF_BASE_SECONDS * 128, 2);
    });

    it('caps a Retry-After at a day, so that no answer pauses a registry for ever', () => {
      expect(backoffSeconds(1, 10 ** 9, () => 0)).toBe(RETRY_AFTER_CAP_SECONDS);
    });
  });

  describe('pullReserve', () => {
    it.each([
      [100, 10],
      [200, 20],
      [5, 1],
      [1, 1],
    ])('keeps a tenth of a %p-pull window (at least one) for builds: %p', (limit, reserve) => {
      expect(pullReserve(limit)).toBe(reserve);
    });
  });

  describe('mayGet', () => {
    const budget = (remaining: number, limit = 100) => ({
      ...initialState('docker.io'),
      budget: { limit, remaining, windowSeconds: 21600, seenAt: 0 },
    });

    it('spends GETs freely on a registry that states no budget (unlimited)', () => {
      expect(mayGet(initialState('ghcr.io'))).toBe(true);
    });

    it.each([
      [100, true],
      [11, true],
      [10, false],
      [0, false],
    ])('with %p of 100 pulls left: %p', (remaining, allowed) => {
      expect(mayGet(budget(remaining))).toBe(allowed);
    });
  });
});
