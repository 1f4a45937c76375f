// Property-based tests of the API's request parsers: whatever the body or query, each parser returns or refuses
// with Refit's own error (a precise 4xx), never a TypeError, RangeError or stack overflow, and never hangs.
import fc from 'fast-check';
import { RefitError } from '../../../src/errors';
import { parseWith } from '../../../src/http/validate';
import { compileRunFilter } from '../../../src/runs/run-filter';
import { checkDockerBuildRequest, newQuickBuildRun, parseRunRequest } from '../../../src/runs/schedule-run';
import {
  checkTaskFileRunRequest,
  newTaskFileRun,
  parseTaskFileRunRequest,
} from '../../../src/runs/task-file-run';
import { taskCreateSchema, taskUpdateSchema } from '../../../src/tasks/task-schema';
import {
  corpus,
  countReplay,
  mutated,
  mutatedText,
  nastyString,
  nastyValue,
  params,
  printCounts,
  refusesCleanly,
} from '../../support/fuzz';

const REGISTRY = '127.0.0.1:5000';
const KEY = Buffer.alloc(32, 7);

afterAll(() => printCounts('api-requests'));

/** Filters built from the grammar's own words, so that many are valid and the rest fail late. */
const filterText: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.constantFrom('runId', 'status', 'runType', 'taskName', 'TaskName', 'eq', 'ne', 'and', 'or', 'not'),
      fc.constantFrom('(', ')', "'", "''", ' ', '\t', '\u00a0'),
      fc.string({ maxLength: 8 }).map((s) => `'${s.replace(/'/g, "''")}'`),
      nastyString.map((s) => s.slice(0, 200)),
    ),
    { maxLength: 30 },
  )
  .map((words) => words.join(' '));

const deepFilter: fc.Arbitrary<string> = fc
  .nat({ max: 20_000 })
  .map((n) => `${'('.repeat(n)}status eq 'Failed'${')'.repeat(n)}`);

function filterCheck(filter: string): Promise<string | undefined> {
  return refusesCleanly(filter, () => compileRunFilter(filter).query, [RefitError]);
}

describe('run-filter (fuzzed)', () => {
  describe('runFilterToTableQuery', () => {
    it.each(corpus('run-filter').map((c) => [c.file, c]))('replays corpus case %s', async (_f, c) => {
      countReplay('runFilterToTableQuery', 1);
      await filterCheck(c.input as string);
    });

    it('returns a table filter or a ValidationError for any text, grammar words or deep parentheses', async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.string(), nastyString, filterText, deepFilter), async (filter) => {
          const query = await filterCheck(filter);
          // What it returns names only the known columns: a value can never close its quote and add a clause.
          if (query !== undefined)
            expect(query.replace(/'(?:[^']|'')*'/g, "''")).toMatch(
              /^[()\s]*(?:(?:runId|status|runType|taskName|createTime|finishTime|outputImages) (?:eq|ne|gt|ge|lt|le) ''[()\s]*(?:(?:and|or)[()\s]+)?)+$/,
            );
        }),
        params('runFilterToTableQuery', 300),
      );
    });
  });
});

const seedsOf = (name: string): unknown[] => corpus(name).map((c) => c.input);

describe('schedule-run (fuzzed)', () => {
  const check = (body: unknown) =>
    refusesCleanly(body, () => {
      const request = parseRunRequest(body);
      checkDockerBuildRequest(request, REGISTRY);
      return newQuickBuildRun(request, {
        runId: 'aa1',
        now: new Date(),
        homeRegistry: REGISTRY,
        secretKey: KEY,
      });
    }, [RefitError]);

  describe('parseRunRequest › checkDockerBuildRequest › newQuickBuildRun', () => {
    it.each(corpus('schedule-run').map((c) => [c.file, c]))('replays corpus case %s', async (_f, c) => {
      countReplay('DockerBuildRequest', 1);
      await check(c.input);
    });

    it('queues a run or refuses with a RefitError, for any JSON and for mutated real requests', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(nastyValue, mutated(seedsOf('schedule-run')), mutated(seedsOf('schedule-run'))),
          async (b) => {
            await check(b);
          },
        ),
        params('DockerBuildRequest', 400),
      );
    });
  });
});

describe('task-file-run (fuzzed)', () => {
  const check = (body: unknown) =>
    refusesCleanly(body, async () => {
      const type = (body as { type?: unknown } | null)?.type;
      const request = parseTaskFileRunRequest(
        body,
        type === 'FileTaskRunRequest' ? 'FileTaskRunRequest' : 'EncodedTaskRunRequest',
      );
      await checkTaskFileRunRequest(request, REGISTRY);
      return newTaskFileRun(request, { runId: 'aa1', now: new Date(), secretKey: KEY, runType: 'QuickRun' });
    }, [RefitError]);

  /** Encoded tasks whose YAML is itself mutated, so the check reaches the task-file loader. */
  const encodedTask = mutatedText([
    'version: v1.1.0\nsteps:\n  - id: a\n    cmd: $Registry/x {{.Values.tag | default "latest"}}\n  - build: -t x .\n    when: [a]\n',
    'steps:\n- push: ["{{.Run.Registry}}/a"]\n',
  ]).map((text) => ({
    type: 'EncodedTaskRunRequest',
    encodedTaskContent: Buffer.from(text).toString('base64'),
    platform: { os: 'Linux', architecture: 'amd64' },
  }));

  describe('parseTaskFileRunRequest › checkTaskFileRunRequest › newTaskFileRun', () => {
    it.each(corpus('task-file-run').map((c) => [c.file, c]))('replays corpus case %s', async (_f, c) => {
      countReplay('TaskFileRunRequest', 1);
      await check(c.input);
    });

    it('queues a run or refuses with a RefitError, for any JSON, mutated requests and mutated encoded tasks', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            nastyValue,
            mutated(seedsOf('task-file-run')),
            mutated(seedsOf('task-file-run')),
            encodedTask,
          ),
          async (b) => {
            await check(b);
          },
        ),
        params('TaskFileRunRequest', 300),
      );
    });
  });
});

describe('task-schema (fuzzed)', () => {
  const check = (body: unknown) =>
    refusesCleanly(body, () => {
      parseWith(taskCreateSchema, body, 'the task');
      return parseWith(taskUpdateSchema, body, 'the task update');
    }, [RefitError]);

  describe('taskCreateSchema and taskUpdateSchema', () => {
    it.each(corpus('task-schema').map((c) => [c.file, c]))('replays corpus case %s', async (_f, c) => {
      countReplay('taskCreateSchema/taskUpdateSchema', 1);
      await check(c.input);
    });

    it('parse or refuse with a ValidationError, for any JSON and for mutated real tasks', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(nastyValue, mutated(seedsOf('task-schema')), mutated(seedsOf('task-schema'))),
          async (b) => {
            await check(b);
          },
        ),
        params('taskCreateSchema/taskUpdateSchema', 400),
      );
    });
  });
});
