import pRetry, { AbortError } from 'p-retry';
import { ConflictError } from '../errors';

/** The HTTP status of a storage SDK error, if the service answered. */
export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode;
}

/** True when a write lost a race: the entity was created (409) or changed (412) meanwhile. */
export function isWriteConflict(err: unknown): boolean {
  const status = statusOf(err);
  return status === 409 || status === 412;
}

/** How often a read-change-write is tried before giving up, and its backoff (with jitter, so racers spread out). */
const CONFLICT_RETRY = { retries: 12, minTimeout: 5, maxTimeout: 500, factor: 2, randomize: true } as const;

/**
 * Runs an optimistic read-change-write until it wins: `attempt` reads, changes and writes under the ETag it read;
 * a write that lost the race (409/412) is tried again after a jittered backoff, a bounded number of times, then
 * reported as a {@link ConflictError} (a 409: the client may try again). Any other error ends it at once.
 */
export function retryOnConflict<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  return pRetry(async () => {
    try {
      return await attempt();
    } catch (err) {
      if (isWriteConflict(err)) throw err;
      throw new AbortError(err as Error);
    }
  }, CONFLICT_RETRY).catch((err: unknown) => {
    if (isWriteConflict(err))
      throw new ConflictError(`${what} kept changing while it was being written: try again`);
    throw err;
  });
}
