import type { TableClient } from '@azure/data-tables';
import type { BaseImageDependency } from '../dockerfile/scan';
import { formatImageReference, type ImageReference } from '../registry/image-reference';
import { names, type Storage } from '../storage/storage';

/** A dependency as recorded after a build: with the digests it was built from (null when unresolved). */
export interface RecordedDependency extends BaseImageDependency {
  /** The manifest of the task's platform the build used (equal to `digest` for single-platform images). */
  readonly platformDigest: string | null;
}

/** One row of the reverse index: a task built from an image. */
export interface Dependent {
  readonly image: string;
  readonly task: string;
  readonly type: 'RunTime' | 'BuildTime';
  readonly digest: string | null;
  readonly platformDigest: string | null;
  readonly updated: string;
}

/** Table keys cannot hold / \ # ?: percent-encode the reference. */
function partition(image: string): string {
  return encodeURIComponent(image);
}

/** Which images gained a dependent, and which lost one (and may have none left), in one change of the index. */
export interface IndexChange {
  readonly added: readonly string[];
  readonly dropped: readonly string[];
}

/** The reverse dependency index: image reference → the tasks built from it, one partition per image. */
export class DependencyIndex {
  private readonly table: TableClient;
  /** Told after each change (the watches follow the index); a failure is the listener's to handle. */
  onChange: (change: IndexChange) => Promise<void> = () => Promise.resolve();

  constructor(
    storage: Storage,
    /** Maps every name of a registry to one (127.0.0.1:5000 and localhost:5000 are one registry). */
    private readonly canonicalRegistry: (registry: string) => string,
  ) {
    this.table = storage.table(names.tables.dependencies);
  }

  /** The index key of a reference: canonical registry, repository and tag (digest-pinned references are not indexed). */
  key(ref: Pick<ImageReference, 'registry' | 'repository' | 'tag'>): string {
    return formatImageReference({
      registry: this.canonicalRegistry(ref.registry),
      repository: ref.repository,
      tag: ref.tag ?? 'latest',
      digest: null,
    });
  }

  /** Replaces a task's rows: adds or updates the current dependencies, removes those it no longer has. */
  async record(
    task: string,
    current: readonly RecordedDependency[],
    previous: readonly RecordedDependency[],
  ): Promise<void> {
    const rowKey = task.toLowerCase();
    const now = new Date().toISOString();
    const keep = new Set<string>();
    const before = new Set(previous.filter((d) => d.tag !== null).map((d) => this.key(d)));
    const dropped: string[] = [];
    for (const dep of current) {
      if (dep.digest && !dep.tag) continue;
      if (dep.tag === null) continue;
      const image = this.key(dep);
      keep.add(image);
      await this.table.upsertEntity(
        {
          partitionKey: partition(image),
          rowKey,
          image,
          task,
          type: dep.type,
          digest: dep.digest ?? '',
          platformDigest: dep.platformDigest ?? '',
          updated: now,
        },
        'Replace',
      );
    }
    for (const dep of previous) {
      if (dep.tag === null) continue;
      const image = this.key(dep);
      if (keep.has(image)) continue;
      await this.table.deleteEntity(partition(image), rowKey).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
      dropped.push(image);
    }
    await this.onChange({ added: [...keep].filter((image) => !before.has(image)), dropped });
  }

  /** Removes every row of a task (it was deleted): a task later created with its name starts with none. */
  async forget(task: string): Promise<void> {
    // Across partitions, not from the task's recorded list: rows written before a crash kept the list from them.
    const filter = `RowKey eq '${task.toLowerCase().replace(/'/g, "''")}'`;
    const dropped: string[] = [];
    for await (const e of this.table.listEntities({
      queryOptions: { filter, select: ['PartitionKey', 'RowKey'] },
    })) {
      await this.table.deleteEntity(e.partitionKey!, e.rowKey!).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
      dropped.push(decodeURIComponent(e.partitionKey!));
    }
    await this.onChange({ added: [], dropped });
  }

  /** Every image with the tasks built from it: one scan of the index (the watches are reconciled with it). */
  async all(): Promise<Map<string, Dependent[]>> {
    const out = new Map<string, Dependent[]>();
    for await (const e of this.table.listEntities<Record<string, string>>()) {
      const dependent = toDependent(e);
      const list = out.get(dependent.image);
      if (list) list.push(dependent);
      else out.set(dependent.image, [dependent]);
    }
    return out;
  }

  /** Every task built from `image`: one partition query, however many tasks exist. */
  async dependents(image: string): Promise<Dependent[]> {
    const out: Dependent[] = [];
    const filter = `PartitionKey eq '${partition(image).replace(/'/g, "''")}'`;
    for await (const e of this.table.listEntities<Record<string, string>>({ queryOptions: { filter } }))
      out.push(toDependent(e));
    return out;
  }
}

function toDependent(e: Record<string, string | undefined>): Dependent {
  return {
    image: e.image!,
    task: e.task!,
    type: e.type as Dependent['type'],
    digest: e.digest || null,
    platformDigest: e.platformDigest || null,
    updated: e.updated!,
  };
}
