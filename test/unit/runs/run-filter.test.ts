import type { Run } from '../../../src/runs/run';
import { compileRunFilter } from '../../../src/runs/run-filter';

function run(fields: Partial<Run>): Run {
  return { runId: 'aa1', status: 'Succeeded', outputImages: [], ...fields } as unknown as Run;
}

const pushed = run({
  outputImages: [
    { registry: 'localhost:5000', repository: 'hello', tag: 'v1', digest: 'sha256:abc' },
    { registry: 'localhost:5000', repository: 'team/app', tag: null, digest: 'sha256:def' },
  ],
});

describe('run-filter', () => {
  describe('compileRunFilter', () => {
    it.each([
      ["status eq 'Succeeded'", "status eq 'Succeeded'"],
      ["TaskName eq 'build-app' and Status eq 'Failed'", "taskName eq 'build-app' and status eq 'Failed'"],
      ["runId eq 'aa1' or runId eq 'aa2'", "runId eq 'aa1' or runId eq 'aa2'"],
      [
        "(runType eq 'QuickBuild' or runType eq 'AutoBuild') and status eq 'Running'",
        "(runType eq 'QuickBuild' or runType eq 'AutoBuild') and status eq 'Running'",
      ],
      ["taskName eq 'it''s'", "taskName eq 'it''s'"],
      ["status ne 'Failed'", "status ne 'Failed'"],
      ["createTime gt '2026-01-31T10:00:00Z'", "createTime gt '2026-01-31T10:00:00.000Z'"],
      ['CreateTime ge 2026-01-31T10:00:00Z', "createTime ge '2026-01-31T10:00:00.000Z'"],
      ["finishTime lt datetime'2026-01-31T11:00:00+01:00'", "finishTime lt '2026-01-31T10:00:00.000Z'"],
      ['finishTime le 2026-01-31', "finishTime le '2026-01-31T00:00:00.000Z'"],
      [
        "createTime ge '2026-01-01T00:00:00Z' and createTime lt '2026-02-01T00:00:00Z' and status ne 'Canceled'",
        "createTime ge '2026-01-01T00:00:00.000Z' and createTime lt '2026-02-01T00:00:00.000Z' and status ne 'Canceled'",
      ],
    ])('turns %j into a table filter the table answers whole', (filter, query) => {
      const compiled = compileRunFilter(filter);
      expect(compiled.query).toBe(query);
      expect(compiled.matches).toBeUndefined();
    });

    it.each([
      ["contains(outputImageManifests, 'hello:v1')", true],
      ["contains(OutputImageManifests, 'hello@sha256:abc')", true],
      ["contains(outputImageManifests, 'localhost:5000/hello:v1')", true],
      ["contains(outputImageManifests, 'team/app@sha256:def')", true],
      ["contains(outputImageManifests, 'hello:v2')", false],
      ["contains(outputImageManifests, 'hello')", false],
      ["contains(outputImageManifests, 'ello:v1')", false],
      ["status eq 'Succeeded' and contains(outputImageManifests, 'hello:v1')", true],
      ["status eq 'Failed' and contains(outputImageManifests, 'hello:v1')", false],
      ["status eq 'Failed' or contains(outputImageManifests, 'hello:v1')", true],
    ])('evaluates %j on each run (it names a pushed image: %s)', (filter, expected) => {
      const compiled = compileRunFilter(filter);
      expect(compiled.query).toContain("outputImages ne '[]'");
      expect(compiled.matches!(pushed)).toBe(expected);
    });

    it('compares times and treats a missing finishTime as matching nothing, as the table does', () => {
      const { matches } = compileRunFilter(
        "contains(outputImageManifests, 'hello:v1') and (finishTime lt '2026-01-01T00:00:00Z' or createTime ge '2026-01-01T00:00:00Z')",
      );
      expect(matches!({ ...pushed, createTime: '2025-12-31T00:00:00.000Z', finishTime: undefined })).toBe(
        false,
      );
      expect(matches!({ ...pushed, createTime: '2026-01-02T00:00:00.000Z', finishTime: undefined })).toBe(
        true,
      );
      expect(
        matches!({
          ...pushed,
          createTime: '2025-12-30T00:00:00.000Z',
          finishTime: '2025-12-31T00:00:00.000Z',
        }),
      ).toBe(true);
    });

    it.each([
      ['', 'empty'],
      ["image eq 'x'", "cannot filter on 'image'"],
      ["status gt 'Failed'", "supports 'eq' and 'ne' after 'status', got 'gt'"],
      ["createTime has '2026-01-01'", "supports 'eq', 'ne', 'gt', 'ge', 'lt' and 'le' after 'createTime'"],
      ["createTime gt 'yesterday'", "'yesterday' after 'createTime gt' is not an ISO 8601 time"],
      ["contains(taskName, 'x')", 'contains only on outputImageManifests'],
      ['contains(outputImageManifests, x)', 'quoted image'],
      ["contains(outputImageManifests 'x')", "expects ','"],
      ["contains(outputImageManifests, 'x'", "missing a ')'"],
      ['status eq Failed', 'quoted value'],
      ["status eq 'Failed", 'unterminated'],
      ["(status eq 'Failed'", "missing a ')'"],
      ["status eq 'Failed' status", 'unexpected text'],
      ["status eq 'x' ; drop", "unexpected character ';'"],
    ])('rejects %j naming the problem', (filter, message) => {
      expect(() => compileRunFilter(filter)).toThrow(message);
    });
  });
});
