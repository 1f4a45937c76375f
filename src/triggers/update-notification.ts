import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import { log } from '../log';
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

/**
 * Queues notifications and delivers them from the queue: a failed delivery (network error or non-2xx) throws, so
 * the queue retries it and finally moves it to the poison queue. Each delivery carries the run ID in
 * `X-Refit-Delivery`, so a receiver can drop the repeat of a delivery whose acknowledgement was lost.
 */
export class UpdateNotifier {
  constructor(
    private readonly queue: QueueClient,
    private readonly tokenOf: (taskName: string) => Promise<string | undefined>,
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
    const res = await fetch(n.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-refit-delivery': n.runId },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`update trigger endpoint answered ${res.status}`);
    log.info('update trigger notified', { task: n.taskName, runId: n.runId, status: res.status });
  }
}
