import { z } from 'zod';
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
export const taskRunRequestSchema = z
  .object({
    type: z.literal('TaskRunRequest'),
    taskId: z.string().min(1, 'taskId is required'),
    isArchiveEnabled: z.boolean().default(false),
    agentPoolName: z.string().optional(),
    logTemplate: z.string().optional(),
    overrideTaskStepProperties: z
      .object({
        contextPath: contextPathSchema.optional(),
        file: z.string().min(1).optional(),
        target: z.string().min(1).optional(),
        arguments: z
          .array(
            z
              .object({
                name: z.string().regex(/^[^=\s]+$/, 'an argument name must be non-empty without = or spaces'),
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
  .strict();
