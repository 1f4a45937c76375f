import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import {
  QueueClient,
  newPipeline as newQueuePipeline,
  StorageSharedKeyCredential as QueueKey,
} from '@azure/storage-queue';
import {
  BlobServiceClient,
  ContainerClient,
  newPipeline as newBlobPipeline,
  StorageSharedKeyCredential as BlobKey,
} from '@azure/storage-blob';
import { DefaultAzureCredential } from '@azure/identity';
import type { Config } from '../config';
import type { StorageFaults } from './storage-faults';

/** Names of every table, queue and blob container Refit uses. */
export const names = {
  tables: {
    runs: 'runs',
    counters: 'counters',
    tasks: 'tasks',
    dedupe: 'dedupe',
    triggerDecisions: 'triggerDecisions',
    dependencies: 'dependencies',
    imageUpdates: 'imageUpdates',
    queuedRuns: 'queuedRuns',
    watches: 'watches',
    watchedRegistries: 'watchedRegistries',
    aciAdmission: 'aciAdmission',
  },
  queues: {
    runs: 'runs',
    runsPoison: 'runs-poison',
    imagePushes: 'image-pushes',
    imagePushesPoison: 'image-pushes-poison',
    updateNotifications: 'update-notifications',
    updateNotificationsPoison: 'update-notifications-poison',
    runDependencies: 'run-dependencies',
    runDependenciesPoison: 'run-dependencies-poison',
    runCompletions: 'run-completions',
    runCompletionsPoison: 'run-completions-poison',
  },
  containers: { sources: 'sources', logs: 'logs', runGraphs: 'run-graphs' },
} as const;

/** The storage clients of one deployment, created once and shared. */
export interface Storage {
  table(name: string): TableClient;
  queue(name: string): QueueClient;
  container(name: string): ContainerClient;
  readonly blobService: BlobServiceClient;
  /** True when the account key is known (Azurite, connection strings): SAS can be signed with it. */
  readonly hasAccountKey: boolean;
}

function connectionValue(conn: string, key: string): string | undefined {
  const part = conn.split(';').find((p) => p.toLowerCase().startsWith(`${key.toLowerCase()}=`));
  return part?.slice(key.length + 1);
}

/**
 * Connects to the configured storage account (clients only; see {@link ensureStorage} for the resources). With
 * `faults` (tests), every client sends through them and the SDKs do not retry, so that a fault is what Refit sees.
 */
export function connectStorage(config: Config, faults?: StorageFaults): Storage {
  const tableOptions: TableServiceClientOptions = {
    allowInsecureConnection: true,
    ...(faults
      ? {
          retryOptions: { maxRetries: 0 },
          additionalPolicies: [{ policy: faults.policy(), position: 'perCall' }],
        }
      : {}),
  };
  if ('connectionString' in config.storage) {
    const conn = config.storage.connectionString;
    if (faults) return faultyStorage(conn, tableOptions, faults);
    const blobService = BlobServiceClient.fromConnectionString(conn);
    return {
      table: (name) => TableClient.fromConnectionString(conn, name, tableOptions),
      queue: (name) => new QueueClient(conn, name),
      container: (name) => blobService.getContainerClient(name),
      blobService,
      hasAccountKey:
        conn === 'UseDevelopmentStorage=true' || connectionValue(conn, 'AccountKey') !== undefined,
    };
  }
  const account = config.storage.accountName;
  const credential = new DefaultAzureCredential();
  const blobService = new BlobServiceClient(`https://${account}.blob.core.windows.net`, credential);
  return {
    table: (name) => new TableClient(`https://${account}.table.core.windows.net`, name, credential),
    queue: (name) => new QueueClient(`https://${account}.queue.core.windows.net/${name}`, credential),
    container: (name) => blobService.getContainerClient(name),
    blobService,
    hasAccountKey: false,
  };
}

/** Storage whose blob and queue pipelines carry the faults (these SDKs take policies only through a pipeline). */
function faultyStorage(
  conn: string,
  tableOptions: TableServiceClientOptions,
  faults: StorageFaults,
): Storage {
  const part = (key: string): string => {
    const value = connectionValue(conn, key);
    if (!value) throw new Error(`storage faults need a connection string with ${key}`);
    return value;
  };
  const account = part('AccountName');
  const key = part('AccountKey');
  const blobPipeline = newBlobPipeline(new BlobKey(account, key), { retryOptions: { maxTries: 1 } });
  blobPipeline.factories.push(faults.policyFactory());
  const queuePipeline = newQueuePipeline(new QueueKey(account, key), { retryOptions: { maxTries: 1 } });
  queuePipeline.factories.push(faults.policyFactory());
  const blobService = new BlobServiceClient(part('BlobEndpoint'), blobPipeline);
  return {
    table: (name) => TableClient.fromConnectionString(conn, name, tableOptions),
    queue: (name) => new QueueClient(`${part('QueueEndpoint')}/${name}`, queuePipeline),
    container: (name) => blobService.getContainerClient(name),
    blobService,
    hasAccountKey: true,
  };
}

function isAlreadyExists(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 409;
}

/** Creates every table, queue and container that is missing; safe to call on every start. */
export async function ensureStorage(storage: Storage): Promise<void> {
  await Promise.all([
    ...Object.values(names.tables).map((t) =>
      storage
        .table(t)
        .createTable()
        .catch((err: unknown) => {
          if (!isAlreadyExists(err)) throw err;
        }),
    ),
    ...Object.values(names.queues).map((q) => storage.queue(q).createIfNotExists()),
    ...Object.values(names.containers).map((c) => storage.container(c).createIfNotExists()),
  ]);
}
