import { BatchedInserts } from '../storage/batched-inserts';
import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { retryOnConflict, statusOf } from '../storage/write-conflicts';
import { checkContinuationToken } from '../storage/continuation-token';
import { names, type Storage } from '../storage/storage';
import { FINISHED, type Run, type RunStatus } from './run';
import { formatRunId, parseRunId, runRowKey } from './run-id';
import { compileRunFilter } from './run-filter';

const PARTITION = 'run';
const JSON_FIELDS = [
  'imageUpdateTrigger',
  'baseImageDependencies',
  'platform',
  'agentConfiguration',
  'outputImages',
  'spec',
  'sourceTrigger',
  'timerTrigger',
  'costEstimate',
] as const;

type RunEntity = Record<string, unknown> & { partitionKey: string; rowKey: string };

/** Rows read per request when runs are checked here (a `contains` filter). */
const SCAN_PAGE = 200;
/** Rows checked here for one page of a `contains` filter before the page is returned as it is. */
const MAX_SCANNED = 2000;

/**
 * The `$skipToken` of a filter checked here: where the next page starts, as a row key. The table's own tokens are
 * opaque (each service encodes them its own way), so a page that ends mid-way through the table's page resumes by
 * key instead; `scan` marks the token so that one is never taken for the other.
 */
const scanTokenSchema = z.object({ scan: z.literal(1), nextRowKey: z.string().regex(/^\d{1,20}$/) });

function scanToken(nextRowKey: string): string {
  return Buffer.from(JSON.stringify({ nextPartitionKey: PARTITION, nextRowKey, scan: 1 })).toString('base64');
}

function scanResume(token: string): string {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64').toString('latin1'));
  } catch {
    decoded = undefined;
  }
  const parsed = scanTokenSchema.safeParse(decoded);
  if (!parsed.success)
    throw new ValidationError(
      `$skipToken '${token.slice(0, 100)}' is not a token from a nextLink of this $filter`,
      '$skipToken',
    );
  return parsed.data.nextRowKey;
}

/** The row key after `rowKey`: the next older run (row keys are fixed-width numbers). */
function rowKeyAfter(rowKey: string): string {
  return String(Number(rowKey) + 1).padStart(rowKey.length, '0');
}

function toEntity(run: Run, prefix: string): RunEntity {
  const entity: RunEntity = {
    partitionKey: PARTITION,
    rowKey: runRowKey(parseRunId(prefix, run.runId) ?? 0),
  };
  for (const [key, value] of Object.entries(run)) {
    if (value === undefined) continue;
    entity[key] = (JSON_FIELDS as readonly string[]).includes(key) ? JSON.stringify(value) : value;
  }
  entity.taskName ??= '';
  return entity;
}

function fromEntity(entity: TableEntityResult<Record<string, unknown>>): Run {
  const run: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entity)) {
    if (
      key === 'partitionKey' ||
      key === 'rowKey' ||
      key === 'etag' ||
      key === 'timestamp' ||
      key.startsWith('odata')
    )
      continue;
    run[key] = (JSON_FIELDS as readonly string[]).includes(key) ? JSON.parse(value as string) : value;
  }
  if (run.taskName === '') delete run.taskName;
  return run as unknown as Run;
}

/** What the retention purge reads of a run: enough to decide, and the ETag to delete it only if unchanged. */
export interface RetentionCandidate {
  readonly runId: string;
  readonly status: RunStatus;
  readonly createTime: string;
  readonly finishTime: string | undefined;
  readonly isArchiveEnabled: boolean | undefined;
  readonly etag: string;
}

/** A run together with the ETag it was read at, for conditional updates. */
export interface VersionedRun {
  readonly run: Run;
  readonly etag: string;
}

/** One page of runs, newest first. */
export interface RunPage {
  readonly runs: Run[];
  readonly continuationToken: string | undefined;
}

/** The runs table: run IDs, records, conditional updates, listing. */
export class RunStore {
  private readonly runs: TableClient;
  private readonly counters: TableClient;

  constructor(
    storage: Storage,
    private readonly prefix: string,
  ) {
    this.runs = storage.table(names.tables.runs);
    this.counters = storage.table(names.tables.counters);
    this.inserts = new BatchedInserts(this.runs);
  }

  private readonly inserts: BatchedInserts;

  private waiting: ((id: string) => void)[] = [];
  private failing: ((err: unknown) => void)[] = [];
  private allocating = false;

  /**
   * Takes the next run ID; unique under any concurrency. Callers waiting in this process at the same moment share
   * one ETag-guarded increment of the counter (so IDs stay contiguous and a burst of runs costs one write).
   */
  nextRunId(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      this.failing.push(reject);
      if (!this.allocating) void this.allocate();
    });
  }

  private async allocate(): Promise<void> {
    this.allocating = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0);
      const rejects = this.failing.splice(0);
      try {
        const first = await this.reserve(batch.length);
        batch.forEach((resolve, i) => resolve(formatRunId(this.prefix, first + i)));
      } catch (err) {
        rejects.forEach((reject) => reject(err));
      }
    }
    this.allocating = false;
  }

  /** Adds `count` to the counter (ETag-guarded, retried on a clash, bounded); returns the first number reserved. */
  private reserve(count: number): Promise<number> {
    return retryOnConflict('the run ID counter', async () => {
      let current: TableEntityResult<{ value: number }> | undefined;
      try {
        current = await this.counters.getEntity<{ value: number }>('runId', this.prefix);
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      if (!current) {
        await this.counters.createEntity({ partitionKey: 'runId', rowKey: this.prefix, value: count });
        return 1;
      }
      await this.counters.updateEntity(
        { partitionKey: 'runId', rowKey: this.prefix, value: current.value + count },
        'Replace',
        { etag: current.etag },
      );
      return current.value + 1;
    });
  }

  /** Stores a new run (runs created at the same moment share a transaction). */
  async create(run: Run): Promise<void> {
    if (!(await this.inserts.insert(toEntity(run, this.prefix))))
      throw new ConflictError(`run ${run.runId} already exists`, 'runId');
  }

  /** The run and its ETag, or null when there is no such run. */
  async find(runId: string): Promise<VersionedRun | null> {
    const n = parseRunId(this.prefix, runId);
    if (n === null) return null;
    try {
      const entity = await this.runs.getEntity<Record<string, unknown>>(PARTITION, runRowKey(n));
      return { run: fromEntity(entity), etag: entity.etag };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  /** The run, or a {@link NotFoundError} naming it. */
  async get(runId: string): Promise<VersionedRun> {
    const found = await this.find(runId);
    if (!found) throw new NotFoundError(`run '${runId}' was not found`, 'runId');
    return found;
  }

  /**
   * Applies `change` to the current run and writes it back only if nobody wrote in between, retrying on a clash.
   * `change` returns null to leave the run as it is.
   */
  update(runId: string, change: (run: Run) => Run | null): Promise<Run> {
    return retryOnConflict(`run '${runId}'`, async () => {
      const { run, etag } = await this.get(runId);
      const next = change(run);
      if (next === null) return run;
      const updated: Run = { ...next, lastUpdatedTime: new Date().toISOString() };
      await this.runs.updateEntity(toEntity(updated, this.prefix), 'Replace', { etag });
      return updated;
    });
  }

  /** Like {@link update}, but a clash is a {@link ConflictError} instead of a retry. */
  async updateIfUnchanged(versioned: VersionedRun, next: Run): Promise<Run> {
    const updated: Run = { ...next, lastUpdatedTime: new Date().toISOString() };
    try {
      await this.runs.updateEntity(toEntity(updated, this.prefix), 'Replace', { etag: versioned.etag });
      return updated;
    } catch (err) {
      if (statusOf(err) === 412) throw new ConflictError(`run '${next.runId}' changed meanwhile`, 'runId');
      throw err;
    }
  }

  /**
   * A page of runs, newest first, optionally filtered by a Runs_List `$filter`. A filter the table cannot answer
   * whole (`contains(outputImageManifests, …)`) is checked here on at most {@link MAX_SCANNED} rows per page: a page
   * may then hold fewer than `top` runs and still have a continuation token, as ARM's paging allows.
   */
  async list(options: { filter?: string; top: number; continuationToken?: string }): Promise<RunPage> {
    const compiled = options.filter ? compileRunFilter(options.filter) : undefined;
    const filter = `PartitionKey eq '${PARTITION}'` + (compiled ? ` and (${compiled.query})` : '');
    if (compiled?.matches) return this.scan(filter, compiled.matches, options);
    const runs: Run[] = [];
    let token = options.continuationToken;
    if (token) checkContinuationToken(token);
    // One request per page, each asking only for what is still missing, so a token never skips a row.
    do {
      const pages = this.runs
        .listEntities<Record<string, unknown>>({ queryOptions: { filter } })
        .byPage({ maxPageSize: options.top - runs.length, ...(token ? { continuationToken: token } : {}) });
      const next = await pages.next();
      if (next.done) break;
      const page = next.value;
      for (const entity of page) runs.push(fromEntity(entity));
      token = page.continuationToken;
    } while (token && runs.length < options.top);
    return { runs, continuationToken: token };
  }

  /** {@link list} for a filter checked on each run: resumes by row key (see {@link scanToken}). */
  private async scan(
    filter: string,
    matches: (run: Run) => boolean,
    options: { top: number; continuationToken?: string },
  ): Promise<RunPage> {
    const resume = options.continuationToken ? scanResume(options.continuationToken) : undefined;
    const query = filter + (resume ? ` and RowKey ge '${resume}'` : '');
    const runs: Run[] = [];
    let scanned = 0;
    const pages = this.runs
      .listEntities<Record<string, unknown>>({ queryOptions: { filter: query } })
      .byPage({ maxPageSize: SCAN_PAGE });
    for await (const page of pages) {
      for (const [i, entity] of page.entries()) {
        scanned++;
        const run = fromEntity(entity);
        if (matches(run)) runs.push(run);
        if (runs.length === options.top || scanned >= MAX_SCANNED) {
          const last = i === page.length - 1 && !page.continuationToken;
          return { runs, continuationToken: last ? undefined : scanToken(rowKeyAfter(entity.rowKey!)) };
        }
      }
    }
    return { runs, continuationToken: undefined };
  }

  /**
   * Finished runs created before `before` (an ISO time), a page at a time, for the retention purge: only the fields
   * it decides on are read, and the table is never loaded whole (a page is handled before the next is asked for).
   */
  async *listFinishedBefore(before: Date, pageSize: number): AsyncGenerator<RetentionCandidate[]> {
    const finished = [...FINISHED].map((s) => `status eq '${s}'`).join(' or ');
    // ISO times of one format sort as text: the table compares them server-side.
    const filter = `PartitionKey eq '${PARTITION}' and createTime lt '${before.toISOString()}' and (${finished})`;
    const pages = this.runs
      .listEntities<Record<string, unknown>>({
        queryOptions: { filter, select: ['runId', 'status', 'createTime', 'finishTime', 'isArchiveEnabled'] },
      })
      .byPage({ maxPageSize: pageSize });
    for await (const page of pages) {
      yield page.map((e) => ({
        runId: e.runId as string,
        status: e.status as RunStatus,
        createTime: e.createTime as string,
        finishTime: (e.finishTime as string | null | undefined) ?? undefined,
        isArchiveEnabled: (e.isArchiveEnabled as boolean | null | undefined) ?? undefined,
        etag: e.etag,
      }));
    }
  }

  /**
   * Deletes a run's record if it is unchanged since it was read at `etag`: true when the record is gone (deleted now,
   * or before), false when it changed meanwhile (archived, say) and was kept.
   */
  async deleteIfUnchanged(runId: string, etag: string): Promise<boolean> {
    const n = parseRunId(this.prefix, runId);
    if (n === null) return false;
    try {
      await this.runs.deleteEntity(PARTITION, runRowKey(n), { etag });
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return true;
      if (status === 412) return false;
      throw err;
    }
  }

  /** Runs in the given statuses (used to reconcile runs left behind by a stopped host). */
  async listByStatus(statuses: readonly string[]): Promise<Run[]> {
    const filter = `PartitionKey eq '${PARTITION}' and (${statuses.map((s) => `status eq '${s}'`).join(' or ')})`;
    const runs: Run[] = [];
    for await (const entity of this.runs.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
    })) {
      runs.push(fromEntity(entity));
    }
    return runs;
  }
}
