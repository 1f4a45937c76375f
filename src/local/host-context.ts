import type { QueueClient } from '@azure/storage-queue';

/** What the local host needs to know. */
export interface LocalHostOptions {
  readonly host: string;
  readonly port: number;
  readonly apiKey: string | undefined;
  readonly maxBodyBytes: number;
  readonly queue: (name: string) => QueueClient;
  /** Tries before a queue message moves to `<queue>-poison` (host.json maxDequeueCount). */
  readonly maxDequeueCount?: number;
  /** How long a failed message stays invisible before it is tried again (host.json visibilityTimeout), in seconds. */
  readonly retryVisibilitySeconds?: number;
}

/** What the host's parts (HTTP server, Event Grid endpoint, queue poller, timers) share with it. */
export interface HostContext {
  readonly options: LocalHostOptions;
  /** Counts a handler as under way, so stopping the host waits for it. */
  track<T>(promise: Promise<T>): Promise<T>;
  /** Polls every queue at once (after a request that may have queued work). */
  wake(): void;
}
