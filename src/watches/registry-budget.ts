import type { TableClient } from '@azure/data-tables';
import type { RateLimitState } from '../registry/client';
import { names, type Storage } from '../storage/storage';

/** The first backoff step after a 429/5xx, in seconds (doubled per consecutive failure, then fully jittered). */
export const BACKOFF_BASE_SECONDS = 10;
/** The longest backoff the watcher draws by itself: an hour. */
export const BACKOFF_CAP_SECONDS = 3600;
/** The longest Retry-After honoured: a day (a registry's answer must not pause it for ever). */
export const RETRY_AFTER_CAP_SECONDS = 86400;

/**
 * How long a registry pauses after `failures` consecutive 429/5xx answers: exponential backoff with full jitter
 * (uniform in [0, min(cap, base·2^(failures-1))]), and never less than the registry's own Retry-After.
 */
export function backoffSeconds(
  failures: number,
  retryAfter: number | undefined,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** Math.max(0, failures - 1));
  return Math.max(Math.min(retryAfter ?? 0, RETRY_AFTER_CAP_SECONDS), random() * ceiling);
}

/**
 * The pulls kept back from index GETs: a tenth of the window's limit (at least one), left for the rebuilds those GETs
 * trigger, which pull the base too.
 */
export function pullReserve(limit: number): number {
  return Math.max(1, Math.ceil(limit / 10));
}

/** A registry's state as the watcher keeps it: its pull budget, and its backoff after 429/5xx. */
export interface RegistryState {
  readonly registry: string;
  /** The pull budget its last answer stated (`ratelimit-*`); none: unlimited, as far as we know. */
  readonly budget: RateLimitState | undefined;
  /** No request goes to the registry before this (epoch ms); 0 when it is not paused. */
  readonly pausedUntil: number;
  /** Consecutive 429/5xx/unreachable answers (0 after a success). */
  readonly failures: number;
  readonly lastError: string | null;
}

/** Whether an index GET (a pull on Docker Hub) may be spent: unlimited, or more left than the reserve. */
export function mayGet(state: RegistryState): boolean {
  const budget = state.budget;
  return !budget || budget.remaining > pullReserve(budget.limit);
}

/** A fresh state: no budget known, not paused. */
export function initialState(registry: string): RegistryState {
  return { registry, budget: undefined, pausedUntil: 0, failures: 0, lastError: null };
}

/** The per-registry states, in Table Storage so that another instance, or this one after a restart, keeps to them. */
export class RegistryBudgets {
  private readonly table: TableClient;

  constructor(storage: Storage) {
    this.table = storage.table(names.tables.watchedRegistries);
  }

  /** Every stored state. */
  async all(): Promise<Map<string, RegistryState>> {
    const out = new Map<string, RegistryState>();
    for await (const e of this.table.listEntities<Record<string, unknown>>()) {
      const state = fromEntity(e);
      out.set(state.registry, state);
    }
    return out;
  }

  /** Stores a state (the last writer wins: each field is a recent observation, none is a counter to merge). */
  async save(state: RegistryState): Promise<void> {
    await this.table.upsertEntity(
      {
        partitionKey: 'registry',
        rowKey: encodeURIComponent(state.registry),
        registry: state.registry,
        budget: state.budget ? JSON.stringify(state.budget) : '',
        pausedUntil: state.pausedUntil,
        failures: state.failures,
        lastError: state.lastError ?? '',
      },
      'Replace',
    );
  }
}

function fromEntity(e: Record<string, unknown>): RegistryState {
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  const budget = text(e.budget);
  return {
    registry: text(e.registry),
    budget: budget ? (JSON.parse(budget) as RateLimitState) : undefined,
    pausedUntil: typeof e.pausedUntil === 'number' ? e.pausedUntil : 0,
    failures: typeof e.failures === 'number' ? e.failures : 0,
    lastError: text(e.lastError) || null,
  };
}
