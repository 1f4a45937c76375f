import { HELD_CLAIM_WAIT_MS } from '../storage/claims';
import { BatchedInserts } from '../storage/batched-inserts';
import { randomUUID } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import pLimit from 'p-limit';
import { UpstreamUnavailableError } from '../errors';
import type { Dependent, DependencyIndex } from '../dependencies/dependency-index';
import type { Platform } from '../runs/run';
import { log } from '../log';
import { parseImageReference } from '../registry/image-reference';
import { credentialIdentity, type RegistryCredentials } from '../registry/auth';
import {
  platformDigestOf as pickPlatform,
  type PlatformManifest,
  type RegistryClient,
} from '../registry/client';
import type { RunService } from '../runs/run-service';
import { names, type Storage } from '../storage/storage';
import type { TaskService } from '../tasks/task-service';
import type { Dedupe } from './dedupe';
import type { UpdateNotification } from './update-notification';

/** A tag pushed to a registry, from any source (distribution notifications, Event Grid, Docker Hub, polling). */
export interface ImagePush {
  /** When Refit first heard of the push (set at ingress, before queueing). */
  readonly receivedAt?: string;
  readonly source: string;
  readonly eventId: string;
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly timestamp: string;
  /**
   * Each platform's manifest in the index `digest` names, when the sender already read it (the watcher): the
   * decision then compares platform digests without GETting the index again. Empty for a single-platform image.
   */
  readonly platforms?: readonly PlatformManifest[];
}

const DECISION_CONCURRENCY = 256;

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
  /** When Refit received the event, and when it had decided for every dependent (`time`). */
  readonly receivedAt: string;
  readonly time: string;
  readonly decisions: ImageUpdateDecision[];
}

/** The audit of base-image updates: per image, every observed update and every per-task decision. */
export class ImageUpdateLog {
  private readonly table: TableClient;

  constructor(storage: Storage) {
    this.table = storage.table(names.tables.imageUpdates);
    this.inserts = new BatchedInserts(this.table);
  }

  private readonly inserts: BatchedInserts;

  /**
   * Records an update: one row per decision, sorted right after one row for the event (a base with thousands of
   * dependents would not fit in one entity).
   */
  async record(entry: ImageUpdateRecord): Promise<void> {
    const partitionKey = encodeURIComponent(entry.image);
    const head = `${String(8.64e15 - Date.now()).padStart(16, '0')}-${randomUUID()}`;
    const { decisions, ...event } = entry;
    // Decisions first (in transactions of up to 100), the event row last: a reader that sees the event sees all of
    // its decisions.
    await Promise.all(
      decisions.map((d) =>
        this.inserts.insert({ partitionKey, rowKey: `${head}~${d.task.toLowerCase()}`, ...d }),
      ),
    );
    await this.table.createEntity({ partitionKey, rowKey: head, ...event, decisionCount: decisions.length });
  }

  /** The newest `top` updates of an image, each with its decisions (rows sort as event, then its decisions). */
  async list(image: string, top: number): Promise<ImageUpdateRecord[]> {
    const out: ImageUpdateRecord[] = [];
    let head: string | undefined;
    const filter = `PartitionKey eq '${encodeURIComponent(image).replace(/'/g, "''")}'`;
    for await (const e of this.table.listEntities<Record<string, string>>({ queryOptions: { filter } })) {
      const rowKey = e.rowKey!;
      if (rowKey.includes('~')) {
        if (head && rowKey.startsWith(`${head}~`)) {
          out[out.length - 1]!.decisions.push({
            task: e.task!,
            decision: e.decision as ImageUpdateDecision['decision'],
            reason: e.reason!,
            ...(e.runId ? { runId: e.runId } : {}),
          });
        }
        continue;
      }
      if (out.length >= top) break;
      head = rowKey;
      out.push({
        image: e.image!,
        digest: e.digest!,
        eventId: e.eventId!,
        source: e.source!,
        receivedAt: e.receivedAt ?? e.time!,
        time: e.time!,
        decisions: [],
      });
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
  /** Queues the POST to a trigger's updateTriggerEndpoint for a run it started. */
  readonly notify?: (n: UpdateNotification) => Promise<void>;
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
  const receivedAt = push.receivedAt ?? new Date().toISOString();
  const image = deps.index.key(push);
  const ref = { registry: push.registry, repository: push.repository, tag: push.tag, digest: push.digest };
  const decisions: ImageUpdateDecision[] = [];
  const skip = (task: string, reason: string): void =>
    void decisions.push({ task, decision: 'skipped', reason });

  // One registry lookup per platform and login, however many tasks share them: a task with credentials of its own
  // for the registry never shares the answer another login (or none) got.
  const platformDigests = new Map<string, Promise<string | null>>();
  const platformDigestOf = (
    platform: Platform,
    credentials?: RegistryCredentials,
  ): Promise<string | null> => {
    const key = `${platform.os}/${platform.architecture}/${platform.variant ?? ''} ${credentialIdentity(credentials)}`;
    let found = platformDigests.get(key);
    if (!found && push.platforms) {
      found = Promise.resolve(pickPlatform({ digest: push.digest, platforms: push.platforms }, platform));
      platformDigests.set(key, found);
    }
    if (!found) {
      found = deps.registry.resolve(ref, platform, credentials).then(
        (r) => r?.platformDigest ?? null,
        (err: unknown) => {
          log.warn('platform digest lookup failed', { image, error: (err as Error).message });
          return null;
        },
      );
      platformDigests.set(key, found);
    }
    return found;
  };

  const decide = async (dependent: Dependent): Promise<void> => {
    const stored = await deps.tasks.store.find(dependent.task);
    if (!stored) return;
    const task = stored.task;
    const trigger = task.trigger.baseImageTrigger;
    if (!trigger || trigger.status === 'Disabled')
      return skip(task.name, 'the base-image trigger is disabled');
    if (trigger.baseImageTriggerType === 'Runtime' && dependent.type !== 'RunTime') {
      return skip(task.name, 'a BuildTime dependency, and the trigger type is Runtime');
    }
    if (task.status === 'Disabled') return skip(task.name, 'the task is disabled');
    const outputs = (task.step.type === 'Docker' ? task.step.imageNames : (task.outputImages ?? []))
      .filter((n) => !n.includes('{{'))
      .map((n) => deps.index.key(parseImageReference(n, { defaultRegistry: deps.homeRegistry })));
    if (outputs.includes(image)) return skip(task.name, "the image is the task's own output (a loop)");
    if (dependent.digest === push.digest)
      return skip(task.name, `digest unchanged: the task was last built from ${push.digest}`);
    // A login Key Vault will not give now is a failed lookup, as a registry's refusal is: the decision goes on.
    const credentials = await deps.tasks.registryCredentials(stored, push.registry).catch((err: unknown) => {
      log.warn('task registry credentials could not be resolved', {
        task: task.name,
        registry: push.registry,
        error: (err as Error).message,
      });
      return null;
    });
    const platformDigest = credentials === null ? null : await platformDigestOf(task.platform, credentials);
    if (platformDigest && dependent.platformDigest === platformDigest) {
      return skip(
        task.name,
        `platform unchanged: ${task.platform.os.toLowerCase()}/${task.platform.architecture} is still ${platformDigest}`,
      );
    }
    const descriptor = {
      id: push.eventId,
      timestamp: push.timestamp,
      images: [{ registry: push.registry, repository: push.repository, tag: push.tag, digest: push.digest }],
    };
    // Claim, queue, confirm: a failure before the run is queued releases the claim (and the slot), so the retry of
    // this push decides again; a claim whose holder died is taken over once its lease ends.
    const claimed = await deps.dedupe.once(
      'image-update',
      `${task.name.toLowerCase()} ${image} ${push.digest}`,
      async () => {
        const slot = await deps.runs.claimQueuedSlot(task.name);
        if (!slot) return null;
        // A run that could not be queued must not hold the slot, or later updates would be absorbed by nothing.
        const queued = await deps.tasks
          .startRun(stored, { kind: 'image', descriptor })
          .catch(async (err: unknown) => {
            await slot.release();
            throw err;
          });
        await slot.confirm({ runId: queued.runId });
        return queued;
      },
      { confirmed: (queued) => (queued ? { runId: queued.runId } : {}), waitMs: HELD_CLAIM_WAIT_MS },
    );
    if (claimed.status === 'held') {
      // Another delivery of this update is queueing the run (or died doing so): this one is retried later.
      throw new UpstreamUnavailableError(
        `the update of ${image} to ${push.digest} is being handled for task '${task.name}'; retry later`,
        'digest',
      );
    }
    if (claimed.status === 'done') return skip(task.name, `already triggered for ${push.digest}`);
    const run = claimed.value;
    if (!run) return skip(task.name, 'a run of the task is already queued and will build the new base');
    if (trigger.updateTriggerEndpoint && deps.notify) {
      await deps.notify({
        endpoint: trigger.updateTriggerEndpoint,
        payloadType: trigger.updateTriggerPayloadType ?? 'Default',
        taskName: task.name,
        runId: run.runId,
        registry: deps.homeRegistry,
        imageUpdateTrigger: descriptor,
      });
    }
    decisions.push({
      task: task.name,
      decision: 'triggered',
      reason: `${image} is now ${push.digest}`,
      runId: run.runId,
    });
  };

  // Dependents are decided in parallel, a bounded number at a time (one base may have thousands).
  const dependents = await deps.index.dependents(image);
  const limit = pLimit(DECISION_CONCURRENCY);
  await Promise.all(dependents.map((dependent) => limit(() => decide(dependent))));
  const record: ImageUpdateRecord = {
    image,
    digest: push.digest,
    eventId: push.eventId,
    source: push.source,
    receivedAt,
    time: new Date().toISOString(),
    decisions,
  };
  // Claimed last: a delivery retried after a failure decides again (per-task claims keep runs single), and only
  // the first complete decision of an event is recorded (a record that failed is recorded by the retry).
  const recorded = await deps.dedupe.once('image-event', `${push.source} ${push.eventId}`, () =>
    deps.updates.record(record),
  );
  // Done, or another delivery of the event is recording it: the audit is theirs.
  if (recorded.status !== 'acted') return null;
  log.info('image update', { image, digest: push.digest, decisions: decisions.length });
  return record;
}
