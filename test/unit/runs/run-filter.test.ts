import { runFilterToTableQuery } from '../../../src/runs/run-filter';

describe('run-filter', () => {
  describe('runFilterToTableQuery', () => {
    it.each([
      ["status eq 'Succeeded'", "status eq 'Succeeded'"],
      ["TaskName eq 'build-app' and Status eq 'Failed'", "taskName eq 'build-app' and status eq 'Failed'"],
      ["runId eq 'aa1' or runId eq 'aa2'", "runId eq 'aa1' or runId eq 'aa2'"],
      [
        "(runType eq 'QuickBuild' or runType eq 'AutoBuild') and status eq 'Running'",
        "(runType eq 'QuickBuild' or runType eq 'AutoBuild') and status eq 'Running'",
      ],
      ["taskName eq 'it''s'", "taskName eq 'it''s'"],
    ])('turns %j into a table filter', (filter, query) => {
      expect(runFilterToTableQuery(filter)).toBe(query);
    });

    it.each([
      ['', 'empty'],
      ["image eq 'x'", "cannot filter on 'image'"],
      ["status ne 'Failed'", "supports only 'eq'"],
      ['status eq Failed', 'quoted value'],
      ["status eq 'Failed", 'unterminated'],
      ["(status eq 'Failed'", "missing a ')'"],
      ["status eq 'Failed' status", 'unexpected text'],
      ["status eq 'x' ; drop", "unexpected character ';'"],
    ])('rejects %j naming the problem', (filter, message) => {
      expect(() => runFilterToTableQuery(filter)).toThrow(message);
    });
  });
});
