import pLimit from 'p-limit';
import type { PollingSettings } from '../config';
import type { Dependent, DependencyIndex } from '../dependencies/dependency-index';
import { UpstreamUnavailableError } from '../errors';
import { log } from '../log';
import type { RegistryCredentials } from '../registry/auth';
import type { RegistryClient } from '../registry/client';
import type { Claims } from '../storage/claims';
import type { ImagePush } from '../triggers/image-update';
import { pollDelayMs } from './poll-interval';
import {
  backoffSeconds,
  initialState,
  mayGet,
  pullReserve,
  type RegistryBudgets,
  type RegistryState,
} from './registry-budget';
import type { Watch, WatchStore, WatchUpdate } from './watch-store';

/** Requests in flight to one registry at a time. */
export const REGISTRY_CONCURRENCY = 16;
/** How often a process reconciles the watches with the whole dependency index (changes arrive through follow). */
export const RECONCILE_MS = 60_000;

/** What the watcher needs. */
export interface WatcherDeps {
  readonly watches: WatchStore;
  readonly budgets: RegistryBudgets;
  readonly index: DependencyIndex;
  readonly registry: RegistryClient;
  /** The claims a check is taken with, so that two overlapping cycles (or instances) check a watch once. */
  readonly claims: Claims;
  readonly settings: PollingSettings;
  /** Queues a push for the one base-image update decision (the same queue as registry events). */
  readonly queuePush: (push: ImagePush) => Promise<void>;
  /** The credentials to ask a registry with for these dependents (a private registry), or none (anonymous). */
  readonly credentialsFor: (
    registry: string,
    dependentTaskNames: readonly string[],
  ) => Promise<RegistryCredentials | undefined>;
  /** Whether a task is enabled with its base-image trigger on (only those keep a reference watched). */
  readonly enabledTasks: () => Promise<(task: string) => boolean>;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** What one cycle did. */
export interface CycleReport {
  readonly due: number;
  readonly checked: number;
  /** Watches left for later: their registry is paused, or another cycle holds them. */
  readonly skipped: number;
  readonly changed: number;
  readonly queued: number;
  readonly failed: number;
}

type Outcome = 'unchanged' | 'baseline' | 'settling' | 'deferred' | 'queued' | 'failed' | 'lost';

/**
 * Checks the watched references that are due: one HEAD each (all four media types; no pull quota on Docker Hub), and
 * only when the digest moved and stood for the settle delay, one GET of the index; then an ImagePush with source
 * `poll` on the queue registry events use, so that one decision (dedupe, absorb, cascade order, audit) serves both.
 * Per registry: a concurrency cap, the pull budget its answers state, and a pause with backoff after 429/5xx.
 */
export class Watcher {
  private lastReconcile = 0;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly deps: WatcherDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  /**
   * Brings the watches in step with the dependency index (`index`, one scan of it): every {@link RECONCILE_MS}, or
   * when `force`d.
   */
  async reconcile(index?: ReadonlyMap<string, readonly Dependent[]>, force = false): Promise<void> {
    if (!force && this.now() - this.lastReconcile < RECONCILE_MS) return;
    this.lastReconcile = this.now();
    const [scanned, enabled] = await Promise.all([index ?? this.deps.index.all(), this.deps.enabledTasks()]);
    const result = await this.deps.watches.reconcile(scanned, enabled);
    if (result.added || result.removed) log.info('watches reconciled', result);
  }

  /** One cycle: every due watch checked once (a watch another cycle is checking is left to it). */
  async cycle(): Promise<CycleReport> {
    // Most ticks find nothing due: then the index is not read at all (locally the timer ticks every 2 s).
    let due = await this.deps.watches.due(this.now());
    const reconcileDue = this.now() - this.lastReconcile >= RECONCILE_MS;
    if (due.length === 0 && !reconcileDue)
      return { due: 0, checked: 0, skipped: 0, changed: 0, queued: 0, failed: 0 };
    // One scan of the index serves the reconcile and every check's dependents (not a query per watch).
    const index = await this.deps.index.all();
    if (reconcileDue) {
      await this.reconcile(index, true);
      due = await this.deps.watches.due(this.now());
    }
    const states = await this.deps.budgets.all();
    const byRegistry = new Map<string, Watch[]>();
    for (const w of due) {
      const list = byRegistry.get(w.ref.registry);
      if (list) list.push(w);
      else byRegistry.set(w.ref.registry, [w]);
    }
    const counts = { checked: 0, skipped: 0, changed: 0, queued: 0, failed: 0 };
    await Promise.all(
      [...byRegistry].map(async ([registry, watches]) => {
        const run = new RegistryRun(
          this.deps,
          index,
          { now: this.now, random: this.random },
          registry,
          states.get(registry) ?? initialState(registry),
        );
        const limit = pLimit(REGISTRY_CONCURRENCY);
        const outcomes = await Promise.all(watches.map((w) => limit(() => run.check(w))));
        for (const o of outcomes) {
          if (o === 'skipped' || o === 'lost') counts.skipped++;
          else counts.checked++;
          if (o === 'settling' || o === 'queued' || o === 'deferred') counts.changed++;
          if (o === 'queued') counts.queued++;
          if (o === 'failed') counts.failed++;
        }
        if (run.touched) await this.deps.budgets.save(run.state);
      }),
    );
    return { due: due.length, ...counts };
  }
}

/** One registry's share of a cycle: its state (budget, pause) shared by its checks. */
class RegistryRun {
  touched = false;

  constructor(
    private readonly deps: WatcherDeps,
    private readonly index: ReadonlyMap<string, readonly Dependent[]>,
    private readonly clock: { readonly now: () => number; readonly random: () => number },
    private readonly registry: string,
    public state: RegistryState,
  ) {}

  private now(): number {
    return this.clock.now();
  }

  private next(delayMs: number): string {
    return new Date(this.now() + delayMs).toISOString();
  }

  private interval(): string {
    return this.next(pollDelayMs(this.deps.settings, this.clock.random));
  }

  async check(watch: Watch): Promise<Outcome | 'skipped'> {
    if (this.state.pausedUntil > this.now()) return 'skipped';
    // The key names this occurrence of the check: once the watch is written its next check has another key.
    const taken = await this.deps.claims.take('watch-check', `${watch.image} ${watch.nextCheck}`);
    if (taken.status !== 'taken') return 'skipped';
    try {
      return await this.checkClaimed(watch);
    } catch (err) {
      // Storage failed mid-check: the watch stays due and the next cycle checks it again.
      log.error('watch check could not be completed', { image: watch.image, error: (err as Error).message });
      return 'failed';
    } finally {
      await taken.claim.release();
    }
  }

  private async checkClaimed(watch: Watch): Promise<Outcome> {
    const started = this.now();
    const at = new Date(started).toISOString();
    const dependents = this.index.get(watch.image) ?? [];
    let head: string | null;
    let credentials: RegistryCredentials | undefined;
    try {
      credentials = await this.deps.credentialsFor(
        this.registry,
        dependents.map((d) => d.task),
      );
      head = await this.deps.registry.head(watch.ref, credentials);
    } catch (err) {
      return this.failed(watch, err, started, 'HEAD', dependents.length);
    } finally {
      this.noteBudget();
    }
    if (head === null)
      // Ambiguous (a deleted tag, a private repository, an Accept the registry does not serve): an error, never a
      // GET fallback, which on Docker Hub would spend a pull on every check (watchtower fork #667/#761).
      return this.failed(
        watch,
        new Error(
          `${this.registry} answered 401, 403 or 404 to the HEAD of ${watch.image}: the tag is gone, or the repository is private and the credentials are missing or refused`,
        ),
        started,
        'HEAD',
        dependents.length,
      );
    this.recovered();
    const healthy: WatchUpdate = {
      lastCheck: at,
      lastSuccess: at,
      lastError: null,
      consecutiveFailures: 0,
      dependents: dependents.length,
      verify: false,
    };
    // First sight, or a new dependent: compare with what each dependent was built from (a watcher that was down
    // must not lose an update). Dependents never built (recorded at task creation) build from the current digest.
    const built = dependents.filter((d) => d.digest !== null);
    const builtFromHead = watch.verify && built.every((d) => d.digest === head);
    if ((!watch.verify && head === watch.indexDigest) || builtFromHead) {
      const changes: WatchUpdate = {
        ...healthy,
        indexDigest: head,
        pendingDigest: null,
        pendingSince: null,
        nextCheck: this.interval(),
        note: null,
        // A baseline taken from the dependents: the index was not read, so its platforms are not known.
        ...(head !== watch.indexDigest ? { platforms: [] } : {}),
      };
      return (await this.deps.watches.update(watch, changes))
        ? head === watch.indexDigest
          ? 'unchanged'
          : 'baseline'
        : 'lost';
    }
    // Moved. It must stand for the settle delay before it is acted on: an index is pushed platform by platform.
    const settleMs = this.deps.settings.settleSeconds * 1000;
    if (watch.pendingDigest !== head) {
      const ok = await this.deps.watches.update(watch, {
        ...healthy,
        pendingDigest: head,
        pendingSince: at,
        nextCheck: this.next(settleMs),
        note: `${head} seen; acted on once it still stands after ${this.deps.settings.settleSeconds} s`,
      });
      return ok ? 'settling' : 'lost';
    }
    if (watch.pendingSince && Date.parse(watch.pendingSince) + settleMs > started) {
      // Checked early (a new dependent made it due): the settle delay has not passed yet.
      return (await this.deps.watches.update(watch, {
        ...healthy,
        nextCheck: new Date(Date.parse(watch.pendingSince) + settleMs).toISOString(),
      }))
        ? 'settling'
        : 'lost';
    }
    if (!mayGet(this.state)) {
      const budget = this.state.budget!;
      return (await this.deps.watches.update(watch, {
        ...healthy,
        nextCheck: this.interval(),
        note: `the index GET is deferred: ${this.registry} has ${budget.remaining} of ${budget.limit} pulls left, and ${pullReserve(budget.limit)} are kept for builds`,
      }))
        ? 'deferred'
        : 'lost';
    }
    let index;
    try {
      index = await this.deps.registry.index(watch.ref, credentials);
    } catch (err) {
      return this.failed(watch, err, started, 'GET', dependents.length);
    } finally {
      this.noteBudget(true);
    }
    if (!index)
      return this.failed(
        watch,
        new Error(`${this.registry} answered 401, 403 or 404 to the GET of ${watch.image}`),
        started,
        'GET',
        dependents.length,
      );
    if (index.digest !== head) {
      // It moved again between the HEAD and the GET: still changing, settle on the new one.
      return (await this.deps.watches.update(watch, {
        ...healthy,
        pendingDigest: index.digest,
        pendingSince: at,
        nextCheck: this.next(settleMs),
        note: `${index.digest} seen; acted on once it still stands after ${this.deps.settings.settleSeconds} s`,
      }))
        ? 'settling'
        : 'lost';
    }
    // The event ID names (reference, digest): every poll of the same digest is one event to the decision's dedupe.
    await this.deps.queuePush({
      source: 'poll',
      eventId: `poll ${watch.image}@${index.digest}`,
      registry: watch.ref.registry,
      repository: watch.ref.repository,
      tag: watch.ref.tag ?? 'latest',
      digest: index.digest,
      timestamp: at,
      platforms: index.platforms,
    });
    log.info('watched image changed', { image: watch.image, digest: index.digest });
    // Written after the push is queued: a crash in between checks again and queues the same event (deduped).
    await this.deps.watches.update(watch, {
      ...healthy,
      indexDigest: index.digest,
      platforms: index.platforms,
      pendingDigest: null,
      pendingSince: null,
      nextCheck: this.interval(),
      note: null,
    });
    return 'queued';
  }

  /** Records the pull budget the registry's last answer stated; after a GET, one pull is gone from it. */
  private noteBudget(spentPull = false): void {
    const seen = this.deps.registry.rateLimit(this.registry);
    const current = this.state.budget;
    if (seen && (!current || seen.seenAt >= current.seenAt)) {
      this.state = { ...this.state, budget: seen };
      this.touched = true;
    } else if (spentPull && current) {
      this.state = { ...this.state, budget: { ...current, remaining: Math.max(0, current.remaining - 1) } };
      this.touched = true;
    }
  }

  private recovered(): void {
    if (this.state.failures === 0 && this.state.pausedUntil === 0 && this.state.lastError === null) return;
    this.state = { ...this.state, failures: 0, pausedUntil: 0, lastError: null };
    this.touched = true;
  }

  /**
   * A check that failed: recorded on the watch (neither changed nor unchanged: the digest it knew stays, nothing is
   * queued). A 429/5xx/unreachable registry pauses as a whole, with backoff, unless it was Docker Hub's pull limit
   * on a GET, which only stops GETs (the HEADs are free) until its answers show pulls left again.
   */
  private async failed(
    watch: Watch,
    err: unknown,
    started: number,
    what: 'HEAD' | 'GET',
    dependents: number,
  ): Promise<Outcome> {
    let message = (err as Error).message;
    if (err instanceof UpstreamUnavailableError) {
      const budget = this.deps.registry.rateLimit(this.registry);
      const pullLimit = budget !== undefined && budget.remaining === 0 && budget.seenAt >= started;
      if (pullLimit && what === 'GET') {
        message = `${message}: the pull limit is reached (0 of ${budget.limit}); the index is read once pulls are left`;
      } else {
        const failures = this.state.failures + 1;
        const pause = backoffSeconds(failures, err.retryAfter, this.clock.random);
        // Checks that were in flight may fail too: the pause only grows.
        const pausedUntil = Math.max(this.state.pausedUntil, this.now() + Math.ceil(pause * 1000));
        message = `${message}${pullLimit ? ' (pull limit)' : ''}; ${this.registry} paused for ${Math.ceil(pause)} s`;
        this.state = { ...this.state, failures, pausedUntil, lastError: message };
        this.touched = true;
        // Saved at once: the other instances' checks of this registry must stop now, not at the cycle's end.
        await this.deps.budgets.save(this.state);
      }
    }
    log.warn('watch check failed', { image: watch.image, error: message });
    const at = new Date(started).toISOString();
    const ok = await this.deps.watches.update(watch, {
      lastCheck: at,
      lastError: message,
      consecutiveFailures: watch.consecutiveFailures + 1,
      dependents,
      // A paused registry's watches wait for the pause; any other failure is retried at the next interval.
      nextCheck:
        this.state.pausedUntil > this.now()
          ? new Date(this.state.pausedUntil).toISOString()
          : this.interval(),
    });
    return ok ? 'failed' : 'lost';
  }
}
