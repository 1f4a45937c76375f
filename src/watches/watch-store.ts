import type { TableClient, TableEntityResult } from '@azure/data-tables';
import type { Dependent } from '../dependencies/dependency-index';
import { log } from '../log';
import type { PlatformManifest } from '../registry/client';
import { parseImageReference, type ImageReference } from '../registry/image-reference';
import { names, type Storage } from '../storage/storage';
import { statusOf } from '../storage/write-conflicts';

/** A watched reference: what its registry last said, when it is checked next, and how its checks went. */
export interface Watch {
  /** The dependency index's key: canonical registry/repository:tag. */
  readonly image: string;
  readonly ref: ImageReference;
  /** The digest last acted on (or found to be what every dependent was built from); null before the first check. */
  readonly indexDigest: string | null;
  /** Each platform's manifest in `indexDigest`, when its index was read (only after a change). */
  readonly platforms: readonly PlatformManifest[];
  /** A new digest seen once and waiting to settle, and when it was first seen. */
  readonly pendingDigest: string | null;
  readonly pendingSince: string | null;
  /** When the next check is due (ISO). */
  readonly nextCheck: string;
  /** Compare the next HEAD with what each dependent was built from, not with `indexDigest` (a new dependent). */
  readonly verify: boolean;
  /** How many tasks depended on it at its last check. */
  readonly dependents: number;
  readonly lastCheck: string | null;
  readonly lastSuccess: string | null;
  readonly lastError: string | null;
  readonly consecutiveFailures: number;
  /** Why the last check did not go further, when it was not an error (a settle, a deferred GET). */
  readonly note: string | null;
  readonly etag: string;
}

/** The fields a check writes. */
export type WatchUpdate = Partial<Omit<Watch, 'image' | 'ref' | 'etag'>>;

const PARTITION = 'watch';

/**
 * The watches, one row per reference, kept in step with the dependency index: a reference gains a watch when a task
 * starts to depend on it and loses it when none does. Only references on registries that send Refit no events are
 * watched (`watched(registry)`).
 */
export class WatchStore {
  private readonly table: TableClient;

  constructor(
    storage: Storage,
    /** Whether references on a registry are watched (it sends Refit no events). */
    readonly watched: (registry: string) => boolean,
    private readonly dependents: (image: string) => Promise<readonly Dependent[]>,
  ) {
    this.table = storage.table(names.tables.watches);
  }

  /** Every watch. */
  async all(): Promise<Watch[]> {
    return this.query(`PartitionKey eq '${PARTITION}'`);
  }

  /** The watches whose next check is due at `now`. */
  async due(now: number): Promise<Watch[]> {
    return this.query(`PartitionKey eq '${PARTITION}' and nextCheck le '${new Date(now).toISOString()}'`);
  }

  /** One watch, or null. */
  async get(image: string): Promise<Watch | null> {
    try {
      return toWatch(await this.table.getEntity<Record<string, unknown>>(PARTITION, rowKey(image)));
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  private async query(filter: string): Promise<Watch[]> {
    const out: Watch[] = [];
    for await (const e of this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter } }))
      out.push(toWatch(e));
    return out;
  }

  /**
   * Watches `image` from now on: a new watch is due at once; an existing one is checked at once against what each
   * dependent was built from (the new dependent may have been built from another digest).
   */
  async ensure(image: string, now: number = Date.now()): Promise<void> {
    const ref = parseImageReference(image);
    if (!this.watched(ref.registry)) return;
    const due = new Date(now).toISOString();
    try {
      await this.table.createEntity({
        partitionKey: PARTITION,
        rowKey: rowKey(image),
        image,
        nextCheck: due,
        verify: true,
        consecutiveFailures: 0,
        dependents: 0,
      });
      log.info('watch added', { image });
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      await this.table.updateEntity(
        { partitionKey: PARTITION, rowKey: rowKey(image), nextCheck: due, verify: true },
        'Merge',
      );
    }
  }

  /** Stops watching `image` if no task depends on it any more. */
  async dropIfUnused(image: string): Promise<void> {
    if ((await this.dependents(image)).length > 0) return;
    await this.remove(image);
  }

  private async remove(image: string): Promise<void> {
    try {
      await this.table.deleteEntity(PARTITION, rowKey(image));
      log.info('watch removed', { image });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  /** Follows one change of the dependency index. */
  async follow(change: { added: readonly string[]; dropped: readonly string[] }): Promise<void> {
    for (const image of change.added) await this.ensure(image);
    for (const image of change.dropped) await this.dropIfUnused(image);
  }

  /**
   * Makes the watches match the index (catches up on changes a crash kept from {@link follow}, and on tasks disabled
   * or re-enabled): a watch for each reference on a watched registry that some enabled task depends on, none other.
   */
  async reconcile(
    index: ReadonlyMap<string, readonly Dependent[]>,
    enabled: (task: string) => boolean,
  ): Promise<{ added: number; removed: number }> {
    const wanted = new Set<string>();
    for (const [image, dependents] of index) {
      if (!dependents.some((d) => enabled(d.task))) continue;
      let registry: string;
      try {
        registry = parseImageReference(image).registry;
      } catch {
        continue; // a row written before references were validated: nothing to watch
      }
      if (this.watched(registry)) wanted.add(image);
    }
    const existing = new Set((await this.all()).map((w) => w.image));
    let added = 0;
    let removed = 0;
    for (const image of wanted) {
      if (existing.has(image)) continue;
      await this.ensure(image);
      added++;
    }
    for (const image of existing) {
      if (wanted.has(image)) continue;
      await this.remove(image);
      removed++;
    }
    return { added, removed };
  }

  /**
   * Writes a check's outcome if the watch is still as it was read (ETag): false when another instance wrote it
   * meanwhile or it was removed (that outcome then stands, this one is dropped).
   */
  async update(watch: Watch, changes: WatchUpdate): Promise<boolean> {
    const entity: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
      partitionKey: PARTITION,
      rowKey: rowKey(watch.image),
    };
    for (const [name, value] of Object.entries(changes)) {
      if (name === 'platforms') entity.platforms = JSON.stringify(value);
      else entity[name] = value ?? '';
    }
    try {
      await this.table.updateEntity(entity, 'Merge', { etag: watch.etag });
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 412 || status === 404) return false;
      throw err;
    }
  }
}

function rowKey(image: string): string {
  return encodeURIComponent(image);
}

function toWatch(e: TableEntityResult<Record<string, unknown>>): Watch {
  const text = (v: unknown): string | null => (typeof v === 'string' && v ? v : null);
  const image = text(e.image) ?? decodeURIComponent(e.rowKey ?? '');
  const platforms = text(e.platforms);
  return {
    image,
    ref: parseImageReference(image),
    indexDigest: text(e.indexDigest),
    platforms: platforms ? (JSON.parse(platforms) as PlatformManifest[]) : [],
    pendingDigest: text(e.pendingDigest),
    pendingSince: text(e.pendingSince),
    nextCheck: text(e.nextCheck) ?? new Date(0).toISOString(),
    verify: e.verify === true,
    dependents: typeof e.dependents === 'number' ? e.dependents : 0,
    lastCheck: text(e.lastCheck),
    lastSuccess: text(e.lastSuccess),
    lastError: text(e.lastError),
    consecutiveFailures: typeof e.consecutiveFailures === 'number' ? e.consecutiveFailures : 0,
    note: text(e.note),
    etag: e.etag,
  };
}
