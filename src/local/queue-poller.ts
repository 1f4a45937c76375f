import type { QueueFunction } from '../../functions/definitions';
import { log } from '../log';
import { invocationContext, type HostContext } from './host-context';

/** A running queue poller. */
export interface QueuePoller {
  readonly stop: () => void;
  /** Polls at once instead of waiting for the back-off. */
  readonly wake: () => void;
}

/**
 * Polls a queue function's queue as the Functions host does: a failed message is retried after a delay and, past
 * maxDequeueCount tries, moved to `<queue>-poison`; an empty queue is polled less and less often (up to 2 s).
 */
export function pollQueue(fn: QueueFunction, ctx: HostContext): QueuePoller {
  const { options } = ctx;
  const queue = options.queue(fn.queueName);
  const poison = options.queue(`${fn.queueName}-poison`);
  const maxDequeue = options.maxDequeueCount ?? 5;
  const retryAfter = options.retryVisibilitySeconds ?? 10;
  let stopped = false;
  let delay = 50;
  let timer: NodeJS.Timeout | undefined;
  let polling = false;

  const handle = async (message: {
    messageId: string;
    popReceipt: string;
    messageText: string;
    dequeueCount: number;
    insertedOn: Date;
    expiresOn: Date;
    nextVisibleOn: Date;
  }): Promise<void> => {
    if (message.dequeueCount > maxDequeue) {
      log.warn('queue message moved to the poison queue', {
        queue: fn.queueName,
        messageId: message.messageId,
        dequeueCount: message.dequeueCount,
      });
      await poison.sendMessage(message.messageText);
      await queue.deleteMessage(message.messageId, message.popReceipt);
      return;
    }
    let payload: unknown = message.messageText;
    try {
      payload = JSON.parse(message.messageText);
    } catch {
      // not JSON: the handler gets the text, as the Functions host does
    }
    const context = invocationContext(fn.name, {
      id: message.messageId,
      dequeueCount: message.dequeueCount,
      insertionTime: message.insertedOn.toISOString(),
      expirationTime: message.expiresOn.toISOString(),
      nextVisibleTime: message.nextVisibleOn.toISOString(),
      popReceipt: message.popReceipt,
    });
    try {
      await fn.handler(payload, context);
      await queue.deleteMessage(message.messageId, message.popReceipt);
    } catch (err) {
      log.warn('queue handler failed; the message will be retried', {
        queue: fn.queueName,
        messageId: message.messageId,
        error: (err as Error).message,
      });
      await queue
        .updateMessage(message.messageId, message.popReceipt, undefined, retryAfter)
        .catch(() => undefined);
    }
  };

  const poll = async (): Promise<void> => {
    if (stopped || polling) return;
    polling = true;
    timer = undefined;
    try {
      const { receivedMessageItems } = await queue.receiveMessages({
        numberOfMessages: 16,
        visibilityTimeout: 60,
      });
      if (receivedMessageItems.length > 0) {
        delay = 50;
        await Promise.all(receivedMessageItems.map((m) => ctx.track(handle(m))));
      } else {
        delay = Math.min(delay * 2, 2000);
      }
    } catch (err) {
      delay = 2000;
      if (!stopped) log.warn('queue poll failed', { queue: fn.queueName, error: (err as Error).message });
    } finally {
      polling = false;
    }
    if (!stopped) timer = setTimeout(() => void poll(), delay);
  };
  void poll();
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    wake: () => {
      delay = 50;
      if (timer && !polling) {
        clearTimeout(timer);
        void poll();
      }
    },
  };
}
