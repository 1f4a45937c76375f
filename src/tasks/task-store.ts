import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { NotFoundError } from '../errors';
import { checkContinuationToken } from '../storage/continuation-token';
import { statusOf } from '../storage/write-conflicts';
import { names, type Storage } from '../storage/storage';
import type { Task } from './task';
import { isTaskName } from './task-schema';

const PARTITION = 'task';

/** A task with its sealed secrets and the ETag it was read at. */
export interface StoredTask {
  readonly task: Task;
  readonly sealedSecrets: string | undefined;
  readonly etag: string;
  readonly location: string | undefined;
  readonly tags: Readonly<Record<string, string>> | undefined;
}

interface TaskEntity {
  partitionKey: string;
  rowKey: string;
  name: string;
  task: string;
  sealedSecrets?: string;
  hasTimers: boolean;
  location?: string;
  tags?: string;
}

function fromEntity(e: TableEntityResult<TaskEntity>): StoredTask {
  return {
    task: JSON.parse(e.task) as Task,
    sealedSecrets: e.sealedSecrets || undefined,
    etag: e.etag,
    location: e.location || undefined,
    tags: e.tags ? (JSON.parse(e.tags) as Record<string, string>) : undefined,
  };
}

/** The tasks table; task names are case-insensitive, as in ARM. */
export class TaskStore {
  private readonly table: TableClient;

  constructor(storage: Storage) {
    this.table = storage.table(names.tables.tasks);
  }

  private entity(
    task: Task,
    sealedSecrets: string | undefined,
    extra: { location?: string | undefined; tags?: Readonly<Record<string, string>> | undefined },
  ): TaskEntity {
    return {
      partitionKey: PARTITION,
      rowKey: task.name.toLowerCase(),
      name: task.name,
      task: JSON.stringify(task),
      sealedSecrets: sealedSecrets ?? '',
      hasTimers: task.trigger.timerTriggers.length > 0,
      location: extra.location ?? '',
      tags: extra.tags ? JSON.stringify(extra.tags) : '',
    };
  }

  /** The task, or null. */
  async find(name: string): Promise<StoredTask | null> {
    // A name no task can have is not looked up: a row key with `/`, `#` or `?` is a 400 from the table, not a 404.
    if (!isTaskName(name)) return null;
    try {
      return fromEntity(await this.table.getEntity<TaskEntity>(PARTITION, name.toLowerCase()));
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  /** The task, or a {@link NotFoundError} naming it. */
  async get(name: string): Promise<StoredTask> {
    const found = await this.find(name);
    if (!found) throw new NotFoundError(`task '${name}' was not found`, 'taskName');
    return found;
  }

  /** Writes a task: created when `etag` is undefined (409 if it exists meanwhile), else replaced if unchanged (412). */
  async put(
    task: Task,
    sealedSecrets: string | undefined,
    extra: { location?: string | undefined; tags?: Readonly<Record<string, string>> | undefined },
    etag: string | undefined,
  ): Promise<void> {
    const entity = this.entity(task, sealedSecrets, extra);
    if (etag === undefined) await this.table.createEntity(entity);
    else await this.table.updateEntity(entity, 'Replace', { etag });
  }

  /** Deletes a task; false when there was none. */
  async delete(name: string): Promise<boolean> {
    if (!isTaskName(name)) return false;
    try {
      await this.table.deleteEntity(PARTITION, name.toLowerCase());
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  /** A page of tasks, by name. */
  async list(
    top: number,
    continuationToken?: string,
  ): Promise<{ tasks: StoredTask[]; continuationToken: string | undefined }> {
    if (continuationToken) checkContinuationToken(continuationToken);
    const pages = this.table
      .listEntities<TaskEntity>({ queryOptions: { filter: `PartitionKey eq '${PARTITION}'` } })
      .byPage({ maxPageSize: top, ...(continuationToken ? { continuationToken } : {}) });
    const next = await pages.next();
    if (next.done) return { tasks: [], continuationToken: undefined };
    return { tasks: next.value.map(fromEntity), continuationToken: next.value.continuationToken };
  }

  /** Every task (for trigger matching). */
  async *all(filter?: string): AsyncGenerator<StoredTask> {
    const query = `PartitionKey eq '${PARTITION}'${filter ? ` and ${filter}` : ''}`;
    for await (const entity of this.table.listEntities<TaskEntity>({ queryOptions: { filter: query } }))
      yield fromEntity(entity);
  }
}
