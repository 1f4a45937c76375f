import { checkEncodedTask } from '../runs/task-file-run';
import type { Config } from '../config';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DependencyIndex, RecordedDependency } from '../dependencies/dependency-index';
import { scanDockerfile } from '../dockerfile/scan';
import { withoutUrlPassword } from '../sources/url-credentials';
import { fetchSource, type SourceAccess } from '../sources/fetch-source';
import { checkUpdateTriggerEndpoint } from '../triggers/update-notification';
import type { Storage } from '../storage/storage';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
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
import {
  taskDetailsResource,
  taskResource,
  type DockerStep,
  type SourceTrigger,
  type Task,
  type TaskFileStep,
  type TaskCredentials,
  type TaskSecrets,
  type TaskStep,
} from './task';
import { isTaskName, taskCreateSchema, taskUpdateSchema, type TaskCreateBody } from './task-schema';
import { TaskStore, type StoredTask } from './task-store';
import { mergeStep, mergeTriggers } from './task-merge';
import { taskRunRequestSchema, type StepOverrides } from './task-run-request';
import { emptySecrets, openTaskSecrets, sealTaskSecrets } from './task-secrets';
import type { SecretResolver } from '../secrets/key-vault';
import { mergeCredentials, registryCredentials, splitCredentials, taskLogins } from './task-credentials';
import { RegistryNames } from '../registry/registry-names';
import type { RegistryCredentials } from '../registry/auth';
import { retryOnConflict } from '../storage/write-conflicts';

/** What started a task's run. */
export type TaskRunCause =
  | { readonly kind: 'manual' }
  | {
      readonly kind: 'source';
      readonly triggerName: string;
      readonly descriptor: SourceTriggerDescriptor;
      readonly cloneUrl: string;
      /** The source is a fork's pull request: the run gets none of the task's secrets and pushes nothing. */
      readonly untrusted?: true;
    }
  | { readonly kind: 'timer'; readonly descriptor: TimerTriggerDescriptor }
  | { readonly kind: 'image'; readonly descriptor: ImageUpdateTriggerDescriptor };

/** Tasks: create, read, update, delete, list, and start their runs. */
export class TaskService {
  readonly store: TaskStore;
  constructor(
    private readonly config: Config,
    store: TaskStore,
    private readonly runs: RunService,
    private readonly index: DependencyIndex,
    private readonly storage: Storage,
    private readonly sources: SourceAccess,
    /** Resolves Key Vault references (Vaultsecret credentials); none without REFIT_IDENTITY_CLIENT_ID. */
    private readonly keyVault?: SecretResolver,
  ) {
    this.store = store;
    this.names = new RegistryNames(config.homeRegistry, config.homeRegistryAliases);
  }

  /** The names of registries, as the dependency index canonicalises them: a task's logins are matched by them. */
  readonly names: RegistryNames;

  /**
   * The credentials a task has for `registry` (any name of it), unsealed; undefined when it has none. What every
   * registry lookup made on the task's behalf uses: the base-image decision, the watcher.
   */
  registryCredentials(stored: StoredTask, registry: string): Promise<RegistryCredentials | undefined> {
    return registryCredentials(stored, registry, {
      secretKey: this.config.secretKey,
      names: this.names,
      keyVault: this.keyVault,
    });
  }

  /**
   * The login the first of `tasks` that has one for `registry` holds, or undefined (anonymous): what the watcher asks
   * a registry with on behalf of a reference's dependents. Only tasks whose stored credentials name the registry are
   * unsealed.
   */
  async loginFor(registry: string, tasks: readonly string[]): Promise<RegistryCredentials | undefined> {
    for (const name of tasks) {
      const stored = await this.store.find(name);
      // A login Key Vault will not give now is skipped: the next task's (or none) is asked with.
      const login = stored
        ? await this.registryCredentials(stored, registry).catch((err: unknown) => {
            log.warn('task registry credentials could not be resolved', {
              task: name,
              registry,
              error: (err as Error).message,
            });
            return undefined;
          })
        : undefined;
      if (login) return login;
    }
    return undefined;
  }

  /**
   * Reads the task's Dockerfile from its context and records what it is built from, so that base-image updates
   * reach the task before its first run (ACR needs a run first). Best effort: an unreadable context records nothing.
   */
  private async trackFromContext(task: Task, secrets: TaskSecrets): Promise<Task> {
    // A multi-step task's dependencies are known from its first run (its build steps are scanned then).
    const step = task.step;
    if (step.type !== 'Docker') return task;
    const dir = await mkdtemp(join(tmpdir(), 'refit-scan-'));
    try {
      const context = await fetchSource(
        this.sources,
        {
          location: step.contextPath,
          gitToken: secrets.contextAccessToken ?? Object.values(secrets.sourceTokens)[0],
        },
        dir,
        AbortSignal.timeout(60000),
        () => undefined,
      );
      const text = await readFile(resolve(context, step.dockerFilePath), 'utf8');
      const buildArgs = buildArgValues(step.arguments, secrets.arguments);
      const previous = task.baseImageDependencies ?? [];
      const sameImage = (a: RecordedDependency, b: RecordedDependency): boolean =>
        a.registry === b.registry && a.repository === b.repository && a.tag === b.tag;
      const scanned: RecordedDependency[] = scanDockerfile(text, { buildArgs, target: step.target }).map(
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
    const keyOf = (t: Task): string => JSON.stringify([t.step, t.platform]);
    return keyOf(before) !== keyOf(after);
  }

  private openSecrets(sealed: string | undefined): TaskSecrets {
    return openTaskSecrets(this.config.secretKey, sealed);
  }

  private sealSecrets(secrets: TaskSecrets): string | undefined {
    return sealTaskSecrets(this.config.secretKey, secrets);
  }

  private checkName(name: string): void {
    if (!isTaskName(name))
      throw new ValidationError(`task name '${name}' must be 5 to 50 letters, digits, _ or -`, 'taskName');
  }

  private async checkTask(task: Task, secrets: TaskSecrets): Promise<void> {
    const step = task.step;
    if (step.type === 'Docker')
      resolveImageNames(step.imageNames, 'aa1', this.config.homeRegistry, new Date());
    if (step.type === 'EncodedTask')
      await checkEncodedTask(
        step.encodedTaskContent ?? '',
        step.encodedValuesContent,
        step.values.map((v) => ({
          name: v.name,
          value: v.isSecret ? (secrets.arguments[v.name] ?? '') : (v.value ?? ''),
        })),
        this.config.homeRegistry,
        'properties.step.encodedTaskContent',
      );
    await checkUpdateTriggerEndpoint(
      task.trigger.baseImageTrigger?.updateTriggerEndpoint,
      this.config.network,
    );
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

  /** The step without secret values, and those values by name (a secret left out keeps its previous value). */
  private splitStep(
    given: TaskCreateBody['properties']['step'],
    previous: TaskSecrets,
  ): { step: TaskStep; secretValues: Record<string, string> } {
    const secretValues: Record<string, string> = {};
    const field = given.type === 'Docker' ? 'arguments' : 'values';
    const named = (given.type === 'Docker' ? given.arguments : given.values).map((a, i) => {
      if (!a.isSecret) {
        if (a.value === undefined)
          throw new ValidationError(
            `${given.type === 'Docker' ? 'argument' : 'value'} '${a.name}' needs a value`,
            `properties.step.${field}[${i}].value`,
          );
        return { name: a.name, value: a.value, isSecret: false };
      }
      const value = a.value ?? previous.arguments[a.name];
      if (value === undefined)
        throw new ValidationError(
          `secret ${given.type === 'Docker' ? 'argument' : 'value'} '${a.name}' needs a value`,
          `properties.step.${field}[${i}].value`,
        );
      secretValues[a.name] = value;
      return { name: a.name, isSecret: true };
    });
    if (given.type === 'Docker') {
      const step: DockerStep = {
        type: 'Docker',
        imageNames: given.imageNames,
        isPushEnabled: given.isPushEnabled,
        noCache: given.noCache,
        dockerFilePath: given.dockerFilePath,
        ...(given.target ? { target: given.target } : {}),
        arguments: named,
        contextPath: given.contextPath,
      };
      return { step, secretValues };
    }
    const step: TaskFileStep =
      given.type === 'FileTask'
        ? {
            type: 'FileTask',
            contextPath: given.contextPath,
            taskFilePath: given.taskFilePath,
            ...(given.valuesFilePath ? { valuesFilePath: given.valuesFilePath } : {}),
            values: named,
          }
        : {
            type: 'EncodedTask',
            ...(given.contextPath && given.contextPath !== '/dev/null'
              ? { contextPath: given.contextPath }
              : {}),
            encodedTaskContent: given.encodedTaskContent,
            ...(given.encodedValuesContent ? { encodedValuesContent: given.encodedValuesContent } : {}),
            values: named,
          };
    return { step, secretValues };
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
    previousCredentials?: TaskCredentials,
  ): { task: Task; secrets: TaskSecrets } {
    const p = body.properties;
    const logins = splitCredentials(
      p.credentials,
      { credentials: previousCredentials, passwords: previous.registryPasswords },
      this.names,
      'properties.credentials',
      this.keyVault !== undefined,
    );
    // A password in the context URL is sealed with the secrets (as the context token), never stored nor returned.
    const context = p.step.contextPath ? withoutUrlPassword(p.step.contextPath) : undefined;
    const { step, secretValues: args } = this.splitStep(
      context ? { ...p.step, contextPath: context.location } : p.step,
      previous,
    );
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
    const contextAccessToken = context?.password ?? p.step.contextAccessToken ?? previous.contextAccessToken;
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
      ...(logins.credentials ? { credentials: logins.credentials } : {}),
    };
    return {
      task,
      secrets: {
        arguments: args,
        sourceTokens,
        ...(contextAccessToken ? { contextAccessToken } : {}),
        // Given by a manual run, not by the body: an update of the task keeps it.
        ...(previous.updateTriggerToken ? { updateTriggerToken: previous.updateTriggerToken } : {}),
        ...(Object.keys(logins.passwords).length ? { registryPasswords: logins.passwords } : {}),
      },
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
    return retryOnConflict(`task '${name}'`, async () => {
      const existing = await this.store.find(name);
      const split = this.split(
        existing?.task.name ?? name,
        parsed,
        existing ? this.openSecrets(existing.sealedSecrets) : emptySecrets(),
        existing?.task.creationDate ?? new Date().toISOString(),
        this.timerKeys(existing?.task),
        existing?.task.baseImageDependencies,
        existing?.task.credentials,
      );
      const secrets = split.secrets;
      await this.checkTask(split.task, secrets);
      const task = this.stepChanged(existing?.task, split.task)
        ? await this.trackFromContext(split.task, secrets)
        : split.task;
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
    });
  }

  /** Tasks_Update: merges TaskUpdateParameters into the task; triggers are merged by name. */
  async update(name: string, body: unknown): Promise<Record<string, unknown>> {
    const patch = parseWith(taskUpdateSchema, body, 'the task update');
    return retryOnConflict(`task '${name}'`, async () => {
      const existing = await this.store.get(name);
      const current = existing.task;
      const pp = patch.properties;
      const merged: TaskCreateBody = {
        properties: {
          status: pp.status ?? current.status,
          // PlatformUpdateParameters: each property given replaces the stored one.
          platform: {
            os: pp.platform?.os ?? current.platform.os,
            architecture: pp.platform?.architecture ?? current.platform.architecture,
            ...((pp.platform?.variant ?? current.platform.variant)
              ? { variant: pp.platform?.variant ?? current.platform.variant }
              : {}),
          },
          agentConfiguration: pp.agentConfiguration ?? current.agentConfiguration,
          timeout: pp.timeout ?? current.timeout,
          step: mergeStep(current.step, pp.step),
          credentials: mergeCredentials(current.credentials, pp.credentials),
          trigger: mergeTriggers(current.trigger, pp.trigger),
        },
      };
      const split = this.split(
        current.name,
        merged,
        this.openSecrets(existing.sealedSecrets),
        current.creationDate,
        this.timerKeys(current),
        current.baseImageDependencies,
        current.credentials,
      );
      const secrets = split.secrets;
      await this.checkTask(split.task, secrets);
      const task = this.stepChanged(current, split.task)
        ? await this.trackFromContext(split.task, secrets)
        : split.task;
      await this.store.put(
        task,
        this.sealSecrets(secrets),
        { location: patch.location ?? existing.location, tags: patch.tags ?? existing.tags },
        existing.etag,
      );
      log.info('task updated', { task: task.name });
      return this.resource(task, patch.location ?? existing.location, patch.tags ?? existing.tags);
    });
  }

  private resource(
    task: Task,
    location: string | undefined,
    tags: Readonly<Record<string, string>> | undefined,
  ): Record<string, unknown> {
    return { ...taskResource(task), ...(location ? { location } : {}), ...(tags ? { tags } : {}) };
  }

  /**
   * Records what a task's successful run was built from: in the reverse index, then on the task with the run's ID.
   * Idempotent (a queue handler's work): a run already recorded, or older than the one recorded, changes nothing;
   * a recording cut short between the two writes is completed by the next delivery.
   */
  async recordDependencies(run: Run): Promise<void> {
    const index = this.index;
    const taskName = run.taskName;
    if (!taskName || !run.baseImageDependencies) return;
    const current = run.baseImageDependencies;
    const from = { runId: run.runId, finishTime: run.finishTime ?? run.createTime };
    // What a multi-step task pushes is only known from its runs: kept so that its own pushes never trigger it.
    const outputImages =
      run.spec.kind === 'TaskFile'
        ? run.outputImages.map((o) => `${o.registry}/${o.repository}${o.tag ? `:${o.tag}` : ''}`)
        : undefined;
    return retryOnConflict(`task '${taskName}'`, async () => {
      const stored = await this.store.find(taskName);
      // A run older than the task is a run of a deleted task of the same name: it says nothing of this one.
      if (!stored || Date.parse(run.createTime) < Date.parse(stored.task.creationDate)) return;
      const recorded = stored.task.dependenciesFrom;
      if (recorded && (recorded.runId === from.runId || recorded.finishTime > from.finishTime)) return;
      const previous = stored.task.baseImageDependencies ?? [];
      // The index first: the task names the run only once its index rows are written.
      await index.record(stored.task.name, current, previous);
      await this.store.put(
        {
          ...stored.task,
          baseImageDependencies: current,
          dependenciesFrom: from,
          ...(outputImages ? { outputImages } : {}),
        },
        stored.sealedSecrets,
        { location: stored.location, tags: stored.tags },
        stored.etag,
      );
    });
  }

  /** Tasks_Get. */
  async get(name: string): Promise<Record<string, unknown>> {
    const stored = await this.store.get(name);
    return this.resource(stored.task, stored.location, stored.tags);
  }

  /** Tasks_GetDetails: the task with its secret values ({@link taskDetailsResource}). */
  async getDetails(name: string): Promise<Record<string, unknown>> {
    const stored = await this.store.get(name);
    const secrets = openTaskSecrets(this.config.secretKey, stored.sealedSecrets);
    return taskDetailsResource(this.resource(stored.task, stored.location, stored.tags), secrets);
  }

  /** Tasks_Delete: true when there was a task. Its dependency rows go too, also when a retry finds no task. */
  async delete(name: string): Promise<boolean> {
    const existed = await this.store.delete(name);
    await this.index.forget(name);
    return existed;
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
    // A full ARM id names its registry: one of another registry is not this deployment's task of the same name.
    const registry = /\/registries\/([^/]+)\/tasks\//i.exec(request.taskId)?.[1];
    if (registry !== undefined && registry.toLowerCase() !== this.config.arm.registryName.toLowerCase())
      throw new NotFoundError(
        `taskId '${request.taskId}' names registry '${registry}'; this Refit is registry '${this.config.arm.registryName}' (REFIT_ARM_REGISTRY_NAME)`,
        'taskId',
      );
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
        values: o?.values,
      },
      request.isArchiveEnabled,
    );
    if (o?.updateTriggerToken) await this.keepUpdateTriggerToken(stored.task.name, o.updateTriggerToken);
    return run;
  }

  /** Keeps the token a manual run was given for later base-image update notifications (sealed with the secrets). */
  private async keepUpdateTriggerToken(name: string, token: string): Promise<void> {
    return retryOnConflict(`task '${name}'`, async () => {
      const stored = await this.store.find(name);
      if (!stored) return;
      const secrets = { ...this.openSecrets(stored.sealedSecrets), updateTriggerToken: token };
      await this.store.put(
        stored.task,
        this.sealSecrets(secrets),
        { location: stored.location, tags: stored.tags },
        stored.etag,
      );
      return;
    });
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
    const step = task.step;
    const secrets = this.openSecrets(stored.sealedSecrets);
    const runId = await this.runs.nextRunId();
    const now = new Date();
    // Build arguments (Docker) or values (task files), overridden by name; secret ones sealed with the run.
    const named = new Map<string, { name: string; value?: string; isSecret: boolean }>(
      (step.type === 'Docker' ? step.arguments : step.values).map((a) => [a.name, a]),
    );
    const secretValues: Record<string, string> = { ...secrets.arguments };
    for (const a of [...(overrides.arguments ?? []), ...(overrides.values ?? [])]) {
      named.set(a.name, a.isSecret ? { name: a.name, isSecret: true } : a);
      if (a.isSecret) secretValues[a.name] = a.value;
      else delete secretValues[a.name];
    }
    const plain = [...named.values()].map((a) =>
      a.isSecret ? { name: a.name, isSecret: true } : { name: a.name, isSecret: false, value: a.value ?? '' },
    );
    // A password in the location (an override's, or a task's stored before they were sealed) is sealed with the run.
    const location = withoutUrlPassword(overrides.contextPath ?? step.contextPath ?? '/dev/null');
    let sourceLocation: string | undefined = location.location;
    if (sourceLocation === '/dev/null') sourceLocation = undefined;
    let commit: string | undefined;
    let gitToken = location.password ?? secrets.contextAccessToken;
    if (cause.kind === 'source' && sourceLocation) {
      gitToken ??= secrets.sourceTokens[cause.triggerName];
      commit = cause.descriptor.commitId;
      sourceLocation = sourceLocation.includes('#')
        ? sourceLocation
        : `${sourceLocation}#${cause.descriptor.branchName}`;
      if (cause.descriptor.eventType === 'pullrequest')
        sourceLocation = `${cause.cloneUrl}#${cause.descriptor.branchName}${folderOf(step.contextPath ?? '')}`;
    }
    gitToken ??= Object.values(secrets.sourceTokens)[0];
    // A fork's pull request runs someone else's Dockerfile or acb.yaml: it gets none of the task's secrets.
    const untrusted = cause.kind === 'source' && cause.untrusted === true;
    if (untrusted) {
      gitToken = undefined;
      for (const name of Object.keys(secretValues)) secretValues[name] = '';
    }
    // The task's registry logins go with the run, sealed; a fork's pull request gets none.
    // Key Vault references are resolved now, in Refit's process: the run is given values, never the identity.
    const logins = untrusted ? {} : await taskLogins(task.credentials, secrets, this.keyVault);
    const registries = Object.keys(logins).length ? { registries: logins } : {};
    const runSecrets: RunSecrets =
      step.type === 'Docker'
        ? { arguments: secretValues, ...(gitToken ? { gitToken } : {}), ...registries }
        : { arguments: {}, values: secretValues, ...(gitToken ? { gitToken } : {}), ...registries };
    let spec: Run['spec'];
    if (step.type === 'Docker') {
      if (!sourceLocation) throw new ValidationError('a Docker step needs a context', 'contextPath');
      spec = {
        kind: 'DockerBuild',
        sourceLocation,
        dockerFilePath: overrides.file ?? step.dockerFilePath,
        imageNames: resolveImageNames(step.imageNames, runId, this.config.homeRegistry, now),
        isPushEnabled: step.isPushEnabled && step.imageNames.length > 0,
        noCache: step.noCache,
        target: overrides.target ?? step.target,
        arguments: plain,
        ...(commit ? { commit } : {}),
      };
    } else {
      const taskFilePath = overrides.file ?? step.taskFilePath;
      spec = {
        kind: 'TaskFile',
        sourceLocation,
        ...(step.type === 'FileTask' || overrides.file
          ? { taskFilePath: taskFilePath ?? 'acb.yaml' }
          : { encodedTaskContent: step.encodedTaskContent ?? '' }),
        ...(step.valuesFilePath ? { valuesFilePath: step.valuesFilePath } : {}),
        ...(step.encodedValuesContent ? { encodedValuesContent: step.encodedValuesContent } : {}),
        values: plain,
        ...(commit ? { commit } : {}),
      };
    }
    const time = now.toISOString();
    const run: Run = {
      runId,
      status: 'Queued',
      runType: step.type === 'Docker' ? 'AutoBuild' : 'AutoRun',
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
      spec,
      sealedSecrets: sealRunSecrets(this.config.secretKey, runSecrets),
      ...(cause.kind === 'source' ? { sourceTrigger: cause.descriptor } : {}),
      ...(cause.kind === 'timer' ? { timerTrigger: cause.descriptor } : {}),
      ...(cause.kind === 'image' ? { imageUpdateTrigger: cause.descriptor } : {}),
      ...(untrusted ? { untrustedSource: true as const } : {}),
    };
    return this.runs.enqueue(run);
  }
}

function folderOf(contextPath: string): string {
  const fragment = contextPath.split('#')[1];
  const colon = fragment?.indexOf(':') ?? -1;
  return fragment && colon >= 0 ? fragment.slice(colon) : '';
}
