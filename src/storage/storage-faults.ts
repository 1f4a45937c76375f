import { RestError, type PipelinePolicy } from '@azure/core-rest-pipeline';
import type { RequestPolicyFactory, WebResource } from '@azure/storage-blob';

/** Which storage requests a fault applies to. */
export interface FaultMatch {
  /** The HTTP method (GET, POST, PUT, MERGE, DELETE, …). */
  readonly method?: string;
  /** Matched against the request's path and query (e.g. `/devstoreaccount1/runs`, or a queue's `/messages`). */
  readonly path?: RegExp;
}

/** What a matched request does instead of reaching storage: it fails as if the connection dropped. */
export interface Fault extends FaultMatch {
  /** How many matching requests fail (then the fault is spent); by default every one until {@link StorageFaults.clear}. */
  readonly times?: number;
}

interface ActiveFault {
  readonly fault: Fault;
  remaining: number;
}

/**
 * Faults injected into the real storage clients (tables, queues, blobs) on their way to the real Azurite: what a
 * storage outage, or a host dying between two writes, looks like to Refit. Tests wire it in with
 * `createRefit(config, { faults })`; production never has one.
 */
export class StorageFaults {
  private readonly active: ActiveFault[] = [];
  /** How many requests a fault stopped. */
  injected = 0;

  /** Makes matching requests fail. */
  inject(fault: Fault): void {
    this.active.push({ fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
  }

  /** Removes every fault and resets the count. */
  clear(): void {
    this.active.length = 0;
    this.injected = 0;
  }

  /** The faults as a pipeline policy (the tables SDK). */
  policy(): PipelinePolicy {
    return {
      name: 'refitStorageFaults',
      sendRequest: (request, next) => {
        const error = this.take(request.method, request.url);
        return error ? Promise.reject(error) : next(request);
      },
    };
  }

  /** The faults as a request-policy factory (the blob and queue SDKs' pipelines). */
  policyFactory(): RequestPolicyFactory {
    return {
      create: (next) => ({
        sendRequest: (request: WebResource) => {
          const error = this.take(request.method, request.url);
          return error ? Promise.reject(error) : next.sendRequest(request);
        },
      }),
    };
  }

  private take(method: string, url: string): RestError | undefined {
    const { pathname, search } = new URL(url);
    const found = this.active.find(
      ({ fault, remaining }) =>
        remaining > 0 &&
        (!fault.method || fault.method === method) &&
        (!fault.path || fault.path.test(pathname + search)),
    );
    if (!found) return undefined;
    found.remaining--;
    this.injected++;
    return new RestError(`injected storage fault: ${method} ${pathname}`, {
      code: RestError.REQUEST_SEND_ERROR,
    });
  }
}
