import type { DependencyIndex } from '../dependencies/dependency-index';
import type { PlatformManifest, RateLimitState } from '../registry/client';
import type { RegistryBudgets } from './registry-budget';
import type { WatchStore } from './watch-store';

/** A watch as the API shows it. */
export interface WatchView {
  readonly image: string;
  /** Tasks built from it now. */
  readonly dependents: number;
  readonly indexDigest: string | null;
  readonly platforms: readonly PlatformManifest[];
  readonly pendingDigest: string | null;
  readonly nextCheck: string;
  readonly health: {
    readonly lastCheck: string | null;
    readonly lastSuccess: string | null;
    readonly lastError: string | null;
    readonly consecutiveFailures: number;
    readonly note: string | null;
  };
  readonly registry: {
    readonly name: string;
    /** Its pull budget as its last answer stated it; null: it states none (unlimited). */
    readonly budget: RateLimitState | null;
    /** Until when it is paused after 429/5xx (ISO), or null. */
    readonly pausedUntil: string | null;
    readonly failures: number;
    readonly lastError: string | null;
  };
}

/** Every watch with its registry's state, sorted by reference. */
export async function listWatches(parts: {
  readonly watches: WatchStore;
  readonly budgets: RegistryBudgets;
  readonly dependencyIndex: DependencyIndex;
}): Promise<WatchView[]> {
  const [watches, states, index] = await Promise.all([
    parts.watches.all(),
    parts.budgets.all(),
    parts.dependencyIndex.all(),
  ]);
  return watches
    .sort((a, b) => a.image.localeCompare(b.image))
    .map((w) => {
      const state = states.get(w.ref.registry);
      return {
        image: w.image,
        dependents: index.get(w.image)?.length ?? 0,
        indexDigest: w.indexDigest,
        platforms: w.platforms,
        pendingDigest: w.pendingDigest,
        nextCheck: w.nextCheck,
        health: {
          lastCheck: w.lastCheck,
          lastSuccess: w.lastSuccess,
          lastError: w.lastError,
          consecutiveFailures: w.consecutiveFailures,
          note: w.note,
        },
        registry: {
          name: w.ref.registry,
          budget: state?.budget ?? null,
          pausedUntil:
            state && state.pausedUntil > Date.now() ? new Date(state.pausedUntil).toISOString() : null,
          failures: state?.failures ?? 0,
          lastError: state?.lastError ?? null,
        },
      };
    });
}
