import { completionMark, logStamp, maskSecrets } from '../../../src/runs/run-log';

describe('run-log', () => {
  describe('maskSecrets', () => {
    it('replaces every occurrence of every secret', () => {
      expect(maskSecrets('a=s3cret b=s3cret c=tok', ['s3cret', 'tok', ''])).toBe(
        'a=************* b=************* c=*************',
      );
    });
  });

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
