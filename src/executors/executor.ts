import { z } from 'zod';
import type { RecordedDependency } from '../dependencies/dependency-index';
import type { CostEstimate, OutputImage, Run, RunSecrets, RunStatus } from '../runs/run';

/** How a run ended, as an executor reports it to the completion path. */
export interface RunOutcome {
  readonly status: Extract<RunStatus, 'Succeeded' | 'Failed' | 'Canceled' | 'Error' | 'Timeout'>;
  readonly outputImages: readonly OutputImage[];
  readonly runErrorMessage?: string;
  readonly baseImageDependencies?: readonly RecordedDependency[];
  /** What the run cost where it ran, when the executor can tell (ACI: cores and memory by seconds). */
  readonly costEstimate?: CostEstimate;
}

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);
/** A run's outcome as it travels in a run-completions message (strict: it decides what a run records). */
const runOutcomeSchema = z.object({
  status: z.enum(['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout']),
  outputImages: z.array(
    z.object({ registry: z.string(), repository: z.string(), tag: z.string().nullable(), digest }),
  ),
  runErrorMessage: z.string().max(2000).optional(),
  baseImageDependencies: z
    .array(
      z.object({
        type: z.enum(['RunTime', 'BuildTime']),
        registry: z.string(),
        repository: z.string(),
        tag: z.string().nullable(),
        digest: digest.nullable(),
        platformDigest: digest.nullable(),
      }),
    )
    .optional(),
});

/** Reads a reported outcome; one that cannot be read fails the run, saying why (never a thrown error). */
export function reportedOutcome(runId: string, report: unknown): RunOutcome {
  const parsed = runOutcomeSchema.safeParse(report);
  if (parsed.success) {
    const { runErrorMessage, baseImageDependencies, ...rest } = parsed.data;
    return {
      ...rest,
      ...(runErrorMessage !== undefined ? { runErrorMessage } : {}),
      ...(baseImageDependencies ? { baseImageDependencies } : {}),
    };
  }
  return unreadableReport(`the report of run ${runId}`, parsed.error);
}

/** The outcome of a run whose report (`what`) does not read as its schema says: Error, naming the first issue. */
export function unreadableReport(what: string, error: z.ZodError): RunOutcome {
  const issue = error.issues[0]!;
  return {
    status: 'Error',
    outputImages: [],
    runErrorMessage: `${what} could not be read: ${issue.path.join('.') || 'the report'}: ${issue.message}`,
  };
}

/** What {@link Executor.outcome} answers for a report that moved its run on without ending it. */
export const CONTINUES = 'continues';

/** Where an executor reports progress: the run moved to Running, the run finished, or it goes back to the queue. */
export interface RunCallbacks {
  /** Moves the run to Running; false when it may not go on (canceled before it started): build nothing then. */
  running(runId: string): Promise<boolean>;
  finished(runId: string, outcome: RunOutcome): Promise<void>;
  /** A claimed run the executor will not start after all (it is closing): queued again; false if it moved on. */
  requeue(runId: string): Promise<boolean>;
}

/** What {@link Executor.start} did with a claimed run. */
export type StartResult =
  /** The run is under way: the executor reports its end through the completion path. */
  | { readonly started: true }
  /**
   * Not now (no build slot, the create budget spent, the cloud throttling or out of quota): the run goes back to
   * Queued with `reason` shown on it, and its message comes back after `retryAfterSeconds`. Never an error.
   */
  | { readonly started: false; readonly reason: string; readonly retryAfterSeconds: number };

/** What an executor knows of a run that the store says is active (Started or Running). */
export type ActiveRunState =
  /** It is running it, or creating where it runs: leave it. */
  | { readonly state: 'active' }
  /** It ended without its report reaching the completion path: record this outcome. */
  | { readonly state: 'ended'; readonly outcome: RunOutcome }
  /** Nothing runs it any more (a host that stopped, a container group that vanished): `reason` says what. */
  | { readonly state: 'lost'; readonly reason: string };

/** What {@link Executor.reconcile} is told besides the active runs. */
export interface ReconcileOptions {
  readonly startup: boolean;
  /** Whether a run is active now (Queued, Started or Running): read again from the store. */
  readonly stillActive: (runId: string) => Promise<boolean>;
  /** A run's secrets (an executor that goes on with a run, a multi-step one in ACI, needs them). */
  readonly secretsOf: (run: Run) => RunSecrets;
}

/** Runs builds somewhere: on this machine (local) or in Azure Container Instances (aci). */
export interface Executor {
  /** Starts a claimed run; resolves once it is under way (not when it ends), or says why not now. */
  start(run: Run, secrets: RunSecrets): Promise<StartResult>;
  /** Stops a run if this executor is running it; true when it was. */
  cancel(runId: string): Promise<boolean>;
  /**
   * What the executor knows of each active run, keyed by run ID (a run it says nothing of is left as it is); it also
   * removes what it holds for runs that are not active (orphans: a finished run's leftovers). `startup`: the host has
   * just started, so a local executor knows that every active run was a previous host's. `stillActive` reads a run
   * again: one that started after `active` was listed is not an orphan.
   */
  reconcile(active: readonly Run[], options: ReconcileOptions): Promise<ReadonlyMap<string, ActiveRunState>>;
  /**
   * The outcome of a run from the report that reached the run-completions queue (its executor's own shape, checked
   * here: a report it cannot read is an Error outcome naming why, never a thrown error); null when the report is not
   * the run's own (it lacks the run's completion token): it is dropped and the run goes on; {@link CONTINUES} when
   * it moved the run on without ending it (a step of a multi-step run in ACI ended, and the next ones started).
   */
  outcome(run: Run, secrets: RunSecrets, report: unknown): Promise<RunOutcome | null | typeof CONTINUES>;
  /** Frees what a finished run held (ACI: deletes its container group). Idempotent. */
  release(runId: string): Promise<void>;
  /** Throws (saying why) when the executor cannot run builds now: what GET /health reports as `executor`. */
  probe(): Promise<void>;
  /** Stops everything (host shutdown). */
  close(): Promise<void>;
}
