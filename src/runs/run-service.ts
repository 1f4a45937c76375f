import type { QueueClient } from '@azure/storage-queue';
import pLimit from 'p-limit';
import pRetry from 'p-retry';
import { z } from 'zod';
import type { Config } from '../config';
import { ConflictError, ValidationError } from '../errors';
import { CONTINUES, type Executor, type RunOutcome } from '../executors/executor';
import { log } from '../log';
import type { Claim, ClaimRecord, Claims } from '../storage/claims';
import { open } from '../storage/secret-box';
import { FINISHED, type Run, type RunSecrets } from './run';
import type { RunLogs } from './run-log';
import type { RunPage, RunStore } from './run-store';
import { RegistryNames } from '../registry/registry-names';
import { requestLogins } from '../tasks/task-credentials';
import { checkDockerBuildRequest, newQuickBuildRun, parseRunRequest } from './schedule-run';
import { checkTaskFileRunRequest, newTaskFileRun, parseTaskFileRunRequest } from './task-file-run';

/**
 * A message on the runs queue: which run to dispatch, or which runs (runs queued at the same moment share one
 * message: a queue send is the slowest step of queueing a run, and a base with 1,000 dependents queues 1,000).
 */
export type RunDispatchMessage = { readonly runId: string } | { readonly runIds: readonly string[] };

/** A message on the run-dependencies queue: record what this successful run of a task was built from. */
const runDependenciesMessage = z.object({ runId: z.string().min(1).max(64) });

/** A run-completions message: the run, and its executor's report of how it ended (read by the executor). */
const runCompletionMessage = z.object({ runId: z.string().min(1).max(64), report: z.unknown() });

/** What {@link RunService.reconcile} did. */
export interface ReconcileReport {
  /** Runs whose executor lost them while they were building: ended Error. */
  readonly failed: number;
  /** Runs lost before they started building: queued again. */
  readonly requeued: number;
  /** Runs that had ended without their report arriving: their outcome recorded. */
  readonly completed: number;
}

/** A message on the run-dependencies queue. */
export type RunDependenciesMessage = z.infer<typeof runDependenciesMessage>;

/** Run IDs per message: well inside the queue's 64 KiB message limit. */
const MAX_RUNS_PER_MESSAGE = 500;

/**
 * How long a run-dependencies message stays invisible: the completion path records the dependencies itself right
 * after sending it, so the message is the fallback, read once the run's status is surely written.
 */
const DEPENDENCIES_MESSAGE_DELAY_SECONDS = 10;

/** Why a run that was building when its host stopped (a crash, a kill, a shutdown) ended Error. */
export const HOST_STOPPED_MESSAGE = 'the host stopped while the run was running';

/** Runs of one message dispatched at a time. */
const DISPATCH_CONCURRENCY = 8;

/** The partition of the tasks' Queued slots. */
const SLOT_SCOPE = 'task';

/** Retries for the writes that undo a failed step: brief, since the caller is waiting for its error. */
const AFTER_FAILURE_RETRIES = { retries: 2, minTimeout: 100, maxTimeout: 500, randomize: true };

/** The run IDs a runs message names, or null when it names none (or something else). */
function runIdsOf(message: unknown): string[] | null {
  const m = message as { runId?: unknown; runIds?: unknown } | null;
  const runIds: unknown[] =
    typeof m?.runId === 'string' ? [m.runId] : Array.isArray(m?.runIds) ? m.runIds : [];
  if (runIds.length === 0 || runIds.some((id) => typeof id !== 'string')) return null;
  return runIds as string[];
}

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
    /** The tasks' Queued slots (the queuedRuns table): one claim per task, confirmed with the run that holds it. */
    private readonly queuedSlots: Claims,
    /** The run-dependencies queue: what a task's successful run was built from is recorded from there. */
    private readonly dependencyQueue: QueueClient,
    private readonly onEnqueued: () => void = () => undefined,
  ) {}

  /**
   * Called with each run of a task that succeeded, as it finishes and again from the run-dependencies queue (the task
   * records the dependencies it was built from): it must be idempotent.
   */
  afterSuccess: (run: Run) => Promise<void> = async () => undefined;

  /** Registries_ScheduleRun with a DockerBuildRequest: validates, then {@link enqueue}s a quick build. */
  async schedule(body: unknown): Promise<Run> {
    const type = (body as { type?: unknown } | null)?.type;
    if (type === 'FileTaskRunRequest' || type === 'EncodedTaskRunRequest') {
      const request = parseTaskFileRunRequest(body, type);
      await checkTaskFileRunRequest(request, this.config.homeRegistry);
      const registries = requestLogins(request.credentials, this.registryNames());
      const runId = await this.store.nextRunId();
      return this.enqueue(
        newTaskFileRun(request, {
          runId,
          now: new Date(),
          secretKey: this.config.secretKey,
          runType: 'QuickRun',
          registries,
        }),
      );
    }
    const request = parseRunRequest(body);
    checkDockerBuildRequest(request, this.config.homeRegistry);
    // The request's registry logins are this run's only, sealed with it.
    const registries = requestLogins(request.credentials, this.registryNames());
    const runId = await this.store.nextRunId();
    return this.enqueue(
      newQuickBuildRun(request, {
        runId,
        now: new Date(),
        homeRegistry: this.config.homeRegistry,
        secretKey: this.config.secretKey,
        registries,
      }),
    );
  }

  private registryNames(): RegistryNames {
    return new RegistryNames(this.config.homeRegistry, this.config.homeRegistryAliases);
  }

  /**
   * Claims the one Queued slot of a task: a pending claim when the task had no run waiting (the caller queues one,
   * then confirms the claim with its run ID, or releases it when queueing failed), null when a run is already Queued
   * and will build whatever changed meanwhile. A slot whose run has left Queued by any path, or whose claimer died
   * before queueing (its lease ended), is taken over: a slot never stays taken by a run that will not start.
   */
  async claimQueuedSlot(taskName: string): Promise<Claim | null> {
    const taken = await this.queuedSlots.take(SLOT_SCOPE, taskName.toLowerCase(), {
      detail: { task: taskName },
      isStale: (slot) => this.slotIsStale(slot),
    });
    return taken.status === 'taken' ? taken.claim : null;
  }

  /** Frees a task's Queued slot if `runId` holds it (the run was dispatched, canceled, or failed before starting). */
  async releaseQueuedSlot(taskName: string | undefined, runId: string): Promise<void> {
    if (!taskName) return;
    await this.queuedSlots.drop(SLOT_SCOPE, taskName.toLowerCase(), (slot) => slot.detail.runId === runId);
  }

  /** Frees every Queued slot whose run is no longer Queued, or whose claimer died before queueing (at start-up). */
  async reconcileQueuedSlots(): Promise<number> {
    const freed = await this.queuedSlots.sweep(SLOT_SCOPE, (slot) => this.slotIsStale(slot));
    if (freed) log.info('queued slots freed', { freed });
    return freed;
  }

  /** A confirmed slot stands while its run is Queued. */
  private async slotIsStale(slot: ClaimRecord): Promise<boolean> {
    const runId = slot.detail.runId;
    if (!runId) return true;
    const found = await this.store.find(runId);
    return !found || found.run.status !== 'Queued';
  }

  /** Takes the next run ID. */
  nextRunId(): Promise<string> {
    return this.store.nextRunId();
  }

  /**
   * Stores a new Queued run and queues its dispatch: the one way every run starts. When the queue send fails the run
   * ends Error (a Queued run with no message would never start) and the caller gets the error.
   */
  async enqueue(run: Run): Promise<Run> {
    const runId = run.runId;
    await this.store.create(run);
    try {
      await this.send(runId);
    } catch (err) {
      await this.notQueued(run, err);
      throw err;
    }
    this.onEnqueued();
    log.info('run queued', { runId, runType: run.runType });
    return run;
  }

  /** Ends a run whose dispatch message could not be sent. */
  private async notQueued(run: Run, cause: unknown): Promise<void> {
    const runId = run.runId;
    const message = `the run could not be queued: ${(cause as Error).message}`;
    try {
      await pRetry(
        () =>
          this.store.update(runId, (current) =>
            current.status === 'Queued'
              ? {
                  ...current,
                  status: 'Error',
                  finishTime: new Date().toISOString(),
                  runErrorMessage: message,
                }
              : null,
          ),
        AFTER_FAILURE_RETRIES,
      );
      await this.logs.markComplete(runId, 'Error', `Run ID: ${runId} failed: ${message}`);
    } catch (err) {
      log.error('a run that could not be queued is left Queued', { runId, error: (err as Error).message });
    }
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
    const runIds = runIdsOf(message);
    if (!runIds) {
      log.warn('run message without run IDs dropped', {});
      return;
    }
    // A few at a time: a message can name hundreds of runs, and their claims must not starve the decisions that are
    // still queueing the rest.
    const limit = pLimit(DISPATCH_CONCURRENCY);
    await Promise.all(runIds.map((runId) => limit(() => this.dispatchRun(runId))));
  }

  /**
   * Handles a runs message that ended in the poison queue (its dispatch failed every try): each of its runs still
   * Queued ends Error with the reason, and frees its task's Queued slot.
   */
  async failPoisoned(message: unknown): Promise<void> {
    const runIds = runIdsOf(message);
    if (!runIds) {
      log.warn('poisoned run message without run IDs dropped', {});
      return;
    }
    const reason = 'the run could not be dispatched: its queue message failed every try and was set aside';
    for (const runId of runIds) {
      const found = await this.store.find(runId);
      if (!found || found.run.status !== 'Queued') continue;
      let failed = false as boolean;
      const run = await this.store.update(runId, (current) => {
        failed = current.status === 'Queued';
        return failed
          ? { ...current, status: 'Error', finishTime: new Date().toISOString(), runErrorMessage: reason }
          : null;
      });
      if (!failed) continue;
      await this.releaseQueuedSlot(run.taskName, runId);
      await this.logs.markComplete(runId, 'Error', `Run ID: ${runId} failed: ${reason}`);
      log.warn('run failed: its message was poisoned', { runId });
    }
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
        statusDetail: undefined,
      });
    } catch (err) {
      if (err instanceof ConflictError) return;
      throw err;
    }
    await Promise.all([
      // A slot that could not be freed now is freed by the next claim of it (its run is no longer Queued).
      this.releaseQueuedSlot(claimed.taskName, runId).catch((err: unknown) =>
        log.warn('queued slot not freed at dispatch', { runId, error: (err as Error).message }),
      ),
      this.logs.create(runId),
    ]);
    const secrets = this.secretsOf(claimed);
    try {
      const started = await this.executor().start(claimed, secrets);
      if (!started.started) await this.defer(claimed, started.reason, started.retryAfterSeconds);
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

  /**
   * A claimed run the executor cannot start yet (no build slot, the create budget spent, Azure throttling): Queued
   * again under its ETag with the reason shown on it, and its message sent again to come back after the delay. A run
   * that moved on meanwhile (canceled) is left as it is.
   */
  private async defer(claimed: Run, reason: string, retryAfterSeconds: number): Promise<void> {
    const runId = claimed.runId;
    const run = await this.store.update(runId, (current) =>
      current.status === 'Started'
        ? { ...current, status: 'Queued', startTime: undefined, statusDetail: reason }
        : null,
    );
    if (run.status !== 'Queued') return;
    // Queued again, it holds its task's queued slot again (so a base-image update in the meantime finds the task
    // queued), unless a newer run of the task took the slot since the claim.
    if (run.taskName) {
      const slot = await this.claimQueuedSlot(run.taskName);
      await slot?.confirm({ runId });
    }
    const message: RunDispatchMessage = { runId };
    await this.queue.sendMessage(JSON.stringify(message), {
      visibilityTimeout: Math.max(1, Math.ceil(retryAfterSeconds)),
    });
    log.info('run waits to start', { runId, reason, retryAfterSeconds });
  }

  /** The run's secrets, unsealed for its executor. */
  private secretsOf(run: Run): RunSecrets {
    return run.sealedSecrets
      ? (JSON.parse(open(this.config.secretKey, run.sealedSecrets)) as RunSecrets)
      : { arguments: {} };
  }

  /**
   * The executor's report that a run's build begins: Started becomes Running (ETag-guarded). False when the run is
   * no longer Started (canceled between its claim and its start): the executor must not build it.
   */
  async running(runId: string): Promise<boolean> {
    const run = await this.store.update(runId, (current) =>
      current.status === 'Started' ? { ...current, status: 'Running' } : null,
    );
    return run.status === 'Running';
  }

  /**
   * The completion path: records the outcome unless the run already finished (a cancel wins). A task's successful
   * run first queues the recording of what it was built from (its own message, retried by the queue, so that it is
   * never lost with only a log line) and records it at once, so that the run reads Succeeded with its dependencies
   * recorded; the message then finds them recorded. Safe to repeat after a failure: every step is idempotent.
   */
  async finish(runId: string, outcome: RunOutcome): Promise<Run> {
    const finishTime = new Date().toISOString();
    const ended = (current: Run): Run => ({
      ...current,
      status: outcome.status,
      finishTime,
      outputImages: outcome.outputImages,
      runErrorMessage: outcome.runErrorMessage,
      ...(outcome.baseImageDependencies ? { baseImageDependencies: outcome.baseImageDependencies } : {}),
      ...(outcome.costEstimate ? { costEstimate: outcome.costEstimate } : {}),
    });
    const { run: current } = await this.store.get(runId);
    if (FINISHED.has(current.status)) return current;
    const success = ended(current);
    if (success.status === 'Succeeded' && success.taskName && success.baseImageDependencies) {
      // Sent before the status is written: a crash in between leaves a message that finds the run's final status.
      const message: RunDependenciesMessage = { runId };
      await this.dependencyQueue.sendMessage(JSON.stringify(message), {
        visibilityTimeout: DEPENDENCIES_MESSAGE_DELAY_SECONDS,
      });
      await this.afterSuccess(success).catch((err: unknown) => {
        log.warn('run dependencies not recorded yet; the queue retries', {
          runId,
          error: (err as Error).message,
        });
      });
    }
    const run = await this.store.update(runId, (latest) =>
      FINISHED.has(latest.status) ? null : ended(latest),
    );
    log.info('run finished', { runId, status: run.status });
    return run;
  }

  /**
   * Handles a run-dependencies message: hands the run, once it has succeeded, to {@link afterSuccess}. A run not
   * finished yet, or a failure, throws, so that the queue delivers the message again (and, past its tries, moves
   * it to the poison queue); a run that ended otherwise, or is gone, is done with.
   */
  async recordDependencies(message: unknown): Promise<void> {
    const parsed = runDependenciesMessage.safeParse(message);
    if (!parsed.success) {
      log.warn('run dependencies message without a run ID dropped', {});
      return;
    }
    const found = await this.store.find(parsed.data.runId);
    if (!found) return;
    if (!FINISHED.has(found.run.status))
      throw new Error(`run ${found.run.runId} has not finished yet: its dependencies are recorded later`);
    if (found.run.status === 'Succeeded') await this.afterSuccess(found.run);
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
    if (before.status === 'Queued') await this.releaseQueuedSlot(before.taskName, runId);
    const wasRunning = await this.executor().cancel(runId);
    // The executor closes the log of a run it was running; a run that never reached it is closed here.
    if (!wasRunning && before.status === 'Queued')
      await this.logs.markComplete(runId, 'Canceled', `Run ID: ${runId} was canceled`);
    log.info('run canceled', { runId });
    return run;
  }

  /**
   * Settles the active runs (Started, Running) with what the executor knows of them: a run it lost that had not
   * started building (Started) is queued again, one that was building ends Error with the executor's reason, and one
   * that ended without its report reaching the completion path records the outcome the executor read. At a host's
   * start (`startup`) the local executor knows no run, so every active run was the previous host's; in Azure a timer
   * calls this once a minute.
   */
  async reconcile(options: { readonly startup: boolean }): Promise<ReconcileReport> {
    const active = await this.store.listByStatus(['Started', 'Running']);
    const states = await this.executor().reconcile(active, {
      ...options,
      stillActive: async (runId) => {
        const found = await this.store.find(runId);
        return !!found && !FINISHED.has(found.run.status);
      },
      secretsOf: (run) => this.secretsOf(run),
    });
    const report = { failed: 0, requeued: 0, completed: 0 };
    for (const run of active) {
      const state = states.get(run.runId);
      if (!state || state.state === 'active') continue;
      if (state.state === 'lost' && run.status === 'Started' && (await this.requeue(run.runId))) {
        report.requeued++;
        continue;
      }
      const outcome: RunOutcome =
        state.state === 'ended'
          ? state.outcome
          : { status: 'Error', outputImages: [], runErrorMessage: state.reason };
      await this.settle(run.runId, outcome);
      if (state.state === 'ended') report.completed++;
      else report.failed++;
    }
    return report;
  }

  /**
   * Handles a run-completions message (`{runId, report}`, sent by where the run ran): records the outcome the
   * executor reads from the report, closes the log and frees what the run held. Idempotent: a repeated message finds
   * the run finished and only frees again; a message of a run that is gone is dropped.
   */
  async complete(message: unknown): Promise<void> {
    const parsed = runCompletionMessage.safeParse(message);
    if (!parsed.success) {
      log.warn('run completion message without a run ID dropped', {});
      return;
    }
    const { runId, report } = parsed.data;
    const found = await this.store.find(runId);
    if (!found) return;
    if (FINISHED.has(found.run.status)) {
      await this.executor().release(runId);
      return;
    }
    const outcome = await this.executor().outcome(found.run, this.secretsOf(found.run), report);
    if (!outcome) {
      log.warn("run completion message dropped: it is not the run's own report", { runId });
      return;
    }
    if (outcome === CONTINUES) return;
    await this.settle(runId, outcome);
  }

  /** The end of a run the executor no longer reports on: the outcome recorded, the log closed, what it held freed. */
  private async settle(runId: string, outcome: RunOutcome): Promise<void> {
    const run = await this.finish(runId, outcome);
    const line =
      run.status === 'Succeeded'
        ? `Run ID: ${runId} was successful`
        : `Run ID: ${runId} failed: ${run.runErrorMessage ?? run.status}`;
    await this.logs.markComplete(runId, run.status, line);
    await this.executor().release(runId);
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
