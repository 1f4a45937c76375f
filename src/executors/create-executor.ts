import type { Config } from '../config';
import type { RegistryClient } from '../registry/client';
import type { RunLogs } from '../runs/run-log';
import type { SourceAccess } from '../sources/fetch-source';
import type { Storage } from '../storage/storage';
import type { Executor, RunCallbacks } from './executor';
import { LocalExecutor } from './local/local-executor';

/** What every executor is given: where runs, logs and sources live, the completion path, the registry client. */
export interface ExecutorDeps {
  readonly storage: Storage;
  readonly logs: RunLogs;
  readonly callbacks: RunCallbacks;
  readonly registry: RegistryClient;
  readonly sources: SourceAccess;
}

/** The executor the configuration names (REFIT_EXECUTOR): the one place where it is chosen. */
export function createExecutor(config: Config, deps: ExecutorDeps): Executor {
  switch (config.executor) {
    case 'local':
      return new LocalExecutor(config, deps.storage, deps.logs, deps.callbacks, deps.registry, deps.sources);
  }
}
