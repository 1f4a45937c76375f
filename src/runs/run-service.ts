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

/** The message on the runs queue: which run to dispatch. */
export interface RunDispatchMessage {
  readonly runId: string;
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
  ) {}

  /** Called with every run that succeeded (the task records the dependencies it was built from). */
  afterSuccess: (run: Run) => Promise<void> = async () => undefined;

  /** Registries_ScheduleRun with a DockerBuildRequest: validates, then {@link enqueue}s a quick build. */
  async schedule(body: unknown): Promise<Run> {
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
    try {
      await this.queuedRuns.createEntity({
        partitionKey: 'task',
        rowKey: taskName.toLowerCase(),
        at: new Date().toISOString(),
      });
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 409) return false;
      throw err;
    }
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
    await this.logs.create(runId);
    await this.store.create(run);
    await this.queue.sendMessage(JSON.stringify({ runId } satisfies RunDispatchMessage));
    this.onEnqueued();
    log.info('run queued', { runId, runType: run.runType });
    return run;
  }

  /**
   * Handles a runs-queue message: claims the Queued run (ETag-guarded) and hands it to the executor.
   * A redelivered message finds the run already claimed, canceled or gone, and does nothing.
   */
  async dispatch(message: unknown): Promise<void> {
    const runId = (message as Partial<RunDispatchMessage> | null)?.runId;
    if (typeof runId !== 'string') {
      log.warn('run message without a runId dropped', {});
      return;
    }
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
    await this.releaseQueuedSlot(claimed.taskName);
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

  /** Runs that a previous host left Started or Running (it stopped mid-run) are marked Error. */
  async reconcileOrphans(): Promise<number> {
    const orphans = await this.store.listByStatus(['Started', 'Running']);
    for (const orphan of orphans) {
      const message = 'the host stopped while the run was in progress';
      await this.finish(orphan.runId, { status: 'Error', outputImages: [], runErrorMessage: message });
      await this.logs.markComplete(orphan.runId, 'Error', `Run ID: ${orphan.runId} failed: ${message}`);
    }
    return orphans.length;
  }
}
