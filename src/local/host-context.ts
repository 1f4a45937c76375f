import { randomUUID } from 'node:crypto';
import { InvocationContext } from '@azure/functions';
import type { QueueClient } from '@azure/storage-queue';

/** What the local host needs to know. */
export interface LocalHostOptions {
  readonly host: string;
  readonly port: number;
  /** Every route but the anonymous ones (health, signed webhooks) needs it. */
  readonly apiKey: string;
  /** The body limit of a function that declares none. */
  readonly maxBodyBytes: number;
  /** Browser origins allowed to call (REFIT_ALLOWED_ORIGINS): they get CORS answers, any other Origin a 403. */
  readonly allowedOrigins: readonly string[];
  /** A host name the host answers to besides loopback ones (REFIT_PUBLIC_HOST). */
  readonly publicHost: string | undefined;
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

/** A fresh invocation of a function, as the Functions host makes one per call (its log goes to Refit's own log). */
export function invocationContext(
  functionName: string,
  triggerMetadata?: Record<string, unknown>,
): InvocationContext {
  return new InvocationContext({
    functionName,
    invocationId: randomUUID(),
    logHandler: () => undefined,
    ...(triggerMetadata ? { triggerMetadata } : {}),
  });
}
