import { z } from 'zod';
import type { Config } from '../config';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DependencyIndex, RecordedDependency } from '../dependencies/dependency-index';
import { scanDockerfile } from '../dockerfile/scan';
import { fetchSource } from '../executors/local/source';
import type { Storage } from '../storage/storage';
import { ConflictError, ValidationError } from '../errors';
import { parseWith } from '../http/validate';
import { log } from '../log';
import type {
  ImageUpdateTriggerDescriptor,
  Run,
  RunSecrets,
  SourceTriggerDescriptor,
  TimerTriggerDescriptor,
} from '../runs/run';
import type { RunService } from '../runs/run-service';
import { buildArgValues, resolveImageNames, sealRunSecrets } from '../runs/schedule-run';
import { open, seal } from '../storage/secret-box';
import { taskResource, type DockerStep, type SourceTrigger, type Task, type TaskSecrets } from './task';
import { isTaskName, taskCreateSchema, taskUpdateSchema, type TaskCreateBody } from './task-schema';
import { isWriteConflict, TaskStore, type StoredTask } from './task-store';

/** What started a task's run. */
export type TaskRunCause =
  | { readonly kind: 'manual' }
  | {
      readonly kind: 'source';
      readonly triggerName: string;
      readonly descriptor: SourceTriggerDescriptor;
      readonly cloneUrl: string;
    }
  | { readonly kind: 'timer'; readonly descriptor: TimerTriggerDescriptor }
  | { readonly kind: 'image'; readonly descriptor: ImageUpdateTriggerDescriptor };

/** What a TaskRunRequest may override (ACR's overrideTaskStepProperties). */
export interface StepOverrides {
  readonly contextPath?: string | undefined;
  readonly file?: string | undefined;
  readonly target?: string | undefined;
  readonly arguments?: readonly { name: string; value: string; isSecret: boolean }[] | undefined;
}

const taskRunRequestSchema = z
  .object({
    type: z.literal('TaskRunRequest'),
    taskId: z.string().min(1, 'taskId is required'),
    isArchiveEnabled: z.boolean().default(false),
    agentPoolName: z.string().optional(),
    logTemplate: z.string().optional(),
    overrideTaskStepProperties: z
      .object({
        contextPath: z.string().min(1).optional(),
        file: z.string().min(1).optional(),
        target: z.string().min(1).optional(),
        arguments: z
          .array(
            z
              .object({
                name: z.string().regex(/^[^=\s]+$/, 'an argument name must be non-empty without = or spaces'),
                value: z.string(),
                isSecret: z.boolean().default(false),
              })
              .strict(),
          )
          .optional(),
        values: z.array(z.unknown()).optional(),
        updateTriggerToken: z.string().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

function emptySecrets(): TaskSecrets {
  return { arguments: {}, sourceTokens: {} };
}

/** Tasks: create, read, update, delete, list, and start their runs. */
export class TaskService {
  readonly store: TaskStore;

  constructor(
    private readonly config: Config,
    store: TaskStore,
    private readonly runs: RunService,
    private readonly index: DependencyIndex,
    private readonly storage: Storage,
  ) {
    this.store = store;
  }

  /**
   * Reads the task's Dockerfile from its context and records what it is built from, so that base-image updates
   * reach the task before its first run (ACR needs a run first). Best effort: an unreadable context records nothing.
   */
  private async trackFromContext(task: Task, secrets: TaskSecrets): Promise<Task> {
    const dir = await mkdtemp(join(tmpdir(), 'refit-scan-'));
    try {
      const context = await fetchSource(
        this.storage,
        {
          location: task.step.contextPath,
          gitToken: secrets.contextAccessToken ?? Object.values(secrets.sourceTokens)[0],
        },
        dir,
        AbortSignal.timeout(60000),
        () => undefined,
      );
      const text = await readFile(resolve(context, task.step.dockerFilePath), 'utf8');
      const buildArgs = buildArgValues(task.step.arguments, secrets.arguments);
      const previous = task.baseImageDependencies ?? [];
      const sameImage = (a: RecordedDependency, b: RecordedDependency): boolean =>
        a.registry === b.registry && a.repository === b.repository && a.tag === b.tag;
      const scanned: RecordedDependency[] = scanDockerfile(text, { buildArgs, target: task.step.target }).map(
        (d) => {
          const known = previous.find((p) => sameImage(p, { ...d, platformDigest: null }));
          return {
            ...d,
            digest: d.digest ?? known?.digest ?? null,
            platformDigest: known?.platformDigest ?? d.digest ?? null,
          };
        },
      );
      await this.index.record(task.name, scanned, previous);
      return { ...task, baseImageDependencies: scanned };
    } catch (err) {
      log.info('task context not scanned', { task: task.name, reason: (err as Error).message });
      return task;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private stepChanged(before: Task | undefined, after: Task): boolean {
    if (!before) return true;
    const keyOf = (t: Task): string =>
      JSON.stringify([
        t.step.contextPath,
        t.step.dockerFilePath,
        t.step.target ?? null,
        t.step.arguments,
        t.platform,
      ]);
    return keyOf(before) !== keyOf(after);
  }

  private openSecrets(sealed: string | undefined): TaskSecrets {
    return sealed ? (JSON.parse(open(this.config.secretKey, sealed)) as TaskSecrets) : emptySecrets();
  }

  private sealSecrets(secrets: TaskSecrets): string | undefined {
    const empty =
      !secrets.contextAccessToken &&
      !secrets.updateTriggerToken &&
      Object.keys(secrets.arguments).length === 0 &&
      Object.keys(secrets.sourceTokens).length === 0;
    return empty ? undefined : seal(this.config.secretKey, JSON.stringify(secrets));
  }

  private checkName(name: string): void {
    if (!isTaskName(name))
      throw new ValidationError(`task name '${name}' must be 5 to 50 letters, digits, _ or -`, 'taskName');
  }

  private checkTask(task: Task): void {
    resolveImageNames(task.step.imageNames, 'aa1', this.config.homeRegistry, new Date());
    if (task.platform.os === 'Windows')
      throw new ValidationError(
        "platform.os 'Windows' is not supported: Refit builds Linux images",
        'properties.platform.os',
      );
    const names = new Set<string>();
    for (const t of [...task.trigger.sourceTriggers, ...task.trigger.timerTriggers]) {
      if (names.has(t.name))
        throw new ValidationError(`two triggers are named '${t.name}'`, 'properties.trigger');
      names.add(t.name);
    }
  }

  /**
   * Splits a validated body into the task (no secret values) and its secrets; a secret the body leaves out keeps
   * the value `previous` had (so a GET → PUT round trip loses nothing).
   */
  private split(
    name: string,
    body: TaskCreateBody,
    previous: TaskSecrets,
    creationDate: string,
    timerSince: Record<string, string>,
    previousDependencies?: Task['baseImageDependencies'],
  ): { task: Task; secrets: TaskSecrets } {
    const p = body.properties;
    const args: Record<string, string> = {};
    const stepArgs = p.step.arguments.map((a, i) => {
      if (!a.isSecret) {
        if (a.value === undefined)
          throw new ValidationError(
            `argument '${a.name}' needs a value`,
            `properties.step.arguments[${i}].value`,
          );
        return { name: a.name, value: a.value, isSecret: false };
      }
      const value = a.value ?? previous.arguments[a.name];
      if (value === undefined)
        throw new ValidationError(
          `secret argument '${a.name}' needs a value`,
          `properties.step.arguments[${i}].value`,
        );
      args[a.name] = value;
      return { name: a.name, isSecret: true };
    });
    const sourceTokens: Record<string, string> = {};
    const sourceTriggers: SourceTrigger[] = p.trigger.sourceTriggers.map((t) => {
      const auth = t.sourceRepository.sourceControlAuthProperties;
      const token = auth?.token ?? previous.sourceTokens[t.name];
      if (token) sourceTokens[t.name] = token;
      return {
        name: t.name,
        sourceRepository: {
          sourceControlType: t.sourceRepository.sourceControlType,
          repositoryUrl: t.sourceRepository.repositoryUrl,
          branch: t.sourceRepository.branch,
          ...(auth || token ? { sourceControlAuthProperties: { tokenType: auth?.tokenType ?? 'PAT' } } : {}),
        },
        sourceTriggerEvents: [...new Set(t.sourceTriggerEvents)],
        status: t.status,
      };
    });
    const step: DockerStep = {
      type: 'Docker',
      imageNames: p.step.imageNames,
      isPushEnabled: p.step.isPushEnabled,
      noCache: p.step.noCache,
      dockerFilePath: p.step.dockerFilePath,
      ...(p.step.target ? { target: p.step.target } : {}),
      arguments: stepArgs,
      contextPath: p.step.contextPath,
    };
    const contextAccessToken = p.step.contextAccessToken ?? previous.contextAccessToken;
    const now = new Date().toISOString();
    const task: Task = {
      name,
      status: p.status,
      platform: {
        os: p.platform.os,
        architecture: p.platform.architecture,
        ...(p.platform.variant ? { variant: p.platform.variant } : {}),
      },
      agentConfiguration: p.agentConfiguration,
      timeout: p.timeout,
      step,
      trigger: {
        sourceTriggers,
        timerTriggers: p.trigger.timerTriggers.map((t) => ({
          name: t.name,
          schedule: t.schedule.trim(),
          status: t.status,
        })),
        ...(p.trigger.baseImageTrigger ? { baseImageTrigger: p.trigger.baseImageTrigger } : {}),
      },
      creationDate,
      ...(previousDependencies ? { baseImageDependencies: previousDependencies } : {}),
      timerSince: Object.fromEntries(
        p.trigger.timerTriggers.map((t) => [
          t.name,
          timerSince[`${t.name} ${t.schedule.trim()} ${t.status}`] ?? now,
        ]),
      ),
    };
    this.checkTask(task);
    return {
      task,
      secrets: { arguments: args, sourceTokens, ...(contextAccessToken ? { contextAccessToken } : {}) },
    };
  }

  /** Keys that keep a timer's start when neither its schedule nor its status changes. */
  private timerKeys(task: Task | undefined): Record<string, string> {
    if (!task) return {};
    return Object.fromEntries(
      task.trigger.timerTriggers.map((t) => [
        `${t.name} ${t.schedule} ${t.status}`,
        task.timerSince[t.name] ?? task.creationDate,
      ]),
    );
  }

  /** Tasks_Create: creates or replaces; `created` tells which (201 or 200). */
  async create(
    name: string,
    body: unknown,
  ): Promise<{ resource: Record<string, unknown>; created: boolean }> {
    this.checkName(name);
    const parsed = parseWith(taskCreateSchema, body, 'the task');
    for (;;) {
      const existing = await this.store.find(name);
      const split = this.split(
        existing?.task.name ?? name,
        parsed,
        existing ? this.openSecrets(existing.sealedSecrets) : emptySecrets(),
        existing?.task.creationDate ?? new Date().toISOString(),
        this.timerKeys(existing?.task),
        existing?.task.baseImageDependencies,
      );
      const secrets = split.secrets;
      const task = this.stepChanged(existing?.task, split.task)
        ? await this.trackFromContext(split.task, secrets)
        : split.task;
      try {
        await this.store.put(
          task,
          this.sealSecrets(secrets),
          { location: parsed.location ?? existing?.location, tags: parsed.tags ?? existing?.tags },
          existing?.etag,
        );
        log.info(existing ? 'task replaced' : 'task created', { task: task.name });
        return {
          resource: this.resource(task, parsed.location ?? existing?.location, parsed.tags ?? existing?.tags),
          created: !existing,
        };
      } catch (err) {
        if (!isWriteConflict(err)) throw err;
      }
    }
  }

  /** Tasks_Update: merges TaskUpdateParameters into the task; triggers are merged by name. */
  async update(name: string, body: unknown): Promise<Record<string, unknown>> {
    const patch = parseWith(taskUpdateSchema, body, 'the task update');
    for (;;) {
      const existing = await this.store.get(name);
      const current = existing.task;
      const pp = patch.properties;
      const mergeByName = <T extends { name: string }>(
        base: readonly T[],
        changes: readonly T[] | undefined,
      ): T[] => {
        const out = [...base];
        for (const change of changes ?? []) {
          const i = out.findIndex((x) => x.name === change.name);
          if (i >= 0) out[i] = change;
          else out.push(change);
        }
        return out;
      };
      const merged: TaskCreateBody = {
        properties: {
          status: pp.status ?? current.status,
          platform: pp.platform ?? current.platform,
          agentConfiguration: pp.agentConfiguration ?? current.agentConfiguration,
          timeout: pp.timeout ?? current.timeout,
          step: {
            type: 'Docker',
            imageNames: [...(pp.step?.imageNames ?? current.step.imageNames)],
            isPushEnabled: pp.step?.isPushEnabled ?? current.step.isPushEnabled,
            noCache: pp.step?.noCache ?? current.step.noCache,
            dockerFilePath: pp.step?.dockerFilePath ?? current.step.dockerFilePath,
            ...((pp.step?.target ?? current.step.target)
              ? { target: pp.step?.target ?? current.step.target }
              : {}),
            arguments: mergeByName(
              current.step.arguments.map((a) => ({ ...a })),
              pp.step?.arguments,
            ),
            contextPath: pp.step?.contextPath ?? current.step.contextPath,
            ...(pp.step?.contextAccessToken ? { contextAccessToken: pp.step.contextAccessToken } : {}),
          },
          trigger: {
            sourceTriggers: mergeByName<TaskCreateBody['properties']['trigger']['sourceTriggers'][number]>(
              current.trigger.sourceTriggers.map((t) => ({
                ...t,
                sourceRepository: { ...t.sourceRepository },
                sourceTriggerEvents: [...t.sourceTriggerEvents],
              })),
              pp.trigger?.sourceTriggers,
            ),
            timerTriggers: mergeByName(
              current.trigger.timerTriggers.map((t) => ({ ...t })),
              pp.trigger?.timerTriggers,
            ),
            ...((pp.trigger?.baseImageTrigger ?? current.trigger.baseImageTrigger)
              ? { baseImageTrigger: pp.trigger?.baseImageTrigger ?? current.trigger.baseImageTrigger }
              : {}),
          },
        },
      };
      const split = this.split(
        current.name,
        merged,
        this.openSecrets(existing.sealedSecrets),
        current.creationDate,
        this.timerKeys(current),
        current.baseImageDependencies,
      );
      const secrets = split.secrets;
      const task = this.stepChanged(current, split.task)
        ? await this.trackFromContext(split.task, secrets)
        : split.task;
      try {
        await this.store.put(
          task,
          this.sealSecrets(secrets),
          { location: patch.location ?? existing.location, tags: patch.tags ?? existing.tags },
          existing.etag,
        );
        log.info('task updated', { task: task.name });
        return this.resource(task, patch.location ?? existing.location, patch.tags ?? existing.tags);
      } catch (err) {
        if (!isWriteConflict(err)) throw err;
      }
    }
  }

  private resource(
    task: Task,
    location: string | undefined,
    tags: Readonly<Record<string, string>> | undefined,
  ): Record<string, unknown> {
    return { ...taskResource(task), ...(location ? { location } : {}), ...(tags ? { tags } : {}) };
  }

  /** Records what a task's successful run was built from: on the task and in the reverse index. */
  async recordDependencies(run: Run): Promise<void> {
    const index = this.index;
    if (!run.taskName || !run.baseImageDependencies) return;
    const current = run.baseImageDependencies;
    for (;;) {
      const stored = await this.store.find(run.taskName);
      if (!stored) return;
      const previous = stored.task.baseImageDependencies ?? [];
      try {
        await this.store.put(
          { ...stored.task, baseImageDependencies: current },
          stored.sealedSecrets,
          { location: stored.location, tags: stored.tags },
          stored.etag,
        );
        await index.record(stored.task.name, current, previous);
        return;
      } catch (err) {
        if (!isWriteConflict(err)) throw err;
      }
    }
  }

  /** Tasks_Get. */
  async get(name: string): Promise<Record<string, unknown>> {
    const stored = await this.store.get(name);
    return this.resource(stored.task, stored.location, stored.tags);
  }

  /** Tasks_Delete: true when there was a task. */
  delete(name: string): Promise<boolean> {
    return this.store.delete(name);
  }

  /** Tasks_List. */
  async list(
    top: number,
    continuationToken?: string,
  ): Promise<{ value: Record<string, unknown>[]; continuationToken: string | undefined }> {
    const page = await this.store.list(top, continuationToken);
    return {
      value: page.tasks.map((t) => this.resource(t.task, t.location, t.tags)),
      continuationToken: page.continuationToken,
    };
  }

  /** Registries_ScheduleRun with a TaskRunRequest: a manual run of a task, with overrides. */
  async runFromRequest(body: unknown): Promise<Run> {
    const request = parseWith(taskRunRequestSchema, body, 'TaskRunRequest');
    const name = request.taskId.split('/').filter(Boolean).pop() ?? request.taskId;
    const stored = await this.store.get(name);
    if (stored.task.status === 'Disabled')
      throw new ConflictError(`task '${stored.task.name}' is Disabled: enable it to run it`, 'taskId');
    const o = request.overrideTaskStepProperties;
    const run = await this.startRun(
      stored,
      { kind: 'manual' },
      {
        contextPath: o?.contextPath,
        file: o?.file,
        target: o?.target,
        arguments: o?.arguments,
      },
      request.isArchiveEnabled,
    );
    if (o?.updateTriggerToken) await this.keepUpdateTriggerToken(stored.task.name, o.updateTriggerToken);
    return run;
  }

  /** Keeps the token a manual run was given for later base-image update notifications (sealed with the secrets). */
  private async keepUpdateTriggerToken(name: string, token: string): Promise<void> {
    for (;;) {
      const stored = await this.store.find(name);
      if (!stored) return;
      const secrets = { ...this.openSecrets(stored.sealedSecrets), updateTriggerToken: token };
      try {
        await this.store.put(
          stored.task,
          this.sealSecrets(secrets),
          { location: stored.location, tags: stored.tags },
          stored.etag,
        );
        return;
      } catch (err) {
        if (!isWriteConflict(err)) throw err;
      }
    }
  }

  /** The token to send with the task's base-image update notifications, if one was given. */
  async updateTriggerToken(name: string): Promise<string | undefined> {
    const stored = await this.store.find(name);
    return stored ? this.openSecrets(stored.sealedSecrets).updateTriggerToken : undefined;
  }

  /** Queues a run of a task for any cause; the caller has checked that the task and trigger are enabled. */
  async startRun(
    stored: StoredTask,
    cause: TaskRunCause,
    overrides: StepOverrides = {},
    isArchiveEnabled = false,
  ): Promise<Run> {
    const { task } = stored;
    const secrets = this.openSecrets(stored.sealedSecrets);
    const runId = await this.runs.nextRunId();
    const now = new Date();
    const args = new Map<string, { name: string; value?: string; isSecret: boolean }>(
      task.step.arguments.map((a) => [a.name, a]),
    );
    const runArgs: Record<string, string> = { ...secrets.arguments };
    for (const a of overrides.arguments ?? []) {
      args.set(a.name, a.isSecret ? { name: a.name, isSecret: true } : a);
      if (a.isSecret) runArgs[a.name] = a.value;
      else delete runArgs[a.name];
    }
    let sourceLocation = overrides.contextPath ?? task.step.contextPath;
    let commit: string | undefined;
    let gitToken = secrets.contextAccessToken;
    if (cause.kind === 'source') {
      gitToken ??= secrets.sourceTokens[cause.triggerName];
      commit = cause.descriptor.commitId;
      sourceLocation = sourceLocation.includes('#')
        ? sourceLocation
        : `${sourceLocation}#${cause.descriptor.branchName}`;
      if (cause.descriptor.eventType === 'pullrequest')
        sourceLocation = `${cause.cloneUrl}#${cause.descriptor.branchName}${folderOf(task.step.contextPath)}`;
    }
    gitToken ??= Object.values(secrets.sourceTokens)[0];
    const runSecrets: RunSecrets = { arguments: runArgs, ...(gitToken ? { gitToken } : {}) };
    const time = now.toISOString();
    const run: Run = {
      runId,
      status: 'Queued',
      runType: 'AutoBuild',
      taskName: task.name,
      createTime: time,
      startTime: undefined,
      finishTime: undefined,
      lastUpdatedTime: time,
      isArchiveEnabled,
      platform: task.platform,
      agentConfiguration: task.agentConfiguration,
      timeout: task.timeout,
      outputImages: [],
      runErrorMessage: undefined,
      spec: {
        kind: 'DockerBuild',
        sourceLocation,
        dockerFilePath: overrides.file ?? task.step.dockerFilePath,
        imageNames: resolveImageNames(task.step.imageNames, runId, this.config.homeRegistry, now),
        isPushEnabled: task.step.isPushEnabled && task.step.imageNames.length > 0,
        noCache: task.step.noCache,
        target: overrides.target ?? task.step.target,
        arguments: [...args.values()].map((a) =>
          a.isSecret
            ? { name: a.name, isSecret: true }
            : { name: a.name, isSecret: false, value: a.value ?? '' },
        ),
        ...(commit ? { commit } : {}),
      },
      sealedSecrets: sealRunSecrets(this.config.secretKey, runSecrets),
      ...(cause.kind === 'source' ? { sourceTrigger: cause.descriptor } : {}),
      ...(cause.kind === 'timer' ? { timerTrigger: cause.descriptor } : {}),
      ...(cause.kind === 'image' ? { imageUpdateTrigger: cause.descriptor } : {}),
    };
    return this.runs.enqueue(run);
  }
}

function folderOf(contextPath: string): string {
  const fragment = contextPath.split('#')[1];
  const colon = fragment?.indexOf(':') ?? -1;
  return fragment && colon >= 0 ? fragment.slice(colon) : '';
}
