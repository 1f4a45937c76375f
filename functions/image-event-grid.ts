import type { InvocationContext } from '@azure/functions';
import { log } from '../src/log';
import { refit } from '../src/refit';
import { imagePushOfGridEvent, type GridEvent } from '../src/triggers/registry-events';
import { queueImagePushes } from './registry-hook';

/**
 * The Event Grid trigger for ACR: `Microsoft.ContainerRegistry.ImagePushed` goes to the base-image update decision;
 * every other event type is acknowledged and ignored. Idempotent: the decision dedupes on the event id.
 */
export async function imageEventGrid(event: unknown, context: InvocationContext): Promise<void> {
  const push = imagePushOfGridEvent(event);
  if (!push) {
    log.debug('event grid event ignored', {
      type: (event as GridEvent)?.eventType ?? (event as GridEvent)?.type,
      function: context.functionName,
    });
    return;
  }
  await queueImagePushes(await refit(), [push]);
}
