import type { TableClient, TransactionAction } from '@azure/data-tables';
import pLimit from 'p-limit';
import { ConflictError, ValidationError } from '../../errors';
import { log } from '../../log';
import { retryOnConflict, statusOf } from '../../storage/write-conflicts';

/** ACI's quota of cores per region and subscription (REFIT_ACI_MAX_CORES' default). */
export const DEFAULT_MAX_CORES = 100;
/** ACI's quota of container-group creates per hour (REFIT_ACI_CREATES_PER_HOUR's default). */
export const DEFAULT_CREATES_PER_HOUR = 300;
/** ACI's other create quota, 100 per 5 minutes: the most the budget lets through at once. */
export const MAX_CREATE_BURST = 100;
/** A run refused for want of a slot looks again after this many seconds, plus up to as many again of jitter. */
export const SLOT_RETRY_SECONDS = 30;
/** Runs refused during a pause come back spread over this many seconds after it ends. */
export const PAUSE_SPREAD_SECONDS = 30;
/** Refills are sums of fractions: a token that is whole but for rounding counts as whole. */
const TOKEN_EPSILON = 1e-9;
/** A queue message's visibility delay cannot exceed 7 days. */
const MAX_DELAY_SECONDS = 7 * 24 * 3600;

/** The answer to {@link Admission.acquire}: go ahead, or wait (the run message comes back after the delay). */
export type AdmissionDecision =
  | { readonly admitted: true }
  | { readonly admitted: false; readonly reason: string; readonly retryAfterSeconds: number };

/** A run's hold on build cores: taken by {@link Admission.acquire}, freed by {@link Admission.release}. */
export interface AdmissionLease {
  readonly runId: string;
  readonly cores: number;
  /** When it was taken (epoch ms). */
  readonly admittedAt: number;
}

/** The budget as stored, with the leases (for `health`, tests and the reconcile sweep). */
export interface AdmissionStatus {
  readonly coresInUse: number;
  readonly maxCores: number;
  /** Creates that may start now (fractional: the bucket refills continuously). */
  readonly tokens: number;
  /** No create is admitted before this (epoch ms); 0 when not paused. */
  readonly pausedUntil: number;
  readonly pauseReason: string;
  readonly leases: readonly AdmissionLease[];
}

/** How an {@link Admission} counts. */
export interface AdmissionOptions {
  /** The cores that may be in use at once (REFIT_ACI_MAX_CORES). */
  readonly maxCores?: number;
  /** Creates per hour the budget refills with (REFIT_ACI_CREATES_PER_HOUR); its burst is at most {@link MAX_CREATE_BURST}. */
  readonly createsPerHour?: number;
  /**
   * The partition the budget lives in: ACI's quotas are per region and subscription, so deployments that share a
   * storage account and a region must share it (the region's name).
   */
  readonly scope?: string;
  /** The clock, in epoch milliseconds (tests move it instead of waiting). */
  readonly now?: () => number;
  /** Jitter's source, in [0, 1). */
  readonly random?: () => number;
}

/** The budget's own row. */
const TOTALS = 'totals';
const LEASE_PREFIX = 'lease-';
/** A region's name (letters, digits, dashes): a partition key that needs no quoting. */
const SCOPE = /^[A-Za-z0-9-]{1,100}$/;
/** Run IDs are Refit's own (letters and digits); anything else cannot be a row key safely. */
const RUN_ID = /^[A-Za-z0-9-]{1,200}$/;

interface Totals {
  coresInUse: number;
  tokens: number;
  /** When `tokens` was last brought up to date (epoch ms). */
  refilledAt: number;
  pausedUntil: number;
  pauseReason: string;
  /**
   * The end of the create slots already promised to runs told to wait (epoch ms): each refused run is sent back in
   * the next free one, so a thousand waiting runs come back one refill apart instead of all at once.
   */
  promisedUntil: number;
}

type Entity = Record<string, unknown> & { partitionKey: string; rowKey: string };

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0) || 0);
/** Times and tokens exceed Int32 or are fractional: stored as Edm.Double so storage keeps them whole. */
const double = (n: number): { value: string; type: 'Double' } => ({ value: String(n), type: 'Double' });

/**
 * Admission control for ACI creates: a slot count (cores in use against the quota) and a create-rate token bucket,
 * kept in one Table partition so that every dispatcher, on any instance, spends the same budget. Each change writes
 * the totals row under its ETag together with the lease rows in one transaction, so a crash cannot leave a lease
 * whose cores are not counted, or the reverse.
 */
export class Admission {
  readonly maxCores: number;
  readonly createsPerHour: number;
  /** The most creates admitted at once after a quiet spell. */
  readonly burst: number;
  private readonly scope: string;
  private readonly now: () => number;
  private readonly random: () => number;
  /**
   * One change at a time from this instance: callers of one process (a dispatcher's batch of messages) would only
   * race each other for the same row, and most of them lose; in turn, each write wins unless another instance wrote.
   */
  private readonly serial = pLimit(1);

  constructor(
    private readonly table: TableClient,
    options: AdmissionOptions = {},
  ) {
    this.maxCores = options.maxCores ?? DEFAULT_MAX_CORES;
    this.createsPerHour = options.createsPerHour ?? DEFAULT_CREATES_PER_HOUR;
    if (!(this.maxCores > 0) || !(this.createsPerHour > 0))
      throw new ValidationError('admission needs a positive core limit and create rate');
    this.burst = Math.min(MAX_CREATE_BURST, this.createsPerHour);
    this.scope = options.scope ?? 'aci';
    if (!SCOPE.test(this.scope))
      throw new ValidationError(`not an admission scope: '${this.scope}'`, 'scope');
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /**
   * Admits `runId`'s create if `cores` more stay within the slot limit, the create budget has a token and creates are
   * not paused; a run that already holds a lease is admitted again without taking more (a redelivered message).
   * Otherwise says why and when to look again (never 0 s, jittered).
   */
  async acquire(runId: string, cores: number): Promise<AdmissionDecision> {
    checkRunId(runId);
    if (!Number.isFinite(cores) || cores <= 0)
      throw new ValidationError(`a build needs a positive number of cores, got ${cores}`, 'cores');
    if (cores > this.maxCores)
      throw new ValidationError(
        `a build of ${cores} cores can never start: REFIT_ACI_MAX_CORES is ${this.maxCores}`,
        'cores',
      );
    try {
      return await this.serial(() =>
        retryOnConflict(`the ACI admission budget`, () => this.tryAcquire(runId, cores)),
      );
    } catch (err) {
      // Dispatchers without end racing for the row: the run waits its turn instead of failing its message.
      if (!(err instanceof ConflictError)) throw err;
      log.warn('admission budget contended', { runId });
      return {
        admitted: false,
        reason: 'waiting for the container-create budget: many runs are asking at once',
        retryAfterSeconds: this.delay(1 + this.random() * SLOT_RETRY_SECONDS),
      };
    }
  }

  /** Frees `runId`'s lease and its cores; a run without one is fine (already freed, or never admitted). */
  async release(runId: string): Promise<void> {
    checkRunId(runId);
    await this.serial(() => this.releaseLease(runId));
  }

  private releaseLease(runId: string): Promise<void> {
    return retryOnConflict(`the ACI admission budget`, async () => {
      const lease = await this.readLease(runId);
      if (!lease) return;
      const { totals, etag } = await this.readTotals();
      totals.coresInUse = Math.max(0, totals.coresInUse - lease.cores);
      await this.write(totals, etag, [['delete', { partitionKey: this.scope, rowKey: leaseKey(runId) }]]);
    });
  }

  /**
   * Admits no create for `retryAfterSeconds` (ARM answered 429 or a quota error; the caller also releases the refused
   * run's lease), and empties the create budget, which refills from then on. `reason` is shown to waiting runs, e.g.
   * "Azure throttled container creates". An earlier, longer pause is kept.
   */
  async pause(retryAfterSeconds: number, reason: string): Promise<void> {
    const seconds = Number.isFinite(retryAfterSeconds) ? Math.max(1, retryAfterSeconds) : SLOT_RETRY_SECONDS;
    await this.serial(() => this.pauseUntil(seconds, reason));
    log.warn('container creates paused', { retryAfterSeconds: seconds, reason });
  }

  private pauseUntil(seconds: number, reason: string): Promise<void> {
    return retryOnConflict(`the ACI admission budget`, async () => {
      const { totals, etag } = await this.readTotals();
      const until = this.now() + Math.min(seconds, MAX_DELAY_SECONDS) * 1000;
      if (until <= totals.pausedUntil) return;
      totals.pausedUntil = until;
      totals.pauseReason = reason;
      // ARM's answer says the real budget is spent (others share the subscription): it refills from the pause's end.
      totals.tokens = 0;
      totals.refilledAt = until;
      totals.promisedUntil = Math.max(totals.promisedUntil, until);
      await this.write(totals, etag, []);
    });
  }

  /** The runs holding leases (the reconcile sweep frees those whose runs have finished). */
  async leases(): Promise<readonly AdmissionLease[]> {
    return (await this.status()).leases;
  }

  /** The budget as stored now (one read of the partition), with its tokens refilled up to the clock. */
  async status(): Promise<AdmissionStatus> {
    let totals = this.fresh();
    const leases: AdmissionLease[] = [];
    const filter = `PartitionKey eq '${this.scope}'`;
    for await (const e of this.table.listEntities<Entity>({ queryOptions: { filter } })) {
      if (e.rowKey === TOTALS) totals = fromEntity(e);
      else if (e.rowKey.startsWith(LEASE_PREFIX)) leases.push(leaseOf(e));
    }
    this.refill(totals);
    return {
      coresInUse: totals.coresInUse,
      maxCores: this.maxCores,
      tokens: totals.tokens,
      pausedUntil: totals.pausedUntil,
      pauseReason: totals.pauseReason,
      leases,
    };
  }

  private async tryAcquire(runId: string, cores: number): Promise<AdmissionDecision> {
    const [lease, { totals, etag }] = await Promise.all([this.readLease(runId), this.readTotals()]);
    if (lease) return { admitted: true };
    const now = this.now();
    if (totals.pausedUntil > now) {
      const retryAfterSeconds = this.delay(
        (totals.pausedUntil - now) / 1000 + this.random() * PAUSE_SPREAD_SECONDS,
      );
      return {
        admitted: false,
        reason: `${totals.pauseReason}: retrying in ${retryAfterSeconds} s`,
        retryAfterSeconds,
      };
    }
    if (totals.coresInUse + cores > this.maxCores) {
      return {
        admitted: false,
        reason: `waiting for a build slot: ${totals.coresInUse} of ${this.maxCores} cores in use`,
        retryAfterSeconds: this.delay(SLOT_RETRY_SECONDS * (1 + this.random())),
      };
    }
    this.refill(totals);
    if (totals.tokens < 1 - TOKEN_EPSILON) {
      // The next token no one has been promised yet; this run is promised it, and comes back within its interval.
      const interval = 3_600_000 / this.createsPerHour;
      const start = Math.max(totals.promisedUntil, now + (1 - totals.tokens) * interval);
      totals.promisedUntil = start + interval;
      await this.write(totals, etag, []);
      const retryAfterSeconds = this.delay((start - now + this.random() * interval) / 1000);
      return {
        admitted: false,
        reason: `waiting for the container-create budget (${this.createsPerHour} per hour): next in ${retryAfterSeconds} s`,
        retryAfterSeconds,
      };
    }
    totals.tokens -= 1;
    totals.coresInUse += cores;
    await this.write(totals, etag, [
      [
        'create',
        { partitionKey: this.scope, rowKey: leaseKey(runId), runId, cores, admittedAt: double(now) },
      ],
    ]);
    return { admitted: true };
  }

  /** Brings the bucket up to the clock: createsPerHour per hour, at most the burst. */
  private refill(totals: Totals): void {
    const now = this.now();
    const elapsed = Math.max(0, now - totals.refilledAt);
    totals.tokens = Math.min(this.burst, totals.tokens + (elapsed * this.createsPerHour) / 3_600_000);
    totals.refilledAt = Math.max(now, totals.refilledAt);
  }

  /** Whole seconds, at least 1, at most a queue message's longest visibility delay. */
  private delay(seconds: number): number {
    return Math.min(MAX_DELAY_SECONDS, Math.max(1, Math.ceil(seconds)));
  }

  private async readLease(runId: string): Promise<AdmissionLease | null> {
    try {
      return leaseOf(await this.table.getEntity<Entity>(this.scope, leaseKey(runId)));
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  /** The totals of a budget never written yet: full, nothing in use (its first write creates the row). */
  private fresh(): Totals {
    return {
      coresInUse: 0,
      tokens: this.burst,
      refilledAt: this.now(),
      pausedUntil: 0,
      pauseReason: '',
      promisedUntil: 0,
    };
  }

  /** The totals and their ETag (undefined when the row does not exist yet). */
  private async readTotals(): Promise<{ totals: Totals; etag: string | undefined }> {
    try {
      const e = await this.table.getEntity<Entity>(this.scope, TOTALS);
      return { totals: fromEntity(e), etag: e.etag };
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      return { totals: this.fresh(), etag: undefined };
    }
  }

  /**
   * Writes the totals under the ETag they were read at (created when there were none) with `leases` in one
   * transaction: all or nothing, and a 412/409 if another writer came first (retried by the caller).
   */
  private async write(totals: Totals, etag: string | undefined, leases: TransactionAction[]): Promise<void> {
    const row: Entity = {
      partitionKey: this.scope,
      rowKey: TOTALS,
      coresInUse: totals.coresInUse,
      tokens: double(totals.tokens),
      refilledAt: double(totals.refilledAt),
      pausedUntil: double(totals.pausedUntil),
      pauseReason: totals.pauseReason,
      promisedUntil: double(totals.promisedUntil),
    };
    const own: TransactionAction =
      etag === undefined ? ['create', row] : ['update', row, 'Replace', { etag }];
    await this.table.submitTransaction([own, ...leases]);
  }
}

function fromEntity(e: Entity): Totals {
  return {
    coresInUse: num(e.coresInUse),
    tokens: num(e.tokens),
    refilledAt: num(e.refilledAt),
    pausedUntil: num(e.pausedUntil),
    pauseReason: typeof e.pauseReason === 'string' ? e.pauseReason : '',
    promisedUntil: num(e.promisedUntil),
  };
}

function leaseOf(e: Entity): AdmissionLease {
  return { runId: String(e.runId), cores: num(e.cores), admittedAt: num(e.admittedAt) };
}

function leaseKey(runId: string): string {
  return `${LEASE_PREFIX}${runId}`;
}

function checkRunId(runId: string): void {
  if (!RUN_ID.test(runId)) throw new ValidationError(`not a run ID: '${runId}'`, 'runId');
}
