import { config as loadedConfig, type Config } from './config';
import type { Executor } from './executors/executor';
import { createExecutor } from './executors/create-executor';
import type { AzureAccess } from './executors/aci/aci-client';
import { DEFAULT_RUN_LOG_OPTIONS, RunLogs, type RunLogOptions } from './runs/run-log';
import { RunService } from './runs/run-service';
import { RunStore } from './runs/run-store';
import { connectStorage, ensureStorage, names, type Storage } from './storage/storage';
import type { StorageFaults } from './storage/storage-faults';
import { Claims, type ClaimsOptions } from './storage/claims';
import { TaskService } from './tasks/task-service';
import { TaskStore } from './tasks/task-store';
import { DependencyIndex } from './dependencies/dependency-index';
import { azureHomeRegistryCredentials } from './registry/acr-token-exchange';
import { RegistryClient } from './registry/client';
import { RegistryNames } from './registry/registry-names';
import { DecisionLog } from './triggers/decisions';
import { ImageUpdateLog, type ImageUpdateDeps } from './triggers/image-update';
import { Dedupe } from './triggers/dedupe';
import { UpdateNotifier } from './triggers/update-notification';
import { GuardedFetch } from './net/guarded-fetch';
import type { SourceAccess } from './sources/fetch-source';
import type { ImagePush } from './triggers/image-update';
import { RegistryBudgets } from './watches/registry-budget';
import { WatchStore } from './watches/watch-store';
import { Watcher } from './watches/watcher';
import { log } from './log';
import { KeyVaultSecrets, type KeyVaultOptions } from './secrets/key-vault';

/** Everything a handler needs, wired once per process. */
export interface Refit {
  readonly config: Config;
  readonly storage: Storage;
  readonly runs: RunService;
  readonly tasks: TaskService;
  readonly dedupe: Dedupe;
  readonly decisions: DecisionLog;
  readonly dependencyIndex: DependencyIndex;
  readonly imageUpdates: ImageUpdateLog;
  readonly registry: RegistryClient;
  /** Where sources come from (storage, the guarded HTTP client, the limits). */
  readonly sources: SourceAccess;
  readonly notifier: UpdateNotifier;
  readonly logs: RunLogs;
  readonly executor: Executor;
  /** The references watched on registries that send no events, and the watcher that checks them. */
  readonly watches: WatchStore;
  readonly budgets: RegistryBudgets;
  readonly watcher: Watcher;
  /**
   * Resolves Key Vault references with the deployment's managed identity (REFIT_IDENTITY_CLIENT_ID); undefined
   * without the setting, when they are refused.
   */
  readonly keyVault: KeyVaultSecrets | undefined;
  /** Queues pushes for the base-image update decision (registry events and the watcher alike); returns how many. */
  queueImagePushes(pushes: readonly ImagePush[]): Promise<number>;
  /** Called after a run is queued (the local host polls the queue at once instead of waiting). */
  onEnqueued: () => void;
}

/**
 * What tests can wire in: faults injected into the real storage clients, the claims' lease and clock, and shorter
 * run-log retries.
 */
export interface RefitOptions {
  readonly faults?: StorageFaults;
  readonly claims?: ClaimsOptions;
  readonly runLog?: Partial<RunLogOptions>;
  /** Key Vault's transport and the identities' credentials (a test's fake Key Vault); used with the setting only. */
  readonly keyVault?: Pick<KeyVaultOptions, 'httpClient' | 'credential' | 'maxRetries' | 'cacheMs'>;
  /** How the aci executor reaches Azure's control plane (tests: a fake of the documented surface). */
  readonly azure?: AzureAccess;
}

/** Wires the core for a configuration. */
export function createRefit(config: Config, options: RefitOptions = {}): Refit {
  const storage = connectStorage(config, options.faults);
  // One guarded client (one connection pool) for every request the core makes to a URL it was given: registries,
  // notification endpoints, and the sources that task creation and the executor fetch.
  const outbound = new GuardedFetch(config.network);
  const sources: SourceAccess = { storage, http: outbound, limits: config.limits };
  const logs = new RunLogs(storage.container(names.containers.logs), {
    ...DEFAULT_RUN_LOG_OPTIONS,
    maxBytes: config.maxLogBytes,
    ...options.runLog,
  });
  const store = new RunStore(storage, config.runIdPrefix);
  let executor: Executor | undefined;
  const runs = new RunService(
    config,
    store,
    logs,
    storage.queue(names.queues.runs),
    () => refit.executor,
    new Claims(storage.table(names.tables.queuedRuns), options.claims),
    storage.queue(names.queues.runDependencies),
    () => refit.onEnqueued(),
  );
  const registryNames = new RegistryNames(config.homeRegistry, config.homeRegistryAliases);
  const dependencyIndex = new DependencyIndex(storage, (registry) => registryNames.canonical(registry));
  const keyVault = config.identityClientId
    ? new KeyVaultSecrets({ clientId: config.identityClientId, ...options.keyVault })
    : undefined;
  const tasks = new TaskService(
    config,
    new TaskStore(storage),
    runs,
    dependencyIndex,
    storage,
    sources,
    keyVault,
  );
  const eventRegistries = new Set(config.polling.eventRegistries);
  const watches = new WatchStore(
    storage,
    (registry) => !eventRegistries.has(registry),
    (image) => dependencyIndex.dependents(image),
  );
  // The watches follow the index at once; a failure here is caught up by the watcher's reconcile.
  dependencyIndex.onChange = (change) =>
    watches.follow(change).catch((err: unknown) => {
      log.warn('watches could not follow the dependency index', { error: (err as Error).message });
    });
  const budgets = new RegistryBudgets(storage);
  // In Azure, Refit reads (and deletes from) its ACR home registry as its own identity; locally it stays anonymous.
  const homeLogin = azureHomeRegistryCredentials(config, outbound, options.azure?.credential);
  const registry = new RegistryClient(
    config.insecureRegistries,
    outbound,
    config.limits.registryResponseBytes,
    homeLogin ? { defaultCredentials: homeLogin } : {},
  );
  const refit: Refit = {
    config,
    storage,
    logs,
    onEnqueued: () => undefined,
    get executor(): Executor {
      executor ??= createExecutor(config, {
        storage,
        logs,
        callbacks: {
          running: (runId) => refit.runs.running(runId),
          finished: async (runId, outcome) => {
            await refit.runs.finish(runId, outcome);
          },
          requeue: (runId) => refit.runs.requeue(runId),
        },
        registry: refit.registry,
        sources,
        ...(options.azure ? { azure: options.azure } : {}),
        keyVault,
      });
      return executor;
    },
    runs,
    tasks,
    notifier: new UpdateNotifier(
      storage.queue(names.queues.updateNotifications),
      (task) => tasks.updateTriggerToken(task),
      outbound,
    ),
    dedupe: new Dedupe(storage, options.claims),
    decisions: new DecisionLog(storage),
    dependencyIndex,
    imageUpdates: new ImageUpdateLog(storage),
    registry,
    sources,
    watches,
    budgets,
    keyVault,
    watcher: new Watcher({
      watches,
      budgets,
      index: dependencyIndex,
      registry,
      claims: new Claims(storage.table(names.tables.dedupe), options.claims),
      settings: config.polling,
      queuePush: async (push) => void (await refit.queueImagePushes([push])),
      credentialsFor: (registry, dependents) => tasks.loginFor(registry, dependents),
      enabledTasks: async () => {
        const enabled = new Set<string>();
        for await (const { task } of tasks.store.all()) {
          const trigger = task.trigger.baseImageTrigger;
          if (task.status !== 'Disabled' && trigger && trigger.status !== 'Disabled')
            enabled.add(task.name.toLowerCase());
        }
        return (task) => enabled.has(task.toLowerCase());
      },
    }),
    async queueImagePushes(pushes) {
      const receivedAt = new Date().toISOString();
      const queue = storage.queue(names.queues.imagePushes);
      for (const push of pushes) await queue.sendMessage(JSON.stringify({ ...push, receivedAt }));
      if (pushes.length) refit.onEnqueued();
      return pushes.length;
    },
  };
  runs.afterSuccess = (run) => refit.tasks.recordDependencies(run);
  return refit;
}

let instance: Promise<Refit> | undefined;

/** The process's Refit, created (and its storage ensured) on first use. */
export function refit(): Promise<Refit> {
  instance ??= (async () => {
    const r = createRefit(loadedConfig());
    await ensureStorage(r.storage);
    return r;
  })();
  return instance;
}

/** Installs an already wired Refit as the process's instance (the local host, which wires it itself). */
export function setRefit(r: Refit): void {
  instance = Promise.resolve(r);
}

/** What the base-image update decision needs, from a wired Refit. */
export function imageUpdateDeps(r: Refit): ImageUpdateDeps {
  return {
    index: r.dependencyIndex,
    tasks: r.tasks,
    runs: r.runs,
    dedupe: r.dedupe,
    registry: r.registry,
    updates: r.imageUpdates,
    homeRegistry: r.config.homeRegistry,
    notify: (n) => r.notifier.enqueue(n),
  };
}
