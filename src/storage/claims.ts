import { createHash } from 'node:crypto';
import type { TableClient, TableEntityResult } from '@azure/data-tables';
import pRetry from 'p-retry';
import { log } from '../log';
import { BatchedInserts } from './batched-inserts';
import { statusOf } from './write-conflicts';

/**
 * How long a pending claim stays its holder's. Past it, the holder is taken for dead and the next delivery may take
 * the claim over. It must outlast the act (queueing a run takes milliseconds, a burst of 1,000 a few seconds) and stay
 * well under the timers' look-back (2 minutes), so that a timer occurrence whose holder died is still fired.
 */
export const CLAIM_LEASE_MS = 60_000;

/**
 * How long a trigger waits for another delivery of the same event that holds its claim: queueing a run takes well
 * under a second, and a webhook's sender gives up after 10 s (GitHub), so the answer still arrives in time.
 */
export const HELD_CLAIM_WAIT_MS = 5_000;

/** How claims are timed. */
export interface ClaimsOptions {
  /** How long a pending claim is its holder's (default {@link CLAIM_LEASE_MS}). */
  readonly leaseMs?: number;
  /** The clock, in epoch milliseconds (tests move it past a lease instead of waiting). */
  readonly now?: () => number;
}

/** A claim as stored: pending (its holder is acting) until its lease ends, or confirmed (final). */
export interface ClaimRecord {
  readonly key: string;
  readonly state: 'pending' | 'confirmed';
  /** When a pending claim's holder is taken for dead (epoch ms). */
  readonly leaseUntil: number;
  /** What the holder recorded with the claim (a run ID, a task name). */
  readonly detail: Readonly<Record<string, string>>;
}

/** What {@link Claims.take} found: the claim is now the caller's, was acted on already, or is another's to finish. */
export type TakeResult =
  | { readonly status: 'taken'; readonly claim: Claim }
  | { readonly status: 'done'; readonly record: ClaimRecord }
  | { readonly status: 'held'; readonly record: ClaimRecord };

/** What {@link Claims.once} did: acted (and confirmed), or found the claim done or held by another. */
export type OnceResult<T> =
  | { readonly status: 'acted'; readonly value: T }
  | { readonly status: 'done'; readonly record: ClaimRecord }
  | { readonly status: 'held'; readonly record: ClaimRecord };

/** How a take treats a claim that is already there. */
export interface TakeOptions {
  /** Stored with the pending claim. */
  readonly detail?: Readonly<Record<string, string>>;
  /**
   * Whether a confirmed claim no longer stands (a task's queued slot whose run has left Queued): then it is taken
   * over like an expired one. Without it a confirmed claim is final.
   */
  readonly isStale?: (record: ClaimRecord) => Promise<boolean>;
  /**
   * How long to wait for another holder's act to end (its claim confirmed or released) before answering `held`: a
   * redelivery that arrives while the first delivery is still queueing its run learns how that ended instead of
   * failing (senders such as GitHub do not retry on their own). Default 0.
   */
  readonly waitMs?: number;
}

/** Thrown inside a wait while the claim is still held; ends the wait's retries when the time is up. */
class StillHeld extends Error {
  constructor(readonly result: TakeResult) {
    super('the claim is still held');
  }
}

type ClaimEntity = Record<string, unknown> & { partitionKey: string; rowKey: string };

/** Fields of the row that are the claim's own; everything else is detail. */
const OWN_FIELDS = new Set(['partitionKey', 'rowKey', 'etag', 'timestamp', 'key', 'state', 'leaseUntil']);

/** Table keys cannot hold / \ # ? or control characters: the row key is a hash, the key is kept readable beside. */
function rowKeyOf(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function recordOf(entity: TableEntityResult<Record<string, unknown>>): ClaimRecord {
  const detail: Record<string, string> = {};
  for (const [name, value] of Object.entries(entity)) {
    if (!OWN_FIELDS.has(name) && !name.startsWith('odata') && typeof value === 'string') detail[name] = value;
  }
  return {
    key: typeof entity.key === 'string' ? entity.key : '',
    // Rows written before claims had states (plain dedupe keys) were final when written.
    state: entity.state === 'pending' ? 'pending' : 'confirmed',
    leaseUntil: typeof entity.leaseUntil === 'string' ? Date.parse(entity.leaseUntil) : 0,
    detail,
  };
}

/** Brief retries for the writes after the act: they must not turn a done act into a failed delivery. */
const AFTER_ACT_RETRIES = { retries: 3, minTimeout: 100, maxTimeout: 1000, randomize: true };

/**
 * A pending claim this caller holds: confirm it once the act (queueing a run) succeeded, release it when the act
 * failed. Both are guarded by the claim's ETag, so a holder whose lease was taken over cannot undo the new holder's.
 */
export class Claim {
  constructor(
    private readonly table: TableClient,
    /** The claim's scope and key, as given. */
    readonly scope: string,
    readonly key: string,
    private readonly rowKey: string,
    private etag: string,
  ) {}

  /** Makes the claim final, with `detail` (a run ID) recorded. Never throws: the act it confirms is done. */
  async confirm(detail: Readonly<Record<string, string>> = {}): Promise<void> {
    try {
      await pRetry(async () => {
        try {
          const written = await this.table.updateEntity(
            { partitionKey: this.scope, rowKey: this.rowKey, ...detail, state: 'confirmed' },
            'Merge',
            { etag: this.etag },
          );
          this.etag = written.etag ?? this.etag;
        } catch (err) {
          const status = statusOf(err);
          if (status === 404 || status === 412) {
            // Our lease ran out and another took the claim over (or it was swept): the act may happen twice.
            log.warn('claim lost before it was confirmed', { scope: this.scope, key: this.key, status });
            return;
          }
          throw err;
        }
      }, AFTER_ACT_RETRIES);
    } catch (err) {
      // The claim stays pending: once its lease ends a redelivery acts again (a duplicate, never a loss).
      log.error('claim could not be confirmed', {
        scope: this.scope,
        key: this.key,
        error: (err as Error).message,
      });
    }
  }

  /** Gives the claim up (the act failed), so that the retry of the same delivery can act. Never throws. */
  async release(): Promise<void> {
    try {
      await pRetry(async () => {
        try {
          await this.table.deleteEntity(this.scope, this.rowKey, { etag: this.etag });
        } catch (err) {
          const status = statusOf(err);
          if (status !== 404 && status !== 412) throw err;
        }
      }, AFTER_ACT_RETRIES);
    } catch (err) {
      // The lease ends on its own: the retry takes the claim over then.
      log.warn('claim could not be released', {
        scope: this.scope,
        key: this.key,
        error: (err as Error).message,
      });
    }
  }
}

/**
 * Claim, act, confirm: the one way to do something once per key (a trigger's event, a task's queued slot) across
 * redeliveries, instances and crashes. A claim is written pending with a lease, confirmed after the act succeeded and
 * released when it failed; a pending claim whose lease ended (its holder died) is taken over by the next caller, and
 * of two callers taking over at once the ETag lets one win. New claims made at the same moment share table
 * transactions of up to 100 (a base with 1,000 dependents claims its keys in a burst).
 */
export class Claims {
  private readonly inserts: BatchedInserts;
  private readonly leaseMs: number;
  private readonly now: () => number;

  constructor(
    private readonly table: TableClient,
    options: ClaimsOptions = {},
  ) {
    this.inserts = new BatchedInserts(table);
    this.leaseMs = options.leaseMs ?? CLAIM_LEASE_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Claims `key` in `scope` for the caller, unless it was acted on already or another holder's lease still runs (then
   * waits up to `options.waitMs`, with a jittered backoff, for that holder to finish).
   */
  async take(scope: string, key: string, options: TakeOptions = {}): Promise<TakeResult> {
    const first = await this.takeNow(scope, key, options);
    if (first.status !== 'held' || !options.waitMs) return first;
    return pRetry(
      async () => {
        const result = await this.takeNow(scope, key, options);
        if (result.status === 'held') throw new StillHeld(result);
        return result;
      },
      { retries: 100, minTimeout: 50, maxTimeout: 500, randomize: true, maxRetryTime: options.waitMs },
    ).catch((err: unknown) => {
      if (err instanceof StillHeld) return err.result;
      throw err;
    });
  }

  private async takeNow(scope: string, key: string, options: TakeOptions): Promise<TakeResult> {
    const rowKey = rowKeyOf(key);
    const entity = (): ClaimEntity => ({
      partitionKey: scope,
      rowKey,
      ...options.detail,
      key,
      state: 'pending',
      leaseUntil: new Date(this.now() + this.leaseMs).toISOString(),
    });
    const taken = (etag: string): TakeResult => ({
      status: 'taken',
      claim: new Claim(this.table, scope, key, rowKey, etag),
    });
    const created = await this.inserts.create(entity());
    if (created !== null) return taken(created || (await this.table.getEntity(scope, rowKey)).etag);
    // A few rounds at most: each lost round means another caller wrote the claim meanwhile, and its claim stands.
    let found: TableEntityResult<Record<string, unknown>> | undefined;
    for (let round = 0; round < 3; round++) {
      try {
        found = await this.table.getEntity<Record<string, unknown>>(scope, rowKey);
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        // Released meanwhile: claim it afresh.
        const etag = await this.inserts.create(entity());
        if (etag !== null) return taken(etag || (await this.table.getEntity(scope, rowKey)).etag);
        continue;
      }
      const record = recordOf(found);
      if (record.state === 'pending' && record.leaseUntil > this.now()) return { status: 'held', record };
      if (record.state === 'confirmed' && !(await options.isStale?.(record)))
        return { status: 'done', record };
      try {
        const written = await this.table.updateEntity(entity(), 'Replace', { etag: found.etag });
        log.info('claim taken over', { scope, key, state: record.state });
        return taken(written.etag ?? (await this.table.getEntity(scope, rowKey)).etag);
      } catch (err) {
        const status = statusOf(err);
        if (status !== 412 && status !== 404) throw err;
      }
    }
    // Still contended after three rounds: someone else holds it now.
    return {
      status: 'held',
      record: found ? recordOf(found) : { key, state: 'pending', leaseUntil: 0, detail: {} },
    };
  }

  /**
   * Claims `key`, runs `act`, then confirms the claim (with `confirmed(value)` recorded) or, when `act` throws,
   * releases it and rethrows: a failure between the claim and the act's end leaves the key for the retry.
   */
  async once<T>(
    scope: string,
    key: string,
    act: () => Promise<T>,
    options: TakeOptions & { readonly confirmed?: (value: T) => Record<string, string> } = {},
  ): Promise<OnceResult<T>> {
    const result = await this.take(scope, key, options);
    if (result.status !== 'taken') return result;
    let value: T;
    try {
      value = await act();
    } catch (err) {
      await result.claim.release();
      throw err;
    }
    await result.claim.confirm(options.confirmed?.(value) ?? {});
    return { status: 'acted', value };
  }

  /** Deletes `key`'s claim if `matches` its record (ETag-guarded: a claim changed meanwhile is someone else's). */
  async drop(scope: string, key: string, matches: (record: ClaimRecord) => boolean): Promise<boolean> {
    const rowKey = rowKeyOf(key);
    let found: TableEntityResult<Record<string, unknown>>;
    try {
      found = await this.table.getEntity<Record<string, unknown>>(scope, rowKey);
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
    if (!matches(recordOf(found))) return false;
    try {
      await this.table.deleteEntity(scope, rowKey, { etag: found.etag });
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 412) return false;
      throw err;
    }
  }

  /**
   * Deletes every claim of `scope` that no longer stands: pending ones whose lease ended, confirmed ones `isStale`
   * says are stale. Returns how many it deleted.
   */
  async sweep(scope: string, isStale: (record: ClaimRecord) => Promise<boolean>): Promise<number> {
    const filter = `PartitionKey eq '${scope.replace(/'/g, "''")}'`;
    let swept = 0;
    for await (const entity of this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
    })) {
      const record = recordOf(entity);
      const stale = record.state === 'pending' ? record.leaseUntil <= this.now() : await isStale(record);
      if (!stale) continue;
      try {
        await this.table.deleteEntity(scope, entity.rowKey!, { etag: entity.etag });
        swept++;
      } catch (err) {
        const status = statusOf(err);
        if (status !== 404 && status !== 412) throw err;
      }
    }
    return swept;
  }
}
