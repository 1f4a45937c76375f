import { BatchedInserts } from '../storage/batched-inserts';
import type { TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import type { Config } from '../config';
import { ConflictError, ValidationError } from '../errors';
import type { Executor, RunOutcome } from '../executors/executor';
import { log } from '../log';
import { open } from '../storage/secret-box';
import { FINISHED, type Run, type RunSecrets } from './run';
import type { RunLogs } from './run-log';
import type { RunPage, RunStore } from './run-store';
import { checkDockerBuildRequest, newQuickBuildRun, parseRunRequest } from './schedule-run';
import { checkTaskFileRunRequest, newTaskFileRun, parseTaskFileRunRequest } from './task-file-run';

/**
 * A message on the runs queue: which run to dispatch, or which runs (runs queued at the same moment share one
 * message: a queue send is the slowest step of queueing a run, and a base with 1,000 dependents queues 1,000).
 */
export type RunDispatchMessage = { readonly runId: string } | { readonly runIds: readonly string[] };

/** Run IDs per message: well inside the queue's 64 KiB message limit. */
const MAX_RUNS_PER_MESSAGE = 500;

/** Why a run that was building when its host stopped (a crash, a kill, a shutdown) ended Error. */
export const HOST_STOPPED_MESSAGE = 'the host stopped while the run was running';

/** Runs of one message dispatched at a time. */
const DISPATCH_CONCURRENCY = 8;

interface PendingSend {
  readonly runId: string;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** Scheduling, dispatching, completing, cancelling and listing runs: the one path every run takes. */
export class RunService {
  constructor(
    private readonly config: Config,
    private readonly store: RunStore,
    private readonly logs: RunLogs,
    private readonly queue: QueueClient,
    private readonly executor: () => Executor,
    private readonly queuedRuns: TableClient,
    private readonly onEnqueued: () => void = () => undefined,
  ) {
    this.queuedSlots = new BatchedInserts(queuedRuns);
  }

  private readonly queuedSlots: BatchedInserts;

  /** Called with every run that succeeded (the task records the dependencies it was built from). */
  afterSuccess: (run: Run) => Promise<void> = async () => undefined;

  /** Registries_ScheduleRun with a DockerBuildRequest: validates, then {@link enqueue}s a quick build. */
  async schedule(body: unknown): Promise<Run> {
    const type = (body as { type?: unknown } | null)?.type;
    if (type === 'FileTaskRunRequest' || type === 'EncodedTaskRunRequest') {
      const request = parseTaskFileRunRequest(body, type);
      await checkTaskFileRunRequest(request, this.config.homeRegistry);
      const runId = await this.store.nextRunId();
      return this.enqueue(
        newTaskFileRun(request, {
          runId,
          now: new Date(),
          secretKey: this.config.secretKey,
          runType: 'QuickRun',
        }),
      );
    }
    const request = parseRunRequest(body);
    checkDockerBuildRequest(request, this.config.homeRegistry);
    const runId = await this.store.nextRunId();
    return this.enqueue(
      newQuickBuildRun(request, {
        runId,
        now: new Date(),
        homeRegistry: this.config.homeRegistry,
        secretKey: this.config.secretKey,
      }),
    );
  }

  /**
   * Claims the one Queued slot of a task: true when the task had no run waiting (the caller then queues one),
   * false when a run is already Queued and will build whatever changed meanwhile. Released on dispatch.
   */
  async claimQueuedSlot(taskName: string): Promise<boolean> {
    return this.queuedSlots.insert({
      partitionKey: 'task',
      rowKey: taskName.toLowerCase(),
      at: new Date().toISOString(),
    });
  }

  /** Frees a task's Queued slot (its run was dispatched, canceled, or could not be queued). */
  async releaseQueuedSlot(taskName: string | undefined): Promise<void> {
    if (!taskName) return;
    await this.queuedRuns
      .deleteEntity('task', taskName.toLowerCase())
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
  }

  /** Takes the next run ID. */
  nextRunId(): Promise<string> {
    return this.store.nextRunId();
  }

  /** Stores a new Queued run and its empty log, and queues its dispatch: the one way every run starts. */
  async enqueue(run: Run): Promise<Run> {
    const runId = run.runId;
    await this.store.create(run);
    await this.send(runId);
    this.onEnqueued();
    log.info('run queued', { runId, runType: run.runType });
    return run;
  }

  private readonly sends: PendingSend[] = [];
  private sending = false;

  /** Puts a run on the queue; runs sent while a send is in flight go together in the next message. */
  private send(runId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.sends.push({ runId, resolve, reject });
      if (!this.sending) void this.drainSends();
    });
  }

  private async drainSends(): Promise<void> {
    this.sending = true;
    while (this.sends.length > 0) {
      const batch = this.sends.splice(0, MAX_RUNS_PER_MESSAGE);
      const message: RunDispatchMessage =
        batch.length === 1 ? { runId: batch[0]!.runId } : { runIds: batch.map((p) => p.runId) };
      try {
        await this.queue.sendMessage(JSON.stringify(message));
        batch.forEach((p) => p.resolve());
      } catch (err) {
        batch.forEach((p) => p.reject(err));
      }
    }
    this.sending = false;
  }

  /**
   * Handles a runs-queue message: claims each Queued run (ETag-guarded) and hands it to the executor.
   * A redelivered message finds its runs already claimed, canceled or gone, and does nothing for them.
   */
  async dispatch(message: unknown): Promise<void> {
    const m = message as { runId?: unknown; runIds?: unknown } | null;
    const runIds = typeof m?.runId === 'string' ? [m.runId] : Array.isArray(m?.runIds) ? m.runIds : [];
    if (runIds.length === 0 || runIds.some((id) => typeof id !== 'string')) {
      log.warn('run message without run IDs dropped', {});
      return;
    }
    // A few at a time: a message can name hundreds of runs, and their claims must not starve the decisions that are
    // still queueing the rest.
    const ids = runIds as string[];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(DISPATCH_CONCURRENCY, ids.length) }, async () => {
        while (next < ids.length) await this.dispatchRun(ids[next++]!);
      }),
    );
  }

  private async dispatchRun(runId: string): Promise<void> {
    const found = await this.store.find(runId);
    if (!found || found.run.status !== 'Queued') return;
    let claimed: Run;
    try {
      claimed = await this.store.updateIfUnchanged(found, {
        ...found.run,
        status: 'Started',
        startTime: new Date().toISOString(),
      });
    } catch (err) {
      if (err instanceof ConflictError) return;
      throw err;
    }
    await Promise.all([this.releaseQueuedSlot(claimed.taskName), this.logs.create(runId)]);
    const secrets: RunSecrets = claimed.sealedSecrets
      ? (JSON.parse(open(this.config.secretKey, claimed.sealedSecrets)) as RunSecrets)
      : { arguments: {} };
    try {
      await this.executor().start(claimed, secrets);
    } catch (err) {
      log.error('executor failed to start a run', { runId, error: (err as Error).message });
      await this.finish(runId, {
        status: 'Error',
        outputImages: [],
        runErrorMessage: `the run could not be started: ${(err as Error).message}`,
      });
      await this.logs.markComplete(runId, 'Error', `Run ID: ${runId} could not be started`);
    }
  }

  /** The executor's report that a run's build began. */
  async running(runId: string): Promise<void> {
    await this.store.update(runId, (run) =>
      run.status === 'Started' ? { ...run, status: 'Running' } : null,
    );
  }

  /** The completion path: records the outcome unless the run already finished (a cancel wins). */
  async finish(runId: string, outcome: RunOutcome): Promise<Run> {
    const run = await this.store.update(runId, (current) =>
      FINISHED.has(current.status)
        ? null
        : {
            ...current,
            status: outcome.status,
            finishTime: new Date().toISOString(),
            outputImages: outcome.outputImages,
            runErrorMessage: outcome.runErrorMessage,
            ...(outcome.baseImageDependencies
              ? { baseImageDependencies: outcome.baseImageDependencies }
              : {}),
          },
    );
    if (outcome.status === 'Succeeded') await this.afterSuccess(run);
    log.info('run finished', { runId, status: run.status });
    return run;
  }

  /** Runs_Get. */
  async get(runId: string): Promise<Run> {
    return (await this.store.get(runId)).run;
  }

  /** Runs_List: newest first. */
  list(options: { filter?: string; top: number; continuationToken?: string }): Promise<RunPage> {
    return this.store.list(options);
  }

  /** Runs_Update: only `isArchiveEnabled` can change. */
  async update(runId: string, body: unknown): Promise<Run> {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new ValidationError('the body must be a JSON object');
    const unknownKeys = Object.keys(body).filter((k) => k !== 'isArchiveEnabled');
    if (unknownKeys.length)
      throw new ValidationError(
        `'${unknownKeys[0]}' cannot be updated: only isArchiveEnabled can`,
        unknownKeys[0],
      );
    const value = (body as { isArchiveEnabled?: unknown }).isArchiveEnabled;
    if (typeof value !== 'boolean')
      throw new ValidationError('isArchiveEnabled must be true or false', 'isArchiveEnabled');
    return this.store.update(runId, (run) => ({ ...run, isArchiveEnabled: value }));
  }

  /** Runs_Cancel: a Queued run never starts; a running one is killed. A finished run is a 409. */
  async cancel(runId: string): Promise<Run> {
    const before = await this.get(runId);
    if (FINISHED.has(before.status))
      throw new ConflictError(`run '${runId}' has already finished (${before.status})`, 'runId');
    const run = await this.store.update(runId, (current) =>
      FINISHED.has(current.status)
        ? null
        : {
            ...current,
            status: 'Canceled',
            finishTime: new Date().toISOString(),
            runErrorMessage: 'the run was canceled',
          },
    );
    if (before.status === 'Queued') await this.releaseQueuedSlot(before.taskName);
    const wasRunning = await this.executor().cancel(runId);
    // The executor closes the log of a run it was running; a run that never reached it is closed here.
    if (!wasRunning && before.status === 'Queued')
      await this.logs.markComplete(runId, 'Canceled', `Run ID: ${runId} was canceled`);
    log.info('run canceled', { runId });
    return run;
  }

  /**
   * Runs a previous host left unfinished: those it had Running end Error (the build was cut off; nothing says how far
   * it got), those it had claimed but not started (Started: waiting for a build slot) are queued again.
   */
  async reconcileOrphans(): Promise<{ failed: number; requeued: number }> {
    const orphans = await this.store.listByStatus(['Started', 'Running']);
    let failed = 0;
    let requeued = 0;
    for (const orphan of orphans) {
      if (orphan.status === 'Started' && (await this.requeue(orphan.runId))) {
        requeued++;
        continue;
      }
      await this.finish(orphan.runId, {
        status: 'Error',
        outputImages: [],
        runErrorMessage: HOST_STOPPED_MESSAGE,
      });
      await this.logs.markComplete(
        orphan.runId,
        'Error',
        `Run ID: ${orphan.runId} failed: ${HOST_STOPPED_MESSAGE}`,
      );
      failed++;
    }
    return { failed, requeued };
  }

  /**
   * Puts a run that was claimed but never started (Started) back in the queue: Queued again under its ETag, then a
   * queue message. False when the run had moved on meanwhile (it started, or was canceled). A run that cannot be
   * queued again ends Error rather than stay Queued with no message.
   */
  async requeue(runId: string): Promise<boolean> {
    // A clash means someone else wrote the run (a cancel, most likely): read it again, a few times at most.
    for (let attempt = 1; ; attempt++) {
      const found = await this.store.find(runId);
      if (!found || found.run.status !== 'Started') return false;
      try {
        await this.store.updateIfUnchanged(found, { ...found.run, status: 'Queued', startTime: undefined });
        break;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 5) throw err;
      }
    }
    try {
      await this.send(runId);
    } catch (err) {
      const message = `the run could not be queued again: ${(err as Error).message}`;
      await this.finish(runId, { status: 'Error', outputImages: [], runErrorMessage: message });
      await this.logs.markComplete(runId, 'Error', `Run ID: ${runId} failed: ${message}`);
      return false;
    }
    this.onEnqueued();
    log.info('run queued again', { runId });
    return true;
  }
}
