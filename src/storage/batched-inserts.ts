import type { TableClient, TableEntity, TransactionAction } from '@azure/data-tables';
import { statusOf } from './write-conflicts';

interface Pending {
  readonly entity: TableEntity;
  /** The new entity's ETag ('' when storage sent none), or null when one with its keys already existed. */
  readonly resolve: (etag: string | null) => void;
  readonly reject: (err: unknown) => void;
}

/** A table transaction holds at most 100 entities of one partition and 4 MiB; keep well under the size. */
const MAX_BATCH = 100;
const MAX_BATCH_BYTES = 2 * 1024 * 1024;

/**
 * Inserts into one table, coalescing the inserts that callers make at the same moment into entity-group
 * transactions (a burst of a thousand inserts costs about ten requests). Each caller still learns its own outcome:
 * true when its entity was inserted, false when one with its keys already existed. When a transaction fails (one
 * entity existed, say) its entities are inserted one by one, so no caller is failed or skipped for another's entity.
 * A lone insert goes out at once, as a plain insert.
 */
export class BatchedInserts {
  private readonly pending = new Map<string, Pending[]>();
  private readonly draining = new Set<string>();

  constructor(private readonly table: TableClient) {}

  /** True when `entity` was inserted; false when one with its keys already existed. */
  async insert(entity: TableEntity): Promise<boolean> {
    return (await this.create(entity)) !== null;
  }

  /** Like {@link insert}, with the inserted entity's ETag (for conditional updates after), or null. */
  create(entity: TableEntity): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const queue = this.pending.get(entity.partitionKey) ?? [];
      queue.push({ entity, resolve, reject });
      this.pending.set(entity.partitionKey, queue);
      if (!this.draining.has(entity.partitionKey)) void this.drain(entity.partitionKey);
    });
  }

  private async drain(partitionKey: string): Promise<void> {
    this.draining.add(partitionKey);
    try {
      for (;;) {
        const queue = this.pending.get(partitionKey) ?? [];
        if (queue.length === 0) break;
        const batch = takeBatch(queue);
        await this.submit(batch);
      }
    } finally {
      this.draining.delete(partitionKey);
      this.pending.delete(partitionKey);
    }
  }

  private async submit(batch: Pending[]): Promise<void> {
    if (batch.length > 1) {
      try {
        const actions: TransactionAction[] = batch.map((p) => ['create', p.entity]);
        const response = await this.table.submitTransaction(actions);
        for (const p of batch) p.resolve(response.getResponseForEntity(p.entity.rowKey)?.etag ?? '');
        return;
      } catch {
        // One by one below: each caller gets its own answer.
      }
    }
    await Promise.all(
      batch.map(async (p) => {
        try {
          const created = await this.table.createEntity(p.entity);
          p.resolve(created.etag ?? '');
        } catch (err) {
          if (statusOf(err) === 409) p.resolve(null);
          else p.reject(err);
        }
      }),
    );
  }
}

/** Takes the next batch from the queue: up to 100 entities with distinct row keys, within the size limit. */
function takeBatch(queue: Pending[]): Pending[] {
  const batch: Pending[] = [];
  const rowKeys = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < queue.length && batch.length < MAX_BATCH;) {
    const p = queue[i]!;
    const size = JSON.stringify(p.entity).length;
    if (rowKeys.has(p.entity.rowKey) || (batch.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      i++;
      continue;
    }
    rowKeys.add(p.entity.rowKey);
    bytes += size;
    batch.push(p);
    queue.splice(i, 1);
  }
  return batch;
}
