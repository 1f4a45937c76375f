import { z } from 'zod';
import { acrRequest, AGENT_POOL_UNSUPPORTED, LOG_TEMPLATE_UNSUPPORTED, unsupported } from '../http/acr-body';
import { contextPathSchema } from './task-schema';

/** What a TaskRunRequest may override (ACR's overrideTaskStepProperties). */
export interface StepOverrides {
  readonly contextPath?: string | undefined;
  readonly file?: string | undefined;
  readonly target?: string | undefined;
  readonly arguments?: readonly { name: string; value: string; isSecret: boolean }[] | undefined;
  /** Values of a FileTask or EncodedTask step (`refit task run --set`). */
  readonly values?: readonly { name: string; value: string; isSecret: boolean }[] | undefined;
}

/** Registries_ScheduleRun's TaskRunRequest: a run of a stored task, with overrides. */
export const taskRunRequestSchema = acrRequest(
  z
    .object({
      type: z.literal('TaskRunRequest'),
      taskId: z.string().min(1, 'taskId is required'),
      isArchiveEnabled: z.boolean().default(false),
      agentPoolName: unsupported(AGENT_POOL_UNSUPPORTED),
      logTemplate: unsupported(LOG_TEMPLATE_UNSUPPORTED),
      // A paging token some of ACR's examples send empty: it selects nothing in a run request.
      continuationToken: z
        .literal('', { error: 'continuationToken must be empty: a run request has no pages' })
        .optional(),
      overrideTaskStepProperties: z
        .object({
          contextPath: contextPathSchema.optional(),
          file: z.string().min(1).optional(),
          target: z.string().min(1).optional(),
          arguments: z
            .array(
              z
                .object({
                  name: z
                    .string()
                    .regex(/^[^=\s]+$/, 'an argument name must be non-empty without = or spaces'),
                  value: z.string(),
                  isSecret: z.boolean().default(false),
                })
                .strict(),
            )
            .optional(),
          values: z
            .array(
              z
                .object({ name: z.string().min(1), value: z.string(), isSecret: z.boolean().default(false) })
                .strict(),
            )
            .optional(),
          updateTriggerToken: z.string().optional(),
        })
        .strict()
        .optional(),
    })
    .strict(),
);
