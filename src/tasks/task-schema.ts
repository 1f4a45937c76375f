import { Cron } from 'croner';
import { z } from 'zod';
import { acrResource, AGENT_POOL_UNSUPPORTED, LOG_TEMPLATE_UNSUPPORTED, unsupported } from '../http/acr-body';
import { shown } from '../http/validate';
import { platformSchema, platformUpdateSchema, timeoutSchema } from '../runs/schedule-run';
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

const triggerName = z.string().regex(TRIGGER_NAME, 'a trigger name is 1–50 letters, digits, _ or -');
const sourceControlType = z.enum(['Github', 'VisualStudioTeamService'], {
  error: (i) => `'${shown(i.input)}' is not a source control type: use Github or VisualStudioTeamService`,
});
const sourceControlAuthProperties = z
  .object({
    tokenType: z.enum(['PAT', 'OAuth']),
    token: z.string().optional(),
    refreshToken: z.string().optional(),
    scope: z.string().optional(),
    expiresIn: z.number().optional(),
  })
  .strict();
const sourceEvents = z.array(
  z.enum(['commit', 'pullrequest'], {
    error: (i) => `'${shown(i.input)}' is not a source event: use commit or pullrequest`,
  }),
);
const schedule = z.string().superRefine((s, ctx) => {
  const problem = scheduleProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const baseImageTriggerType = z.enum(['All', 'Runtime'], {
  error: (i) => `'${shown(i.input)}' is not a base image trigger type: use All or Runtime`,
});
const updateTriggerEndpoint = z.url({ error: 'updateTriggerEndpoint must be an http(s) URL' });
const updateTriggerPayloadType = z.enum(['Default', 'Token']);

const sourceTrigger = z
  .object({
    name: triggerName,
    sourceRepository: z
      .object({
        sourceControlType,
        repositoryUrl: z.string().min(1),
        branch: z.string().min(1).default('master'),
        sourceControlAuthProperties: sourceControlAuthProperties.optional(),
      })
      .strict(),
    sourceTriggerEvents: sourceEvents.min(1, 'name at least one event'),
    status: status.default('Enabled'),
  })
  .strict();

const timerTrigger = z.object({ name: triggerName, schedule, status: status.default('Enabled') }).strict();

const baseImageTrigger = z
  .object({
    name: triggerName,
    baseImageTriggerType: baseImageTriggerType.default('Runtime'),
    updateTriggerEndpoint: updateTriggerEndpoint.optional(),
    updateTriggerPayloadType: updateTriggerPayloadType.optional(),
    status: status.default('Enabled'),
  })
  .strict();

/** A task's triggers, whole (what a Tasks_Create gives, and what a Tasks_Update's merge must come to). */
export const triggerSchema = z
  .object({
    sourceTriggers: z.array(sourceTrigger).max(16).default([]),
    timerTriggers: z.array(timerTrigger).max(16).default([]),
    baseImageTrigger: baseImageTrigger.optional(),
  })
  .strict();

/**
 * ACR's TriggerUpdateParameters: each trigger names the one it changes and gives only what changes (a source
 * trigger its repository's auth properties alone, a timer its status alone); merged field by field with the stored
 * trigger, then checked whole (task-merge.ts).
 */
const triggerUpdate = z
  .object({
    sourceTriggers: z
      .array(
        z
          .object({
            name: triggerName,
            sourceRepository: z
              .object({
                sourceControlType: sourceControlType.optional(),
                repositoryUrl: z.string().min(1).optional(),
                branch: z.string().min(1).optional(),
                sourceControlAuthProperties: sourceControlAuthProperties.optional(),
              })
              .strict()
              .optional(),
            sourceTriggerEvents: sourceEvents.optional(),
            status: status.optional(),
          })
          .strict(),
      )
      .max(16)
      .optional(),
    timerTriggers: z
      .array(
        z.object({ name: triggerName, schedule: schedule.optional(), status: status.optional() }).strict(),
      )
      .max(16)
      .optional(),
    baseImageTrigger: z
      .object({
        name: triggerName.optional(),
        baseImageTriggerType: baseImageTriggerType.optional(),
        updateTriggerEndpoint: updateTriggerEndpoint.optional(),
        updateTriggerPayloadType: updateTriggerPayloadType.optional(),
        status: status.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const agentConfiguration = z.object({ cpu: z.number().int().min(1).max(64) }).strict();

/** A task's step, whole; a step without its `type` (ACR's own TasksCreate example) has it inferred. */
export const taskStepSchema = z.preprocess(
  withStepType,
  z.discriminatedUnion('type', [dockerStep, fileTaskStep, encodedTaskStep], {
    error: (i) => stepTypeProblem(i.input),
  }),
);

const STEP_MARKERS: readonly (readonly ['Docker' | 'FileTask' | 'EncodedTask', readonly string[]])[] = [
  ['Docker', ['dockerFilePath', 'imageNames', 'arguments', 'isPushEnabled', 'noCache', 'target']],
  ['FileTask', ['taskFilePath', 'valuesFilePath']],
  ['EncodedTask', ['encodedTaskContent', 'encodedValuesContent']],
];

/** A step with its `type`: as given, or the one step type whose own properties the step has. */
function withStepType(step: unknown): unknown {
  if (typeof step !== 'object' || step === null || Array.isArray(step)) return step;
  const given = step as Record<string, unknown>;
  if (given.type !== undefined) return step;
  const types = STEP_MARKERS.filter(([, keys]) => keys.some((k) => Object.hasOwn(given, k))).map(([t]) => t);
  return types.length === 1 ? { ...given, type: types[0] } : step;
}

function stepTypeProblem(input: unknown): string {
  const type = (input as { type?: unknown } | undefined)?.type;
  return `step.type must be Docker, FileTask or EncodedTask${type === undefined ? '' : `, got ${JSON.stringify(type)}`}`;
}

const IDENTITY_UNSUPPORTED =
  "is not supported: Refit cannot give a task user-assigned identities; this deployment's own identity stands for the task's system identity (use SystemAssigned or None), and a Key Vault credential may name a user-assigned identity's client ID";

/**
 * A task's managed identity. SystemAssigned is the deployment's own identity (what `[system]` names in
 * credentials); user-assigned identities cannot be given to a task, so they are refused.
 */
const identity = z
  .object({
    type: z
      .enum(['SystemAssigned', 'None'], { error: (i) => `'${shown(i.input)}' ${IDENTITY_UNSUPPORTED}` })
      .optional(),
    userAssignedIdentities: unsupported(`userAssignedIdentities ${IDENTITY_UNSUPPORTED}`),
  })
  .strict();

const resourceEnvelope = {
  location: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  identity: identity.optional(),
};

/** Properties of ACR's that Refit refuses, in a Tasks_Create and a Tasks_Update alike. */
const refused = {
  isSystemTask: z
    .literal(false, {
      error:
        'system tasks (isSystemTask true) are not supported: a Refit task has a step; schedule runs directly for quick runs',
    })
    .optional(),
  agentPoolName: unsupported(AGENT_POOL_UNSUPPORTED),
  logTemplate: unsupported(LOG_TEMPLATE_UNSUPPORTED),
};

/** Tasks_Create's body (ACR's Task resource); read-only properties and nulls are dropped first (acr-body.ts). */
export const taskCreateSchema = acrResource(
  z
    .object({
      ...resourceEnvelope,
      properties: z
        .object({
          // First: a refused setting is the reason to give, before what a system task leaves out (its step).
          ...refused,
          status: status.default('Enabled'),
          platform: platform.default({ os: 'Linux', architecture: 'amd64' }),
          agentConfiguration: agentConfiguration.default({ cpu: 2 }),
          timeout: timeoutSchema,
          step: taskStepSchema,
          trigger: triggerSchema.default({ sourceTriggers: [], timerTriggers: [] }),
          credentials: credentialsSchema.optional(),
        })
        .strict(),
    })
    .strict(),
);

/** Tasks_Update's body (TaskUpdateParameters): every property optional, merged into the task. */
export const taskUpdateSchema = acrResource(
  z
    .object({
      ...resourceEnvelope,
      properties: z
        .object({
          ...refused,
          status: status.optional(),
          platform: platformUpdateSchema.optional(),
          agentConfiguration: agentConfiguration.optional(),
          timeout: timeoutSchema.optional(),
          step: stepUpdate.optional(),
          trigger: triggerUpdate.optional(),
          credentials: credentialsSchema.optional(),
        })
        .strict()
        .default({}),
    })
    .strict(),
);

export type TaskCreateBody = z.output<typeof taskCreateSchema>;
export type TaskUpdateBody = z.output<typeof taskUpdateSchema>;
