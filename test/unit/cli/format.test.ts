import { runRow, table, triggerOf, tsv, RUN_COLUMNS, type RunResource } from '../../../src/cli/format';

const run = (properties: Partial<RunResource['properties']>): RunResource => ({
  name: 'aa1',
  properties: { runId: 'aa1', status: 'Succeeded', ...properties },
});

describe('format', () => {
  describe('triggerOf', () => {
    it.each([
      [{}, 'Manual'],
      [{ sourceTrigger: { eventType: 'commit' } }, 'Commit'],
      [{ sourceTrigger: { eventType: 'pullrequest' } }, 'Pull Request'],
      [{ timerTrigger: { timerTriggerName: 't1' } }, 'Timer'],
      [{ imageUpdateTrigger: { id: 'x' } }, 'Image Update'],
      [{ timerTrigger: {}, imageUpdateTrigger: {} }, 'Timer'],
    ])('%j → %s', (properties, trigger) => {
      expect(triggerOf(run(properties))).toBe(trigger);
    });
  });

  describe('runRow', () => {
    it("gives the seed's columns, STARTED to the second and DURATION as HH:MM:SS", () => {
      const row = runRow(
        run({
          task: 'build-app',
          platform: { os: 'Linux' },
          startTime: '2026-11-23T02:30:05.123Z',
          finishTime: '2026-11-23T03:31:07.9Z',
        }),
      );
      expect(row).toEqual([
        'aa1',
        'build-app',
        'linux',
        'Succeeded',
        'Manual',
        '2026-11-23T02:30:05Z',
        '01:01:03',
      ]);
    });

    it('leaves DURATION empty while a run is going', () => {
      expect(runRow(run({ status: 'Running', startTime: '2026-11-23T02:30:05Z' }))[6]).toBe('');
    });
  });

  describe('table', () => {
    it('aligns columns under a line of dashes, as az does', () => {
      const out = table(RUN_COLUMNS, [
        ['aa1', '', 'linux', 'Succeeded', 'Manual', '2026-11-23T02:30:05Z', '00:00:01'],
      ]);
      expect(out.split('\n')).toEqual([
        'RUN ID  TASK  PLATFORM  STATUS     TRIGGER  STARTED               DURATION',
        '------  ----  --------  ---------  -------  --------------------  --------',
        'aa1           linux     Succeeded  Manual   2026-11-23T02:30:05Z  00:00:01',
      ]);
    });
  });

  describe('tsv', () => {
    it('joins values with tabs, no header', () => {
      expect(
        tsv([
          ['a', 'b'],
          ['c', ''],
        ]),
      ).toBe('a\tb\nc\t');
    });
  });
});
