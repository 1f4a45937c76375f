import { randomUUID } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { log } from '../log';
import { names, type Storage } from '../storage/storage';

/** One trigger decision: a run started for a task, or nothing, and why. */
export interface TriggerDecision {
  readonly source: 'github' | 'azuredevops' | 'timer';
  readonly eventId: string;
  readonly task?: string;
  readonly decision: 'triggered' | 'skipped';
  readonly reason: string;
  readonly runId?: string;
}

/** The audit of trigger decisions, newest first per source. */
export class DecisionLog {
  private readonly table: TableClient;

  constructor(storage: Storage) {
    this.table = storage.table(names.tables.triggerDecisions);
  }

  /** Records a decision (and logs it). */
  async record(decision: TriggerDecision): Promise<TriggerDecision> {
    const inverted = String(8.64e15 - Date.now()).padStart(16, '0');
    await this.table.createEntity({
      partitionKey: decision.source,
      rowKey: `${inverted}-${randomUUID()}`,
      time: new Date().toISOString(),
      ...decision,
    });
    log.info('trigger decision', { ...decision });
    return decision;
  }

  /** The newest decisions of a source. */
  async list(source: string, top: number): Promise<(TriggerDecision & { time: string })[]> {
    const out: (TriggerDecision & { time: string })[] = [];
    const filter = `PartitionKey eq '${source.replace(/'/g, "''")}'`;
    for await (const e of this.table.listEntities<TriggerDecision & { time: string }>({
      queryOptions: { filter },
    })) {
      const { source: s, eventId, task, decision, reason, runId, time } = e;
      out.push({
        source: s,
        eventId,
        decision,
        reason,
        time,
        ...(task ? { task } : {}),
        ...(runId ? { runId } : {}),
      });
      if (out.length >= top) break;
    }
    return out;
  }
}
