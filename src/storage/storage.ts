import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { DefaultAzureCredential } from '@azure/identity';
import type { Config } from '../config';

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
  },
  queues: {
    runs: 'runs',
    runsPoison: 'runs-poison',
    imagePushes: 'image-pushes',
    imagePushesPoison: 'image-pushes-poison',
    updateNotifications: 'update-notifications',
    updateNotificationsPoison: 'update-notifications-poison',
  },
  containers: { sources: 'sources', logs: 'logs' },
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

/** Connects to the configured storage account (clients only; see {@link ensureStorage} for the resources). */
export function connectStorage(config: Config): Storage {
  const tableOptions: TableServiceClientOptions = { allowInsecureConnection: true };
  if ('connectionString' in config.storage) {
    const conn = config.storage.connectionString;
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
