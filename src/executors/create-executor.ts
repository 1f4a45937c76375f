import type { Config } from '../config';
import type { RegistryClient } from '../registry/client';
import type { RunLogs } from '../runs/run-log';
import type { SourceAccess } from '../sources/fetch-source';
import type { Storage } from '../storage/storage';
import { AciExecutor, type AdmissionControl } from './aci/aci-executor';
import { aciClient, type AzureAccess } from './aci/aci-client';
import type { Executor, RunCallbacks } from './executor';
import { LocalExecutor } from './local/local-executor';

/** What every executor is given: where runs, logs and sources live, the completion path, the registry client. */
export interface ExecutorDeps {
  readonly storage: Storage;
  readonly logs: RunLogs;
  readonly callbacks: RunCallbacks;
  readonly registry: RegistryClient;
  readonly sources: SourceAccess;
  /** How the aci executor reaches Azure (tests give a fake HTTP client). */
  readonly azure?: AzureAccess;
  /** The aci executor's admission control (its slots and create budget in a table). */
  readonly admission?: AdmissionControl;
}

/** The executor the configuration names (REFIT_EXECUTOR): the one place where it is chosen. */
export function createExecutor(config: Config, deps: ExecutorDeps): Executor {
  switch (config.executor) {
    case 'local':
      return new LocalExecutor(config, deps.storage, deps.logs, deps.callbacks, deps.registry, deps.sources);
    case 'aci':
      return new AciExecutor(config, {
        client: aciClient(config, deps.azure),
        storage: deps.storage,
        logs: deps.logs,
        callbacks: deps.callbacks,
        registry: deps.registry,
        admission: deps.admission!,
      });
  }
}
