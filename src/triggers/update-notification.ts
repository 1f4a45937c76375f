import { isIP } from 'node:net';
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import { DestinationRefusedError, ValidationError } from '../errors';
import { log } from '../log';
import { bareHost, refusal, type NetworkPolicy } from '../net/address-policy';
import { systemResolve, type GuardedFetch, type ResolveAll } from '../net/guarded-fetch';
import type { ImageUpdateTriggerDescriptor } from '../runs/run';

/**
 * A base-image trigger's `updateTriggerEndpoint` notification: when an image update starts a run of the task, the
 * endpoint receives a POST. With payload type `Token` the body carries only the update trigger token (the one last
 * given with `refit task run --update-trigger-token`); with `Default` it also carries what triggered which run.
 */
export interface UpdateNotification {
  readonly endpoint: string;
  readonly payloadType: 'Default' | 'Token';
  readonly taskName: string;
  readonly runId: string;
  readonly registry: string;
  readonly imageUpdateTrigger: ImageUpdateTriggerDescriptor;
}

const messageSchema = z.object({
  endpoint: z.url(),
  payloadType: z.enum(['Default', 'Token']),
  taskName: z.string().min(1),
  runId: z.string().min(1),
  registry: z.string(),
  imageUpdateTrigger: z.object({
    id: z.string(),
    timestamp: z.string(),
    images: z.array(
      z.object({
        registry: z.string(),
        repository: z.string(),
        tag: z.string().optional(),
        digest: z.string().optional(),
      }),
    ),
  }),
});

/** The body POSTed to the endpoint. */
export function notificationBody(n: UpdateNotification, token: string | undefined): Record<string, unknown> {
  const updateTriggerToken = token ?? null;
  if (n.payloadType === 'Token') return { updateTriggerToken };
  return {
    updateTriggerToken,
    action: 'baseImageUpdated',
    registry: n.registry,
    taskName: n.taskName,
    runId: n.runId,
    imageUpdateTrigger: n.imageUpdateTrigger,
  };
}

const DELIVERY_TIMEOUT_MS = 10000;
// Only the endpoint's status is used: its body is discarded unread.
const ANSWER_LIMIT = { bytes: 0, setting: 'none: the answer is not read' };
const FIELD = 'properties.trigger.baseImageTrigger.updateTriggerEndpoint';

/**
 * Checks a task's updateTriggerEndpoint at create/update: an http(s) URL whose host resolves only to addresses the
 * policy allows (a 400 naming the field otherwise). A name that does not resolve yet is accepted: each delivery is
 * checked again, on the address it connects to.
 */
export async function checkUpdateTriggerEndpoint(
  endpoint: string | undefined,
  policy: NetworkPolicy,
  resolve: ResolveAll = systemResolve,
): Promise<void> {
  if (endpoint === undefined) return;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ValidationError('updateTriggerEndpoint must be an http(s) URL', FIELD);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ValidationError(`updateTriggerEndpoint must be an http(s) URL, not ${url.protocol}`, FIELD);
  const host = bareHost(url.hostname);
  let addresses: readonly { address: string }[];
  if (isIP(host)) addresses = [{ address: host }];
  else {
    try {
      addresses = await resolve(host);
    } catch {
      return;
    }
  }
  for (const { address } of addresses) {
    const why = refusal(address, policy, host);
    if (why)
      throw new DestinationRefusedError(
        `updateTriggerEndpoint is refused: ${address === host ? why : `${host} (${why})`}`,
        FIELD,
      );
  }
}

/**
 * Queues notifications and delivers them from the queue: a failed delivery (network error or non-2xx) throws, so
 * the queue retries it and finally moves it to the poison queue. Each delivery carries the run ID in
 * `X-Refit-Delivery`, so a receiver can drop the repeat of a delivery whose acknowledgement was lost.
 */
export class UpdateNotifier {
  constructor(
    private readonly queue: QueueClient,
    private readonly tokenOf: (taskName: string) => Promise<string | undefined>,
    private readonly http: GuardedFetch,
  ) {}

  async enqueue(n: UpdateNotification): Promise<void> {
    await this.queue.sendMessage(JSON.stringify(n));
  }

  async deliver(message: unknown): Promise<void> {
    const parsed = messageSchema.safeParse(typeof message === 'string' ? JSON.parse(message) : message);
    if (!parsed.success) {
      log.warn('dropping a malformed update notification', { error: parsed.error.issues[0]?.message });
      return;
    }
    const n = parsed.data as UpdateNotification;
    const body = notificationBody(n, await this.tokenOf(n.taskName));
    let status: number;
    try {
      const res = await this.http.fetch(n.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-refit-delivery': n.runId },
        body: JSON.stringify(body),
        timeoutMs: DELIVERY_TIMEOUT_MS,
        limit: ANSWER_LIMIT,
      });
      status = res.status;
      await res.discard();
    } catch (err) {
      // A refused destination stays refused: retrying would only fill the poison queue.
      if (!(err instanceof DestinationRefusedError)) throw err;
      log.warn('update trigger endpoint refused', { task: n.taskName, runId: n.runId, reason: err.message });
      return;
    }
    if (status < 200 || status > 299) throw new Error(`update trigger endpoint answered ${status}`);
    log.info('update trigger notified', { task: n.taskName, runId: n.runId, status });
  }
}
