import { completionMark, logStamp } from '../../../src/runs/run-log';

describe('run-log', () => {
  describe('completionMark', () => {
    it.each([
      ['Succeeded', 'successful'],
      ['Failed', 'failed'],
      ['Timeout', 'timedout'],
      ['Canceled', 'canceled'],
      ['Error', 'internalerror'],
    ] as const)('marks %s as %s, the values az reads', (status, mark) => {
      expect(completionMark(status)).toBe(mark);
    });
  });

  describe('logStamp', () => {
    it('stamps lines like ACR', () => {
      expect(logStamp(new Date('2026-11-23T02:30:05.999Z'))).toBe('2026/11/23 02:30:05');
    });
  });
});
