import { formatRunId, parseRunId, runRowKey } from '../../../src/runs/run-id';

describe('run-id', () => {
  describe('formatRunId', () => {
    it.each([
      [1, 'aa1'],
      [9, 'aa9'],
      [10, 'aaa'],
      [31, 'aay'],
      [32, 'aa10'],
      [33, 'aa11'],
      [1024, 'aa100'],
    ])('numbers run %i as %s, like ACR (…cay, ca10)', (n, id) => {
      expect(formatRunId('aa', n)).toBe(id);
    });

    it('never uses letters that are easily misread', () => {
      const ids = Array.from({ length: 2000 }, (_, i) => formatRunId('ca', i + 1).slice(2)).join('');
      expect(ids).not.toMatch(/[ilo z]/);
    });
  });

  describe('parseRunId', () => {
    it('round-trips', () => {
      for (const n of [1, 2, 31, 32, 999, 123456789]) expect(parseRunId('aa', formatRunId('aa', n))).toBe(n);
    });

    it.each(['', 'aa', 'ab1', 'aa0', 'aa01', 'aaz', 'aa1/..', "aa1'", 'aaaaaaaaaaaaa', 'aayyyyyyyyyyy'])(
      'answers null for %j',
      (id) => {
        expect(parseRunId('aa', id)).toBeNull();
      },
    );
  });

  describe('runRowKey', () => {
    it('sorts newer runs first', () => {
      const keys = [1, 2, 32, 1000, 99999].map(runRowKey);
      expect([...keys].sort()).toEqual([...keys].reverse());
    });
  });
});
