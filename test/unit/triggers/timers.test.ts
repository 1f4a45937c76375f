import { occurrences } from '../../../src/triggers/timers';

const at = (iso: string): Date => new Date(iso);

describe('timers', () => {
  describe('occurrences', () => {
    it('gives one occurrence per minute for a five-field every-minute schedule', () => {
      expect(
        occurrences('* * * * *', at('2026-11-23T10:00:30Z'), at('2026-11-23T10:03:00Z')).map((d) =>
          d.toISOString(),
        ),
      ).toEqual(['2026-11-23T10:01:00.000Z', '2026-11-23T10:02:00.000Z', '2026-11-23T10:03:00.000Z']);
    });

    it('reads six fields as NCRONTAB, seconds first', () => {
      expect(
        occurrences('*/20 * * * * *', at('2026-11-23T10:00:00Z'), at('2026-11-23T10:01:00Z')).map((d) =>
          d.toISOString(),
        ),
      ).toEqual(['2026-11-23T10:00:20.000Z', '2026-11-23T10:00:40.000Z', '2026-11-23T10:01:00.000Z']);
    });

    it('is in UTC (09:30 Mon–Fri, the az example)', () => {
      const monday = occurrences('30 9 * * 1-5', at('2026-11-22T00:00:00Z'), at('2026-11-24T00:00:00Z')).map(
        (d) => d.toISOString(),
      );
      expect(monday).toEqual(['2026-11-23T09:30:00.000Z']);
    });

    it('excludes the start and includes the end, so consecutive windows never repeat an occurrence', () => {
      const a = occurrences('* * * * *', at('2026-11-23T10:00:00Z'), at('2026-11-23T10:02:00Z'));
      const b = occurrences('* * * * *', at('2026-11-23T10:02:00Z'), at('2026-11-23T10:04:00Z'));
      expect([...a, ...b].map((d) => d.toISOString())).toEqual([
        '2026-11-23T10:01:00.000Z',
        '2026-11-23T10:02:00.000Z',
        '2026-11-23T10:03:00.000Z',
        '2026-11-23T10:04:00.000Z',
      ]);
    });

    it('gives nothing when nothing is due', () => {
      expect(occurrences('0 0 1 1 *', at('2026-11-23T10:00:00Z'), at('2026-11-23T11:00:00Z'))).toEqual([]);
    });
  });
});
