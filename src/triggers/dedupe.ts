import { createHash } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { names, type Storage } from '../storage/storage';

/** Keys of handled deliveries: the first to claim a key wins, every later claim (a redelivery, a second instance) loses. */
export class Dedupe {
  private readonly table: TableClient;

  constructor(storage: Storage) {
    this.table = storage.table(names.tables.dedupe);
  }

  /** True if this call claimed `key` in `scope`; false if it was claimed before. */
  async claim(scope: string, key: string, detail: Record<string, string> = {}): Promise<boolean> {
    // Table keys cannot hold / \ # ? or control characters: hash the key, keep it readable beside.
    const rowKey = createHash('sha256').update(key).digest('hex');
    try {
      await this.table.createEntity({ partitionKey: scope, rowKey, key, ...detail });
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 409) return false;
      throw err;
    }
  }
}
