import { createHash } from 'node:crypto';
import { BatchedInserts } from '../storage/batched-inserts';
import { names, type Storage } from '../storage/storage';

/** Keys of handled deliveries: the first to claim a key wins, every later claim (a redelivery, a second instance) loses. */
export class Dedupe {
  private readonly inserts: BatchedInserts;

  constructor(storage: Storage) {
    this.inserts = new BatchedInserts(storage.table(names.tables.dedupe));
  }

  /** True if this call claimed `key` in `scope`; false if it was claimed before. */
  async claim(scope: string, key: string, detail: Record<string, string> = {}): Promise<boolean> {
    // Table keys cannot hold / \ # ? or control characters: hash the key, keep it readable beside.
    const rowKey = createHash('sha256').update(key).digest('hex');
    return this.inserts.insert({ partitionKey: scope, rowKey, key, ...detail });
  }
}
