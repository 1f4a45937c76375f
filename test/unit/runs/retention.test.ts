import { isExpired } from '../../../src/runs/retention';
import type { RetentionCandidate } from '../../../src/runs/run-store';

const cutoff = new Date('2026-10-30T00:00:00.000Z');
const run = (overrides: Partial<RetentionCandidate>): RetentionCandidate => ({
  runId: 'aa1',
  status: 'Succeeded',
  createTime: '2026-10-01T00:00:00.000Z',
  finishTime: '2026-10-01T00:10:00.000Z',
  isArchiveEnabled: false,
  etag: 'W/"1"',
  ...overrides,
});

describe('runs/retention', () => {
  describe('isExpired', () => {
    it.each<[string, Partial<RetentionCandidate>, boolean]>([
      ['a run that finished before the cutoff', {}, true],
      ['each final status', { status: 'Timeout' }, true],
      ['an older record with no archive flag', { isArchiveEnabled: undefined }, true],
      ['an archived run', { isArchiveEnabled: true }, false],
      ['a Queued run, however old', { status: 'Queued', finishTime: undefined }, false],
      ['a Running run, however old', { status: 'Running', finishTime: undefined }, false],
      ['a Started run', { status: 'Started', finishTime: undefined }, false],
      [
        'a run created before the cutoff that finished after it',
        { finishTime: '2026-10-30T00:00:01.000Z' },
        false,
      ],
      ['a run that finished exactly at the cutoff', { finishTime: '2026-10-30T00:00:00.000Z' }, false],
      [
        'a finished run with no finish time, created before the cutoff',
        { status: 'Error', finishTime: undefined },
        true,
      ],
    ])('%s → %s', (_name, overrides, expired) => {
      expect(isExpired(run(overrides), cutoff)).toBe(expired);
    });
  });
});
