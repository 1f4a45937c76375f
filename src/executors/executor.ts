import type { RecordedDependency } from '../dependencies/dependency-index';
import type { OutputImage, Run, RunSecrets, RunStatus } from '../runs/run';

/** How a run ended, as an executor reports it to the completion path. */
export interface RunOutcome {
  readonly status: Extract<RunStatus, 'Succeeded' | 'Failed' | 'Canceled' | 'Error' | 'Timeout'>;
  readonly outputImages: readonly OutputImage[];
  readonly runErrorMessage?: string;
  readonly baseImageDependencies?: readonly RecordedDependency[];
}

/** Where an executor reports progress: the run moved to Running, the run finished, or it goes back to the queue. */
export interface RunCallbacks {
  /** Moves the run to Running; false when it may not go on (canceled before it started): build nothing then. */
  running(runId: string): Promise<boolean>;
  finished(runId: string, outcome: RunOutcome): Promise<void>;
  /** A claimed run the executor will not start after all (it is closing): queued again; false if it moved on. */
  requeue(runId: string): Promise<boolean>;
}

/** Runs builds somewhere: on this machine (local) or in Azure Container Instances (aci). */
export interface Executor {
  /** Starts a claimed run; resolves once it is under way (not when it ends). */
  start(run: Run, secrets: RunSecrets): Promise<void>;
  /** Stops a run if this executor is running it; true when it was. */
  cancel(runId: string): Promise<boolean>;
  /** Throws (saying why) when the executor cannot run builds now: what GET /health reports as `executor`. */
  probe(): Promise<void>;
  /** Stops everything (host shutdown). */
  close(): Promise<void>;
}
