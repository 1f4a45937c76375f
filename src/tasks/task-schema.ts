import { Cron } from 'croner';
import { z } from 'zod';
import { shown } from '../http/validate';
import { platformSchema, timeoutSchema } from '../runs/schedule-run';
import { base64, relativePath } from '../runs/task-file-run';
import { remoteLocationProblem } from '../sources/source-path';
import { maskUrlCredentials } from '../sources/url-credentials';
import { credentialsSchema } from './credentials-schema';

const TASK_NAME = /^[A-Za-z0-9_-]{5,50}$/;
const TRIGGER_NAME = /^[A-Za-z0-9_-]{1,50}$/;

/** Checks a task name as ACR does: 5–50 of letters, digits, `_` and `-`. */
export function isTaskName(name: string): boolean {
  return TASK_NAME.test(name);
}

/**
 * Checks a cron schedule: five fields (minute resolution) or six with seconds first (NCRONTAB), UTC.
 * Returns a message when it is invalid.
 */
export function scheduleProblem(schedule: string): string | undefined {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `'${schedule}' has ${fields.length} field(s): use five (minute hour day month weekday) or six (second first)`;
  }
  try {
    new Cron(schedule, { timezone: 'UTC', paused: true });
    return undefined;
  } catch (err) {
    return `'${schedule}' is not a valid cron schedule: ${(err as Error).message}`;
  }
}

/**
 * A task's context (or a run's override of it). A remote must be one Refit fetches (https://, http://, git://):
 * ssh://, file://, `ext::` and `user@host:path` are refused here. Other text is kept as ACR keeps it (its own example
 * names a relative folder) and fails at run time.
 */
export const contextPathSchema = z
  .string()
  .min(1, 'contextPath must not be empty')
  .superRefine((location, ctx) => {
    const problem = remoteLocationProblem(location);
    if (problem) ctx.addIssue({ code: 'custom', message: `'${maskUrlCredentials(location)}' ${problem}` });
  });

const status = z.enum(['Enabled', 'Disabled'], {
  error: (i) => `'${shown(i.input)}' is not a status: use Enabled or Disabled`,
});

const platform = platformSchema;

const argument = z
  .object({
    name: z.string().regex(/^[^=\s]+$/, 'an argument name must be non-empty without = or spaces'),
    value: z.string().optional(),
    isSecret: z.boolean().default(false),
  })
  .strict();

const dockerStep = z
  .object({
    type: z.literal('Docker'),
    imageNames: z.array(z.string()).max(64).default([]),
    isPushEnabled: z.boolean().default(true),
    noCache: z.boolean().default(false),
    dockerFilePath: z.string().min(1, 'dockerFilePath must not be empty').default('Dockerfile'),
    target: z.string().min(1).optional(),
    arguments: z.array(argument).max(256).default([]),
    contextPath: contextPathSchema,
    contextAccessToken: z.string().optional(),
    baseImageDependencies: z.array(z.unknown()).optional(),
  })
  .strict();

const taskValue = z
  .object({
    name: z.string().min(1, 'a value needs a name'),
    value: z.string().optional(),
    isSecret: z.boolean().default(false),
  })
  .strict();

const fileTaskStep = z
  .object({
    type: z.literal('FileTask'),
    taskFilePath: relativePath('taskFilePath'),
    valuesFilePath: relativePath('valuesFilePath').optional(),
    values: z.array(taskValue).max(256).default([]),
    contextPath: contextPathSchema,
    contextAccessToken: z.string().optional(),
    baseImageDependencies: z.array(z.unknown()).optional(),
  })
  .strict();

const encodedTaskStep = z
  .object({
    type: z.literal('EncodedTask'),
    encodedTaskContent: base64('encodedTaskContent'),
    encodedValuesContent: base64('encodedValuesContent').optional(),
    values: z.array(taskValue).max(256).default([]),
    contextPath: contextPathSchema.optional(),
    contextAccessToken: z.string().optional(),
    baseImageDependencies: z.array(z.unknown()).optional(),
  })
  .strict();

/** A step of a Tasks_Update: any step property, merged into the task's step (a new type replaces it). */
const stepUpdate = z
  .object({
    type: z.enum(['Docker', 'FileTask', 'EncodedTask']).optional(),
    imageNames: z.array(z.string()).max(64).optional(),
    isPushEnabled: z.boolean().optional(),
    noCache: z.boolean().optional(),
    dockerFilePath: z.string().min(1, 'dockerFilePath must not be empty').optional(),
    target: z.string().min(1).optional(),
    arguments: z.array(argument).max(256).optional(),
    contextPath: contextPathSchema.optional(),
    contextAccessToken: z.string().optional(),
    taskFilePath: relativePath('taskFilePath').optional(),
    valuesFilePath: relativePath('valuesFilePath').optional(),
    encodedTaskContent: base64('encodedTaskContent').optional(),
    encodedValuesContent: base64('encodedValuesContent').optional(),
    values: z.array(taskValue).max(256).optional(),
    baseImageDependencies: z.array(z.unknown()).optional(),
  })
  .strict();

const sourceTrigger = z
  .object({
    name: z.string().regex(TRIGGER_NAME, 'a trigger name is 1–50 letters, digits, _ or -'),
    sourceRepository: z
      .object({
        sourceControlType: z.enum(['Github', 'VisualStudioTeamService'], {
          error: (i) =>
            `'${shown(i.input)}' is not a source control type: use Github or VisualStudioTeamService`,
        }),
        repositoryUrl: z.string().min(1),
        branch: z.string().min(1).default('master'),
        sourceControlAuthProperties: z
          .object({
            tokenType: z.enum(['PAT', 'OAuth']),
            token: z.string().optional(),
            refreshToken: z.string().optional(),
            scope: z.string().optional(),
            expiresIn: z.number().optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
    sourceTriggerEvents: z
      .array(
        z.enum(['commit', 'pullrequest'], {
          error: (i) => `'${shown(i.input)}' is not a source event: use commit or pullrequest`,
        }),
      )
      .min(1, 'name at least one event'),
    status: status.default('Enabled'),
  })
  .strict();

const timerTrigger = z
  .object({
    name: z.string().regex(TRIGGER_NAME, 'a trigger name is 1–50 letters, digits, _ or -'),
    schedule: z.string().superRefine((s, ctx) => {
      const problem = scheduleProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    status: status.default('Enabled'),
  })
  .strict();

const baseImageTrigger = z
  .object({
    name: z.string().regex(TRIGGER_NAME, 'a trigger name is 1–50 letters, digits, _ or -'),
    baseImageTriggerType: z
      .enum(['All', 'Runtime'], {
        error: (i) => `'${shown(i.input)}' is not a base image trigger type: use All or Runtime`,
      })
      .default('Runtime'),
    updateTriggerEndpoint: z.url({ error: 'updateTriggerEndpoint must be an http(s) URL' }).optional(),
    updateTriggerPayloadType: z.enum(['Default', 'Token']).optional(),
    status: status.default('Enabled'),
  })
  .strict();

const trigger = z
  .object({
    sourceTriggers: z.array(sourceTrigger).max(16).default([]),
    timerTriggers: z.array(timerTrigger).max(16).default([]),
    baseImageTrigger: baseImageTrigger.optional(),
  })
  .strict();

const taskProperties = {
  status: status.default('Enabled'),
  platform: platform.default({ os: 'Linux', architecture: 'amd64' }),
  agentConfiguration: z
    .object({ cpu: z.number().int().min(1).max(64) })
    .strict()
    .default({ cpu: 2 }),
  agentPoolName: z.string().optional(),
  logTemplate: z.string().optional(),
  isSystemTask: z.boolean().optional(),
  timeout: timeoutSchema,
  step: z.discriminatedUnion('type', [dockerStep, fileTaskStep, encodedTaskStep], {
    error: (i) => stepTypeProblem(i.input),
  }),
  trigger: trigger.default({ sourceTriggers: [], timerTriggers: [] }),
  credentials: credentialsSchema.optional(),
  provisioningState: z.string().optional(),
  creationDate: z.string().optional(),
};

function stepTypeProblem(input: unknown): string {
  const type = (input as { type?: unknown } | undefined)?.type;
  return `step.type must be Docker, FileTask or EncodedTask${type === undefined ? '' : `, got ${JSON.stringify(type)}`}`;
}

const resourceEnvelope = {
  location: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  identity: z.unknown().optional(),
  id: z.string().optional(),
  name: z.string().optional(),
  type: z.string().optional(),
};

/** Tasks_Create's body (ACR's Task resource). */
export const taskCreateSchema = z
  .object({ ...resourceEnvelope, properties: z.object(taskProperties).strict() })
  .strict();

/** Tasks_Update's body (TaskUpdateParameters): every property optional, merged into the task. */
export const taskUpdateSchema = z
  .object({
    ...resourceEnvelope,
    properties: z
      .object({
        status: status.optional(),
        platform: platform.optional(),
        agentConfiguration: z
          .object({ cpu: z.number().int().min(1).max(64) })
          .strict()
          .optional(),
        timeout: taskProperties.timeout.optional(),
        step: stepUpdate.optional(),
        trigger: trigger.partial().optional(),
        credentials: credentialsSchema.optional(),
        agentPoolName: z.string().optional(),
        logTemplate: z.string().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type TaskCreateBody = z.output<typeof taskCreateSchema>;
export type TaskUpdateBody = z.output<typeof taskUpdateSchema>;
