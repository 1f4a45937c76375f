import { createHash } from 'node:crypto';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import type { ContainerGroup } from '@azure/arm-containerinstance';
import { z } from 'zod';
import { IMAGE_ALIASES } from '../../acb/aliases';
import { parseBuildCommand, splitWords } from '../../acb/command-line';
import { AcbError } from '../../acb/errors';
import { loadRunTask, type RunTask } from '../../acb/load-task';
import { attemptEnded, startGraph, type AttemptEnd, type Transition } from '../../acb/step-graph';
import { stepWorkdir } from '../../acb/step-workdir';
import type { AcbStep } from '../../acb/task-file';
import type { Config } from '../../config';
import { ValidationError } from '../../errors';
import { log } from '../../log';
import type { RegistryClient } from '../../registry/client';
import { parseImageReference } from '../../registry/image-reference';
import type { Run, RunSecrets } from '../../runs/run';
import type { RunLogs } from '../../runs/run-log';
import type { TaskFileSpec } from '../../runs/task-file-run';
import type { SecretResolver } from '../../secrets/key-vault';
import { extract } from '../../sources/archive';
import { downloadUpload, type SourceAccess } from '../../sources/fetch-source';
import { SourceError } from '../../sources/source-error';
import { isGitSource, isUploadedSource } from '../../sources/source-path';
import { blobSasUrl, queueSendUrl } from '../../storage/sas';
import { names, type Storage } from '../../storage/storage';
import { retryOnConflict, statusOf } from '../../storage/write-conflicts';
import { unreadableReport, type RunOutcome, type StartResult } from '../executor';
import type { AciSettings } from './aci-settings';
import { STEP_WORKSPACE } from './builder-scripts';
import { gitSource, REPORTER_CORES, type GroupSource, type ReporterInputs } from './group-spec';
import {
  builtImage,
  canonicalImage,
  emptyRecord,
  entry,
  GraphRecords,
  SOURCE,
  stepKey,
  unique,
  type GraphRecord,
  type GroupEntry,
} from './graph-record';
import { outputImage, recordedBases } from './recorded-bases';
import { stepReport, type StepReport } from './reports';
import { aciNotes, groupEnd, refuseUnsupported } from './step-checks';
import {
  buildStepGroup,
  cmdStepGroup,
  cmdWords,
  pushStepGroup,
  sourceGroup,
  type StepGroupInputs,
} from './step-groups';

/** A run of a task file (multi-step). */
export type TaskFileRun = Run & { readonly spec: TaskFileSpec };

/** How late a delayed start (retryDelay, startDelay, a throttled create) may be before the sweep starts it itself. */
const WAKE_GRACE_MS = 2 * 60 * 1000;
/** Extra validity of a group's SAS URLs beyond the run's timeout. */
const SAS_MARGIN_MS = 30 * 60 * 1000;
/** Cores and memory of a group beyond its main container: the reporter's. */
const REPORTER_GB = 0.5;

/** How a group create went: made (or taken by ARM), or not now (throttled, out of quota, ARM failing). */
export type CreateResult =
  | { readonly created: true }
  | { readonly created: false; readonly reason: string; readonly retryAfterSeconds: number };

/** The container-group operations of the aci executor the multi-step driver uses. */
export interface GroupOps {
  /** Sends the create (its first answer only); throws for a create ARM refused for good. */
  create(name: string, group: ContainerGroup): Promise<CreateResult>;
  /** Sends the delete; false when the group was not there. */
  delete(name: string): Promise<boolean>;
  get(name: string): Promise<ContainerGroup | undefined>;
}

/** What the multi-step driver is given. */
export interface AciMultiStepDeps {
  readonly config: Config;
  readonly settings: AciSettings;
  readonly storage: Storage;
  readonly logs: RunLogs;
  readonly registry: RegistryClient;
  readonly sources: SourceAccess;
  readonly keyVault?: SecretResolver | undefined;
  readonly groups: GroupOps;
  /** This deployment's mark (group names, tags, run-scoped repositories). */
  readonly deployment: string;
  readonly reportToken: (runId: string) => string;
  readonly tags: (runId: string) => Record<string, string>;
  /** Deletes an image of the home registry (the run-scoped ones), when Refit can. */
  readonly deleteImage?: (ref: string) => Promise<void>;
  readonly now: () => Date;
}

/** A start Refit put off (a delay of the task's, or a create Azure throttled), sent back to itself on the queue. */
const wakeReport = z.object({
  token: z.string().max(200),
  wake: z.object({ step: z.string().max(200), attempt: z.string().max(50) }),
});

/** What one change of the record asks for once it is stored. */
type Effect =
  | { readonly kind: 'create'; readonly name: string }
  | { readonly kind: 'delete'; readonly name: string }
  | { readonly kind: 'wake'; readonly step: string; readonly attempt: string; readonly seconds: number }
  | { readonly kind: 'log'; readonly lines: readonly string[] };

/**
 * Runs acb task files in Azure Container Instances: each step attempt in a container group of its own, the step graph
 * (src/acb/step-graph.ts, the same one the local executor drives) advanced by the groups' reports, no function
 * waiting on a group. The workspace travels between steps as blobs (each group restores its dependencies'
 * workspaces and saves its own); images a build step makes are pushed to a run-scoped repository of the home registry
 * (`refit-runs/<run>-<deployment>`), where later cmd and push steps pull them; a push step copies them to their names.
 */
export class AciMultiStep {
  private readonly records: GraphRecords;

  constructor(private readonly deps: AciMultiStepDeps) {
    this.records = new GraphRecords(deps.storage, deps.config.secretKey);
  }

  /** The group of a step attempt (or of the source, `@source`). */
  groupName(runId: string, step: string, attempt: string, task?: RunTask): string {
    const base = `refit-${runId}-${this.deps.deployment}`.toLowerCase();
    if (step === SOURCE) return `${base}-src`;
    const index = task ? task.steps.findIndex((s) => s.id === step) : -1;
    return `${base}-${index}-${attempt.toLowerCase().replace(/[^a-z0-9]/g, '')}`.slice(0, 63);
  }

  /** The run-scoped repository images the run builds go to. */
  private scopedRepository(runId: string): string {
    return `${this.deps.config.homeRegistry}/refit-runs/${runId.toLowerCase()}-${this.deps.deployment}`;
  }

  private scoped(runId: string, image: string): string {
    return `${this.scopedRepository(runId)}:${createHash('sha256').update(image).digest('hex').slice(0, 20)}`;
  }

  /** The blob a group saves its workspace to: the source's whole, a step attempt's changes. */
  private workspaceBlob(
    runId: string,
    step: AcbStep | typeof SOURCE,
    attempt: string,
    task?: RunTask,
  ): string {
    const name = step === SOURCE ? 'source' : `${stepKey(task, step.id)}-${attempt}`;
    return `workspaces/${runId}-${this.deps.deployment}/${name}.tar.gz`;
  }

  /** Starts a multi-step run: its source group, or (no source to fetch) its first steps. */
  async start(run: TaskFileRun, secrets: RunSecrets): Promise<StartResult> {
    if (run.untrustedSource)
      throw new ValidationError(
        "a fork's pull request runs multi-step tasks only on the local executor: in ACI its steps would need the builder identity to pass images between them",
      );
    const location = run.spec.sourceLocation;
    const record = emptyRecord();
    const writer = this.deps.logs.writer(run.runId, this.masks(secrets, undefined));
    if (location && !isUploadedSource(location)) {
      const name = this.groupName(run.runId, SOURCE, '');
      record.groups[name] = entry(SOURCE, '', this.now(), REPORTER_CORES, REPORTER_GB, []);
      await this.records.write(run.runId, record, undefined);
      const group = sourceGroup(
        this.deps.settings,
        await this.inputs(run, secrets, SOURCE, '', [], record),
        this.source(run, secrets),
      );
      writer.line(`Fetching the source in container group ${name}`);
      await writer.flush();
      const created = await this.deps.groups.create(name, group);
      if (!created.created) await this.records.forget(run.runId);
      return created.created ? { started: true } : { started: false, ...created };
    }
    if (location) record.workspaces[SOURCE] = [location];
    const transition = await this.load(run, secrets, record, writer);
    const effects = transition ? this.apply(run, record, transition) : [];
    await this.records.write(run.runId, record, undefined);
    await this.perform(run, secrets, effects);
    // Ended before any group ran (a task file that cannot be loaded, a first step refused): its outcome reaches the
    // completion path as a report would, through the run-completions queue.
    if ((await this.records.read(run.runId))?.record.outcome) await this.sendWake(run.runId, '', '', 0);
    return { started: true };
  }

  /**
   * A report of one of the run's groups (or a wake Refit sent itself): the step's end recorded, the graph advanced,
   * the next groups created. The run's outcome once the graph finished, else `continues`.
   */
  async report(run: TaskFileRun, secrets: RunSecrets, report: unknown): Promise<RunOutcome | 'continues'> {
    const wake = wakeReport.safeParse(report);
    if (wake.success) {
      await this.change(run, secrets, (record) => this.woken(run, record, wake.data.wake));
      return (await this.records.read(run.runId))?.record.outcome ?? 'continues';
    }
    const parsed = stepReport.safeParse(report);
    if (!parsed.success) return unreadableReport("a step's report", parsed.error);
    const r = parsed.data;
    const current = await this.records.read(run.runId);
    if (!current) return 'continues';
    if (r.step === SOURCE) return this.sourceFetched(run, secrets, r);
    // A step group reports its step's index (a step's ID is free text the report does not carry as it is).
    const step = current.record.task?.steps[Number(r.step)];
    if (!step || !/^\d+$/.test(r.step)) {
      log.warn('a step report names no step of the run: dropped', { runId: run.runId, step: r.step });
      return 'continues';
    }
    // What the report says beyond the graph (images, dependencies) is read before the change: it needs the registry.
    const found = r.exitCode === 0 && !r.restarted ? await this.results(run, secrets, step, r) : undefined;
    await this.change(run, secrets, (record) => {
      const name = this.groupName(run.runId, step.id, r.attempt, record.task);
      const ended = record.groups[name];
      if (!ended || ended.attempt !== r.attempt) return [{ kind: 'delete', name }];
      if (found) {
        Object.assign(record.built, found.built);
        record.outputImages.push(...found.outputImages);
        for (const d of found.dependencies)
          if (!record.dependencies.some((x) => JSON.stringify(x) === JSON.stringify(d)))
            record.dependencies.push(d);
      }
      // What the step leaves its dependents: what it started from, and what it changed (a push changes nothing).
      record.workspaces[step.id] = unique([
        ...this.inputsOf(record, step),
        ...(step.type !== 'push' && r.saved
          ? [this.workspaceBlob(run.runId, step, r.attempt, record.task)]
          : []),
      ]);
      const end: AttemptEnd = r.restarted
        ? {
            code: null,
            output: '',
            crash: "the platform restarted the step's container: its result is not trusted",
          }
        : r.exitCode === 0 && step.type !== 'push' && !r.saved
          ? {
              code: null,
              output: '',
              crash: "the step's workspace could not be saved for the steps after it",
            }
          : {
              code: r.exitCode,
              output: Buffer.from(r.output, 'base64').toString('utf8'),
              ...(r.error ? { reason: r.error } : {}),
            };
      // The step's group has done its work: deleted now (ACI bills a group until it is deleted or stopped).
      return [{ kind: 'delete', name }, ...this.attemptEnd(run, record, name, end)];
    });
    return (await this.records.read(run.runId))?.record.outcome ?? 'continues';
  }

  /** The source group reported: the task file loaded from the workspace it left, and the graph started. */
  private async sourceFetched(
    run: TaskFileRun,
    secrets: RunSecrets,
    r: StepReport,
  ): Promise<RunOutcome | 'continues'> {
    // The only other writers while the source is fetched are the sweep and a repeated delivery: the first to write
    // wins, and the loser reads what it wrote.
    for (let attempt = 0; attempt < 5; attempt++) {
      const done = await this.sourceFetchedOnce(run, secrets, r);
      if (done !== 'lost the race') return done;
    }
    return 'continues';
  }

  private async sourceFetchedOnce(
    run: TaskFileRun,
    secrets: RunSecrets,
    r: StepReport,
  ): Promise<RunOutcome | 'continues' | 'lost the race'> {
    const current = await this.records.read(run.runId);
    if (!current || current.record.phase !== 'source') return current?.record.outcome ?? 'continues';
    const record = current.record;
    const name = this.groupName(run.runId, SOURCE, '');
    const ended = record.groups[name];
    delete record.groups[name];
    if (ended) this.bill(record, ended);
    const writer = this.deps.logs.writer(run.runId, this.masks(secrets, undefined));
    let transition: Transition | undefined;
    if (r.exitCode !== 0 || !r.saved) {
      record.phase = 'finished';
      record.outcome = this.outcome(record, {
        status: 'Failed',
        outputImages: [],
        runErrorMessage: `the source could not be fetched: ${r.error || (r.saved ? `exit code ${r.exitCode}` : 'its workspace could not be saved')}`,
      });
    } else {
      record.workspaces[SOURCE] = [this.workspaceBlob(run.runId, SOURCE, '')];
      if (r.commit) record.commit = r.commit;
      if (r.branch && r.branch !== 'HEAD') record.branch = r.branch;
      transition = await this.load(run, secrets, record, writer);
    }
    const effects: Effect[] = [
      { kind: 'delete', name },
      ...(transition ? this.apply(run, record, transition) : []),
    ];
    try {
      await this.records.write(run.runId, record, current.etag);
    } catch (err) {
      if (statusOf(err) === 412) return 'lost the race';
      throw err;
    }
    await writer.flush();
    await this.perform(run, secrets, effects);
    return record.outcome ?? 'continues';
  }

  /**
   * Loads the run's task file (from the source's workspace, when it is in the source) and starts its graph; a task
   * file that cannot be loaded finishes the run Failed, naming why.
   */
  private async load(
    run: TaskFileRun,
    secrets: RunSecrets,
    record: GraphRecord,
    writer: ReturnType<RunLogs['writer']>,
  ): Promise<Transition | undefined> {
    const dir = await mkdtemp(join(tmpdir(), 'refit-aci-task-'));
    try {
      const src = join(dir, 'src');
      for (const blob of record.workspaces[SOURCE] ?? []) {
        const archive = join(dir, 'source.tar.gz');
        await downloadUpload(this.deps.sources, blob, archive, AbortSignal.timeout(120_000));
        const limits = this.deps.sources.limits;
        await extract(archive, src, 'the source', {
          bytes: limits.extractedBytes,
          entries: limits.extractedEntries,
        });
      }
      // The source group saved the context folder only, as an upload is its context: the task file is read from it.
      const root = src;
      const task = await loadRunTask({
        run,
        secrets,
        registry: this.deps.config.homeRegistry,
        sharedVolume: STEP_WORKSPACE,
        commit: record.commit,
        branch: record.branch,
        readSourceFile: (path, what) => readInside(root, path, what),
        http: this.deps.sources.http,
        maxAliasBytes: this.deps.config.limits.aliasBytes,
        keyVault: this.deps.keyVault,
      });
      refuseUnsupported(task);
      writer.addSecrets(Object.values(task.keyVaultSecrets));
      for (const w of [...task.warnings, ...aciNotes(task)]) writer.line(`Warning: ${w}`);
      writer.line(
        `The task has ${task.steps.length} step(s): ${task.steps.map((s) => `${s.id} (${s.type})`).join(', ')}`,
      );
      await writer.flush();
      record.task = task;
      record.phase = 'steps';
      return startGraph(task, this.now());
    } catch (err) {
      if (!(err instanceof AcbError) && !(err instanceof ValidationError) && !(err instanceof SourceError))
        throw err;
      record.phase = 'finished';
      record.outcome = this.outcome(record, {
        status: 'Failed',
        outputImages: [],
        runErrorMessage: err.message,
      });
      return undefined;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Applies a graph transition to the record: groups to create, starts to put off, attempts to stop, the end. */
  private apply(run: TaskFileRun, record: GraphRecord, transition: Transition): Effect[] {
    record.state = transition.state;
    const effects: Effect[] = [];
    if (transition.lines.length > 0) effects.push({ kind: 'log', lines: transition.lines });
    for (const action of transition.actions) {
      if (action.kind === 'start') {
        if (action.delaySeconds > 0) {
          record.delayed[`${action.stepId}/${action.attempt}`] = {
            step: action.stepId,
            attempt: action.attempt,
            at: this.now() + action.delaySeconds * 1000,
            lines: action.lines,
          };
          effects.push({
            kind: 'wake',
            step: action.stepId,
            attempt: action.attempt,
            seconds: action.delaySeconds,
          });
        } else effects.push(...this.begin(run, record, action.stepId, action.attempt, action.lines));
      } else if (action.kind === 'stop') {
        const key = `${action.stepId}/${action.attempt}`;
        const name = this.groupName(run.runId, action.stepId, action.attempt, record.task);
        delete record.delayed[key];
        effects.push({ kind: 'delete', name });
        effects.push(
          ...this.attemptEnd(run, record, name, { code: null, output: '', stopped: true }, action),
        );
      } else {
        record.phase = 'finished';
        record.outcome = this.outcome(
          record,
          action.status === 'succeeded'
            ? {
                status: 'Succeeded',
                outputImages: record.outputImages,
                baseImageDependencies: record.dependencies,
              }
            : {
                status: 'Failed',
                outputImages: record.outputImages,
                baseImageDependencies: record.dependencies,
                runErrorMessage: action.error.message,
              },
        );
      }
    }
    return effects;
  }

  /** An attempt's group is recorded and its create asked for. */
  private begin(
    run: TaskFileRun,
    record: GraphRecord,
    step: string,
    attempt: string,
    lines: readonly string[],
  ): Effect[] {
    const name = this.groupName(run.runId, step, attempt, record.task);
    record.groups[name] = entry(
      step,
      attempt,
      this.now(),
      run.agentConfiguration.cpu + REPORTER_CORES,
      this.deps.settings.memoryGb + REPORTER_GB,
      lines,
    );
    return [{ kind: 'create', name }];
  }

  /** An attempt ended (`name` its group): billed, forgotten, fed to the graph. */
  private attemptEnd(
    run: TaskFileRun,
    record: GraphRecord,
    name: string,
    end: AttemptEnd,
    known?: { stepId: string; attempt: string },
  ): Effect[] {
    const ended = record.groups[name];
    const step = ended?.step ?? known?.stepId;
    const attempt = ended?.attempt ?? known?.attempt;
    if (ended) {
      this.bill(record, ended);
      delete record.groups[name];
    }
    if (
      !record.task ||
      !record.state ||
      step === undefined ||
      attempt === undefined ||
      record.phase !== 'steps'
    )
      return [];
    const transition = attemptEnded(record.task, record.state, step, attempt, end, this.now());
    return this.apply(run, record, transition);
  }

  private woken(run: TaskFileRun, record: GraphRecord, wake: { step: string; attempt: string }): Effect[] {
    const key = `${wake.step}/${wake.attempt}`;
    const delayed = record.delayed[key];
    if (!delayed || record.phase !== 'steps') return [];
    // A wake of an earlier delay (a throttled create put the start off again): sent again for the time left.
    const left = delayed.at - this.now();
    if (left > 1000)
      return [{ kind: 'wake', step: delayed.step, attempt: delayed.attempt, seconds: left / 1000 }];
    delete record.delayed[key];
    return this.begin(run, record, delayed.step, delayed.attempt, delayed.lines);
  }

  /** Reads, changes and writes the record under its ETag (racing reports retry), then does what the change asks. */
  private async change(
    run: TaskFileRun,
    secrets: RunSecrets,
    change: (record: GraphRecord) => Effect[],
  ): Promise<void> {
    const effects = await retryOnConflict(`the step graph of run ${run.runId}`, async () => {
      const current = await this.records.read(run.runId);
      if (!current) return [];
      const effects = change(current.record);
      await this.records.write(run.runId, current.record, current.etag);
      return effects;
    });
    await this.perform(run, secrets, effects);
  }

  /** Does what a stored change asks: log lines, group creates and deletes, wakes. */
  private async perform(run: TaskFileRun, secrets: RunSecrets, effects: readonly Effect[]): Promise<void> {
    if (effects.length === 0) return;
    const task = (await this.records.read(run.runId))?.record.task;
    const writer = this.deps.logs.writer(run.runId, this.masks(secrets, task));
    for (const effect of effects) {
      if (effect.kind === 'log') for (const l of effect.lines) writer.line(l);
      else if (effect.kind === 'delete')
        await this.deps.groups.delete(effect.name).catch((err: unknown) => {
          log.warn('a step group could not be deleted', { runId: run.runId, error: (err as Error).message });
        });
      else if (effect.kind === 'wake')
        await this.sendWake(run.runId, effect.step, effect.attempt, effect.seconds);
      else await this.create(run, secrets, effect.name, writer);
    }
    await writer.flush();
  }

  /** Creates a step attempt's group; a create put off goes back to the delayed starts, one refused ends the attempt. */
  private async create(
    run: TaskFileRun,
    secrets: RunSecrets,
    name: string,
    writer: ReturnType<RunLogs['writer']>,
  ): Promise<void> {
    const current = await this.records.read(run.runId);
    const e = current?.record.groups[name];
    if (!current || !e || !current.record.task) return;
    const record = current.record;
    const step = record.task!.steps.find((s) => s.id === e.step)!;
    let result: CreateResult;
    try {
      for (const l of e.lines) writer.line(l);
      const group = await this.stepGroup(run, secrets, record, step, e.attempt);
      writer.line(
        `Step ID: ${step.id}: container group ${name} (${run.agentConfiguration.cpu} CPU, ${this.deps.settings.memoryGb} GB)`,
      );
      await writer.flush();
      result = await this.deps.groups.create(name, group);
    } catch (err) {
      const message = (err as Error).message;
      await this.change(run, secrets, (r) =>
        this.attemptEnd(run, r, name, { code: null, output: '', crash: message }),
      );
      return;
    }
    if (result.created) {
      // Stopped or canceled while it was being created: the group goes at once.
      const after = await this.records.read(run.runId).catch(() => undefined);
      if (after && !after.record.groups[name]) await this.deps.groups.delete(name);
      return;
    }
    const wait = result.retryAfterSeconds;
    writer.line(`Step ID: ${step.id}: ${result.reason}`);
    await this.change(run, secrets, (r) => {
      const held = r.groups[name];
      if (!held) return [];
      delete r.groups[name];
      r.delayed[`${held.step}/${held.attempt}`] = {
        step: held.step,
        attempt: held.attempt,
        at: this.now() + wait * 1000,
        lines: [],
      };
      return [{ kind: 'wake', step: held.step, attempt: held.attempt, seconds: wait }];
    });
  }

  /** The group of one step attempt. */
  private async stepGroup(
    run: TaskFileRun,
    secrets: RunSecrets,
    record: GraphRecord,
    step: AcbStep,
    attempt: string,
  ): Promise<ContainerGroup> {
    const task = record.task!;
    const settings = this.deps.settings;
    const ins = this.inputsOf(record, step);
    if (step.type === 'push') {
      const pushes = step.push!.map((to) => {
        const built = builtImage(record, to);
        // acb pushes images the run has; the only images a run has in ACI are the ones its build steps made.
        if (!built)
          throw new AcbError(
            `push: ${to} was not built by an earlier step of this run (in ACI a push step pushes what the run's build steps made)`,
          );
        return { from: `${built.repository}@${built.digest}`, to };
      });
      return pushStepGroup(settings, await this.inputs(run, secrets, step.id, attempt, [], record), pushes);
    }
    const inputs = await this.inputs(run, secrets, step.id, attempt, ins, record);
    if (step.type === 'build') {
      const workdir = stepWorkdir(step, STEP_WORKSPACE) ?? STEP_WORKSPACE;
      const built = Object.fromEntries(
        Object.entries(record.built).flatMap(([name, b]) => [
          [name, `${b.repository}@${b.digest}`],
          [b.as, `${b.repository}@${b.digest}`],
        ]),
      );
      return buildStepGroup(
        settings,
        inputs,
        step,
        run.platform,
        (image) => this.scoped(run.runId, image),
        workdir,
        built,
      );
    }
    const { image: named, args } = cmdWords(step, IMAGE_ALIASES);
    const built = builtImage(record, named);
    const image = built ? `${built.repository}@${built.digest}` : named;
    const argv = await this.command(run, secrets, step, image, args);
    return cmdStepGroup(settings, inputs, task, step, image, argv, stepWorkdir(step, STEP_WORKSPACE));
  }

  /**
   * A cmd step's command: its entryPoint or the image's, then its arguments or the image's Cmd (ACI's `command`
   * replaces both, so the image's are read from its registry when the step does not give them).
   */
  private async command(
    run: TaskFileRun,
    secrets: RunSecrets,
    step: AcbStep,
    image: string,
    args: string[],
  ): Promise<string[]> {
    if (step.entryPoint) return [...splitWords(step.entryPoint), ...args];
    const ref = parseImageReference(image);
    const config = await this.deps.registry.imageConfig(
      ref,
      run.platform,
      secrets.registries?.[ref.registry],
    );
    if (!config)
      throw new AcbError(
        `the image ${image} could not be read from its registry, and in ACI its entrypoint and command must be known: give the step an entryPoint`,
      );
    const command = [...(config.entrypoint ?? []), ...(args.length > 0 ? args : (config.cmd ?? []))];
    if (command.length === 0)
      throw new AcbError(`the image ${image} has no entrypoint or command, and the step gives none`);
    return command;
  }

  /**
   * The workspace blobs a step starts from, in the order they are extracted: the source, then the changes each step
   * before it made, along its dependencies (a change seen through two of them is applied once). A dependency that
   * saved nothing (it crashed, and its errors are ignored) passes on what it started from.
   */
  private inputsOf(record: GraphRecord, step: AcbStep): string[] {
    if (step.dependsOn.length === 0) return [...(record.workspaces[SOURCE] ?? [])];
    const steps = record.task?.steps ?? [];
    return unique(
      step.dependsOn.flatMap((d) => {
        const dep = steps.find((s) => s.id === d);
        return record.workspaces[d] ?? (dep ? this.inputsOf(record, dep) : []);
      }),
    );
  }

  /** What a step group is given: SAS URLs, the report's token, logins, masks. */
  private async inputs(
    run: TaskFileRun,
    secrets: RunSecrets,
    step: string,
    attempt: string,
    ins: readonly string[],
    record: GraphRecord,
  ): Promise<StepGroupInputs> {
    const validity = run.timeout * 1000 + SAS_MARGIN_MS;
    const storage = this.deps.storage;
    const sas = (blob: string, perms: string) =>
      blobSasUrl(storage, names.containers.sources, blob, perms, validity);
    const task = record.task;
    const own = step === SOURCE ? SOURCE : task?.steps.find((s) => s.id === step);
    return {
      runId: run.runId,
      cpu: run.agentConfiguration.cpu,
      step: step === SOURCE ? SOURCE : stepKey(task, step),
      label: step === SOURCE ? '' : step,
      attempt,
      workspaceIns: await Promise.all(ins.map((blob) => sas(blob, 'r'))),
      workspaceOut:
        !own || (own !== SOURCE && own.type === 'push')
          ? undefined
          : await sas(this.workspaceBlob(run.runId, own, attempt, task), 'cw'),
      insecureRegistries: this.deps.config.insecureRegistries,
      ...(await this.reporterInputs(run, secrets, record, validity)),
    };
  }

  private async reporterInputs(
    run: TaskFileRun,
    secrets: RunSecrets,
    record: GraphRecord,
    validity: number,
  ): Promise<ReporterInputs> {
    const { storage, config } = this.deps;
    return {
      logUrl: await blobSasUrl(
        storage,
        names.containers.logs,
        this.deps.logs.blob(run.runId).name,
        'a',
        validity,
      ),
      reportUrl: queueSendUrl(storage, names.queues.runCompletions, validity),
      reportToken: this.deps.reportToken(run.runId),
      masks: this.masks(secrets, record.task),
      maxLogBytes: config.maxLogBytes,
      homeRegistry: config.homeRegistry,
      logins: Object.fromEntries(
        Object.entries(secrets.registries ?? {}).filter(([r]) => r !== config.homeRegistry),
      ),
      tags: this.deps.tags(run.runId),
    };
  }

  /** The source the source group fetches. */
  private source(run: TaskFileRun, secrets: RunSecrets): GroupSource {
    const location = run.spec.sourceLocation!;
    if (!isGitSource(location)) return { kind: 'archive', url: location, folder: '' };
    return gitSource(location, run.spec.commit, secrets.gitToken);
  }

  /** What an ended step made: the images a build pushed to the run's repository, a push's images, the bases. */
  private async results(
    run: TaskFileRun,
    secrets: RunSecrets,
    step: AcbStep,
    r: StepReport,
  ): Promise<Pick<GraphRecord, 'built' | 'outputImages' | 'dependencies'>> {
    const pushed = r.images.flatMap((line) => outputImage(line));
    if (step.type === 'push') return { built: {}, outputImages: pushed, dependencies: [] };
    if (step.type !== 'build') return { built: {}, outputImages: [], dependencies: [] };
    const command = parseBuildCommand(step.build!, {});
    const built: GraphRecord['built'] = {};
    for (const tag of command.tags) {
      const scoped = parseImageReference(this.scoped(run.runId, tag));
      const image = pushed.find((p) => p.repository === scoped.repository && p.tag === scoped.tag);
      if (image)
        built[canonicalImage(tag)] = {
          repository: `${image.registry}/${image.repository}`,
          digest: image.digest,
          as: tag,
        };
    }
    const dependencies = await recordedBases(this.deps.registry, {
      runId: run.runId,
      dockerfile: Buffer.from(r.dockerfile, 'base64').toString('utf8'),
      buildArgs: command.buildArgs,
      target: command.target,
      platform: run.platform,
      registries: secrets.registries,
    });
    return { built, outputImages: [], dependencies };
  }

  /**
   * What the sweep reads of an active multi-step run: its groups (one GET each), its starts put off. Attempts whose
   * group failed, vanished, ended without a report or passed the step's timeout are ended; the run's outcome once the
   * graph has finished, else undefined (active).
   */
  async reconcile(run: TaskFileRun, secrets: RunSecrets): Promise<RunOutcome | 'active' | 'lost'> {
    const current = await this.records.read(run.runId);
    if (!current) return run.status === 'Started' ? 'lost' : 'active';
    if (current.record.outcome) return current.record.outcome;
    const now = this.now();
    const ends: { name: string; end: AttemptEnd }[] = [];
    for (const [name, e] of Object.entries(current.record.groups)) {
      const group = await this.deps.groups.get(name);
      const step = current.record.task?.steps.find((s) => s.id === e.step);
      const end = groupEnd(group, e, step, now);
      if (end) ends.push({ name, end });
    }
    const late = Object.values(current.record.delayed).filter((d) => d.at + WAKE_GRACE_MS < now);
    if (ends.length === 0 && late.length === 0) return 'active';
    await this.change(run, secrets, (record) => [
      ...ends.flatMap(({ name, end }): Effect[] => {
        const e = record.groups[name];
        if (e?.step === SOURCE && record.phase === 'source') {
          // The source never arrived: nothing else can start.
          this.bill(record, e);
          delete record.groups[name];
          record.phase = 'finished';
          record.outcome = this.outcome(record, {
            status: 'Error',
            outputImages: [],
            runErrorMessage: `the source could not be fetched: ${end.crash ?? 'its group timed out'}`,
          });
          return [{ kind: 'delete', name }];
        }
        return [{ kind: 'delete', name }, ...this.attemptEnd(run, record, name, end)];
      }),
      ...late.flatMap((d) => this.woken(run, record, d)),
    ]);
    return (await this.records.read(run.runId))?.record.outcome ?? 'active';
  }

  /** Everything the run holds: its groups, workspaces, run-scoped images and record. Idempotent. */
  async release(runId: string): Promise<void> {
    // A record that cannot be read now is kept for the next try (the sweep calls again), never taken for none.
    const record = (await this.records.read(runId))?.record;
    // No record: not a multi-step run, or one whose release already went through (the record goes last).
    if (!record) return;
    for (const name of Object.keys(record.groups)) await this.deps.groups.delete(name);
    const sources = this.deps.storage.container(names.containers.sources);
    for await (const blob of sources.listBlobsFlat({
      prefix: `workspaces/${runId}-${this.deps.deployment}/`,
    }))
      await sources.deleteBlob(blob.name).catch(() => undefined);
    if (this.deps.deleteImage)
      for (const built of Object.values(record.built))
        await this.deps.deleteImage(`${built.repository}@${built.digest}`).catch((err: unknown) => {
          log.warn('a run-scoped image could not be deleted', { runId, error: (err as Error).message });
        });
    await this.records.forget(runId);
  }

  private async sendWake(runId: string, step: string, attempt: string, seconds: number): Promise<void> {
    const message = { runId, report: { token: this.deps.reportToken(runId), wake: { step, attempt } } };
    await this.deps.storage
      .queue(names.queues.runCompletions)
      .sendMessage(JSON.stringify(message), { visibilityTimeout: Math.max(0, Math.ceil(seconds)) });
  }

  private bill(record: GraphRecord, e: GroupEntry): void {
    const seconds = Math.max(0, (this.now() - e.created) / 1000);
    record.groupSeconds += seconds;
    record.coreSeconds += seconds * e.cores;
    record.gbSeconds += seconds * e.gb;
  }

  /** The run's outcome with what its groups cost. */
  private outcome(record: GraphRecord, outcome: RunOutcome): RunOutcome {
    const prices = this.deps.settings.prices;
    const amount = record.coreSeconds * prices.coreSecond + record.gbSeconds * prices.gbSecond;
    return {
      ...outcome,
      costEstimate: {
        amount: Math.round(amount * 1e6) / 1e6,
        currency: 'USD',
        // Summed over the run's groups: their seconds, and the cores and memory they held on average.
        seconds: Math.round(record.groupSeconds),
        cores: Math.round((record.coreSeconds / Math.max(record.groupSeconds, 1e-9)) * 100) / 100,
        memoryGb: Math.round((record.gbSeconds / Math.max(record.groupSeconds, 1e-9)) * 100) / 100,
      },
    };
  }

  private masks(secrets: RunSecrets, task: RunTask | undefined): string[] {
    return [
      ...Object.values(secrets.arguments),
      ...Object.values(secrets.values ?? {}),
      ...(secrets.gitToken ? [secrets.gitToken] : []),
      ...Object.values(secrets.registries ?? {}).map((c) => c.password),
      ...Object.values(task?.keyVaultSecrets ?? {}),
    ].filter((v) => v.length > 0);
  }

  private now(): number {
    return this.deps.now().getTime();
  }
}

/** A file of the source, refused when it (links followed) is outside it. */
async function readInside(root: string, path: string, what: string): Promise<string> {
  const full = resolve(root, path);
  const real = await realpath(full).catch(() => full);
  const top = await realpath(root).catch(() => root);
  if (real !== top && !real.startsWith(top + sep))
    throw new AcbError(`${what} '${path}' is outside the source`);
  return readFile(real, 'utf8').catch(() => {
    throw new AcbError(`${what} '${path}' was not found in the source`);
  });
}
