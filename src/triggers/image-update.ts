import { randomUUID } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import type { DependencyIndex } from '../dependencies/dependency-index';
import { log } from '../log';
import { parseImageReference } from '../registry/image-reference';
import type { RegistryClient } from '../registry/registry-client';
import type { RunService } from '../runs/run-service';
import { names, type Storage } from '../storage/storage';
import type { TaskService } from '../tasks/task-service';
import type { Dedupe } from './dedupe';

/** A tag pushed to a registry, from any source (distribution notifications, Event Grid, Docker Hub, polling). */
export interface ImagePush {
  readonly source: string;
  readonly eventId: string;
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly timestamp: string;
}

/** One per-task decision about an observed update. */
export interface ImageUpdateDecision {
  readonly task: string;
  readonly decision: 'triggered' | 'skipped';
  readonly reason: string;
  readonly runId?: string;
}

/** An observed update of an image and what it led to. */
export interface ImageUpdateRecord {
  readonly image: string;
  readonly digest: string;
  readonly eventId: string;
  readonly source: string;
  readonly time: string;
  readonly decisions: ImageUpdateDecision[];
}

/** The audit of base-image updates: per image, every observed update and every per-task decision. */
export class ImageUpdateLog {
  private readonly table: TableClient;

  constructor(storage: Storage) {
    this.table = storage.table(names.tables.imageUpdates);
  }

  async record(entry: ImageUpdateRecord): Promise<void> {
    const inverted = String(8.64e15 - Date.now()).padStart(16, '0');
    await this.table.createEntity({
      partitionKey: encodeURIComponent(entry.image),
      rowKey: `${inverted}-${randomUUID()}`,
      image: entry.image,
      digest: entry.digest,
      eventId: entry.eventId,
      source: entry.source,
      time: entry.time,
      decisions: JSON.stringify(entry.decisions),
    });
  }

  async list(image: string, top: number): Promise<ImageUpdateRecord[]> {
    const out: ImageUpdateRecord[] = [];
    const filter = `PartitionKey eq '${encodeURIComponent(image).replace(/'/g, "''")}'`;
    for await (const e of this.table.listEntities<Record<string, string>>({ queryOptions: { filter } })) {
      out.push({
        image: e.image!,
        digest: e.digest!,
        eventId: e.eventId!,
        source: e.source!,
        time: e.time!,
        decisions: JSON.parse(e.decisions!) as ImageUpdateDecision[],
      });
      if (out.length >= top) break;
    }
    return out;
  }
}

/** What the decision needs. */
export interface ImageUpdateDeps {
  readonly index: DependencyIndex;
  readonly tasks: TaskService;
  readonly runs: RunService;
  readonly dedupe: Dedupe;
  readonly registry: RegistryClient;
  readonly updates: ImageUpdateLog;
  readonly homeRegistry: string;
}

/**
 * The one decision for base-image updates, whatever brought the news: a dependent task is rebuilt only when its
 * base-image trigger covers the dependency, the digest of its own platform changed, this (task, image, digest) has
 * not triggered before, no run of it is already Queued, and the image is not the task's own output.
 */
export async function handleImagePush(
  push: ImagePush,
  deps: ImageUpdateDeps,
): Promise<ImageUpdateRecord | null> {
  if (!(await deps.dedupe.claim('image-event', `${push.source} ${push.eventId}`))) return null;
  const image = deps.index.key(push);
  const ref = { registry: push.registry, repository: push.repository, tag: push.tag, digest: push.digest };
  const decisions: ImageUpdateDecision[] = [];
  const skip = (task: string, reason: string): void =>
    void decisions.push({ task, decision: 'skipped', reason });

  for (const dependent of await deps.index.dependents(image)) {
    const stored = await deps.tasks.store.find(dependent.task);
    if (!stored) continue;
    const task = stored.task;
    const trigger = task.trigger.baseImageTrigger;
    if (!trigger || trigger.status === 'Disabled') {
      skip(task.name, 'the base-image trigger is disabled');
      continue;
    }
    if (trigger.baseImageTriggerType === 'Runtime' && dependent.type !== 'RunTime') {
      skip(task.name, 'a BuildTime dependency, and the trigger type is Runtime');
      continue;
    }
    if (task.status === 'Disabled') {
      skip(task.name, 'the task is disabled');
      continue;
    }
    const outputs = task.step.imageNames
      .filter((n) => !n.includes('{{'))
      .map((n) => deps.index.key(parseImageReference(n, { defaultRegistry: deps.homeRegistry })));
    if (outputs.includes(image)) {
      skip(task.name, "the image is the task's own output (a loop)");
      continue;
    }
    if (dependent.digest === push.digest) {
      skip(task.name, `digest unchanged: the task was last built from ${push.digest}`);
      continue;
    }
    let platformDigest: string | null = null;
    try {
      platformDigest = (await deps.registry.resolve(ref, task.platform))?.platformDigest ?? null;
    } catch (err) {
      log.warn('platform digest lookup failed', { image, error: (err as Error).message });
    }
    if (platformDigest && dependent.platformDigest === platformDigest) {
      skip(
        task.name,
        `platform unchanged: ${task.platform.os.toLowerCase()}/${task.platform.architecture} is still ${platformDigest}`,
      );
      continue;
    }
    if (!(await deps.dedupe.claim('image-update', `${task.name.toLowerCase()} ${image} ${push.digest}`))) {
      skip(task.name, `already triggered for ${push.digest}`);
      continue;
    }
    const queued = await deps.runs.list({
      top: 1,
      filter: `taskName eq '${task.name.replace(/'/g, "''")}' and status eq 'Queued'`,
    });
    if (queued.runs.length > 0) {
      skip(task.name, `run ${queued.runs[0]!.runId} is already queued and will build the new base`);
      continue;
    }
    const run = await deps.tasks.startRun(stored, {
      kind: 'image',
      descriptor: {
        id: push.eventId,
        timestamp: push.timestamp,
        images: [
          { registry: push.registry, repository: push.repository, tag: push.tag, digest: push.digest },
        ],
      },
    });
    decisions.push({
      task: task.name,
      decision: 'triggered',
      reason: `${image} is now ${push.digest}`,
      runId: run.runId,
    });
  }
  const record: ImageUpdateRecord = {
    image,
    digest: push.digest,
    eventId: push.eventId,
    source: push.source,
    time: new Date().toISOString(),
    decisions,
  };
  await deps.updates.record(record);
  log.info('image update', { image, digest: push.digest, decisions: decisions.length });
  return record;
}
