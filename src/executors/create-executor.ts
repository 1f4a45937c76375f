import type { Config } from '../config';
import type { RegistryClient } from '../registry/client';
import type { RunLogs } from '../runs/run-log';
import type { SecretResolver } from '../secrets/key-vault';
import type { SourceAccess } from '../sources/fetch-source';
import { names, type Storage } from '../storage/storage';
import { AciExecutor } from './aci/aci-executor';
import { Admission } from './aci/admission';
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
  /** Reads a task file's `secrets:` from Key Vault (REFIT_IDENTITY_CLIENT_ID); without it, each is a run's value. */
  readonly keyVault?: SecretResolver | undefined;
}

/** The executor the configuration names (REFIT_EXECUTOR): the one place where it is chosen. */
export function createExecutor(config: Config, deps: ExecutorDeps): Executor {
  switch (config.executor) {
    case 'local':
      return new LocalExecutor(
        config,
        deps.storage,
        deps.logs,
        deps.callbacks,
        deps.registry,
        deps.sources,
        deps.keyVault,
      );
    case 'aci':
      return new AciExecutor(config, {
        client: aciClient(config, deps.azure),
        storage: deps.storage,
        logs: deps.logs,
        callbacks: deps.callbacks,
        registry: deps.registry,
        sources: deps.sources,
        keyVault: deps.keyVault,
        // ACI's quotas are per region: deployments sharing a storage account and a region share the budget.
        admission: new Admission(deps.storage.table(names.tables.aciAdmission), {
          ...config.aciAdmission,
          scope: config.aci!.location,
        }),
      });
  }
}
