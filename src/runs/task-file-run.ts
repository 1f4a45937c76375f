import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AcbError, loadTaskFile } from '../acb/task-file';
import { checkYamlLimits } from '../acb/yaml-limits';
import type { TemplateData } from '../acb/template';
import { ValidationError } from '../errors';
import { acrRequest, AGENT_POOL_UNSUPPORTED, LOG_TEMPLATE_UNSUPPORTED, unsupported } from '../http/acr-body';
import { parseWith } from '../http/validate';
import type { Platform, Run, RunType } from './run';
import { runDate } from './render';
import { withoutUrlPassword } from '../sources/url-credentials';
import { credentialsSchema } from '../tasks/credentials-schema';
import type { RegistryCredentials } from '../registry/auth';
import { checkSourceLocation, platformSchema, sealRunSecrets, timeoutSchema } from './schedule-run';

/** A named value of a multi-step run (`--set`, `--set-secret`); a secret one's value is kept sealed. */
export interface TaskValue {
  readonly name: string;
  readonly isSecret: boolean;
  readonly value?: string;
}

/** What a multi-step (acb.yaml) run does, as stored with the run (secret values are not in here). */
export interface TaskFileSpec {
  readonly kind: 'TaskFile';
  /** The source the steps run in (checked out in /workspace), or undefined for none (`/dev/null`). */
  readonly sourceLocation: string | undefined;
  /** The task file: a path in the source, or the file itself (base64, an EncodedTask). */
  readonly taskFilePath?: string;
  readonly encodedTaskContent?: string;
  /** The values file: a path in the source, or the file itself (base64). */
  readonly valuesFilePath?: string;
  readonly encodedValuesContent?: string;
  readonly values: readonly TaskValue[];
  readonly commit?: string;
}

const valueSchema = z
  .object({
    name: z.string().min(1, 'a value needs a name'),
    value: z.string(),
    isSecret: z.boolean().default(false),
  })
  .strict();

/** A base64 field (an encoded task or values file). */
export const base64 = (field: string) =>
  z
    .string()
    .min(1, `${field} must not be empty`)
    .refine((s) => /^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(s), `${field} must be base64`);

/** A path inside the source: relative, never climbing out of it. */
export const relativePath = (field: string) =>
  z
    .string()
    .min(1, `${field} must not be empty`)
    .refine(
      (p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'),
      `${field} must be a relative path inside the source (the context)`,
    );

const runCommon = {
  isArchiveEnabled: z.boolean().default(false),
  agentPoolName: unsupported(AGENT_POOL_UNSUPPORTED),
  logTemplate: unsupported(LOG_TEMPLATE_UNSUPPORTED),
  timeout: timeoutSchema,
  platform: platformSchema,
  agentConfiguration: z
    .object({ cpu: z.number().int().min(1).max(64) })
    .strict()
    .default({ cpu: 2 }),
  sourceLocation: z.string().min(1).optional(),
  credentials: credentialsSchema.optional(),
  values: z.array(valueSchema).max(256).default([]),
};

const fileTaskRunRequestSchema = acrRequest(
  z
    .object({
      type: z.literal('FileTaskRunRequest'),
      ...runCommon,
      taskFilePath: relativePath('taskFilePath'),
      valuesFilePath: relativePath('valuesFilePath').optional(),
    })
    .strict(),
);

const encodedTaskRunRequestSchema = acrRequest(
  z
    .object({
      type: z.literal('EncodedTaskRunRequest'),
      ...runCommon,
      encodedTaskContent: base64('encodedTaskContent'),
      encodedValuesContent: base64('encodedValuesContent').optional(),
    })
    .strict(),
);

/** A validated FileTaskRunRequest or EncodedTaskRunRequest. */
export type TaskFileRunRequest =
  z.output<typeof fileTaskRunRequestSchema> | z.output<typeof encodedTaskRunRequestSchema>;

/** Parses a FileTaskRunRequest or EncodedTaskRunRequest body. */
export function parseTaskFileRunRequest(body: unknown, type: string): TaskFileRunRequest {
  return type === 'FileTaskRunRequest'
    ? parseWith(fileTaskRunRequestSchema, body, 'FileTaskRunRequest')
    : parseWith(encodedTaskRunRequestSchema, body, 'EncodedTaskRunRequest');
}

/** Decodes base64 text (an encoded task or values file). */
export function decode(content: string): string {
  return Buffer.from(content, 'base64').toString('utf8');
}

/** Reads a values file (YAML) into a map; names the field at fault. */
export function parseValuesFile(text: string, field: string): Record<string, unknown> {
  checkYamlLimits(text, `${field}: the values file`);
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new AcbError(
      `${field}: the values file is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new AcbError(`${field}: the values file must be a map of name: value`);
  return parsed as Record<string, unknown>;
}

/**
 * `.Values`: the values file merged with the `--set` values, `--set` winning (acb: set values are the base and the
 * file's keys are added only where absent, maps merged recursively). `--set a.b=1` sets the literal key `a.b`.
 */
export function mergeValues(
  fromFile: Readonly<Record<string, unknown>>,
  set: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const merge = (
    base: Record<string, unknown>,
    extra: Readonly<Record<string, unknown>>,
  ): Record<string, unknown> => {
    const out = { ...base };
    for (const [k, v] of Object.entries(extra)) {
      if (!(k in out)) out[k] = v;
      else if (isMap(out[k]) && isMap(v)) out[k] = merge(out[k], v);
    }
    return out;
  };
  return merge({ ...set }, fromFile);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The facts `{{.Run.*}}` renders in a task file. */
export interface RunFacts {
  readonly runId: string;
  readonly registry: string;
  readonly date: Date;
  readonly platform: Platform;
  readonly taskName?: string | undefined;
  readonly commit?: string | undefined;
  readonly branch?: string | undefined;
  readonly repository?: string | undefined;
  readonly triggeredBy?: string | undefined;
  readonly sharedVolume: string;
}

/** `.Run` for a task file (acb's base render options). */
export function runTemplateData(facts: RunFacts): Record<string, string> {
  return {
    ID: facts.runId,
    Registry: facts.registry,
    RegistryName: facts.registry.split('.')[0] ?? '',
    Date: runDate(facts.date),
    OS: facts.platform.os.toLowerCase(),
    OSVersion: '',
    Architecture: facts.platform.architecture,
    Commit: facts.commit ?? '',
    Branch: facts.branch ?? '',
    Repository: facts.repository ?? '',
    GitTag: '',
    TriggeredBy: facts.triggeredBy ?? '',
    TaskName: facts.taskName ?? '',
    SharedVolume: facts.sharedVolume,
  };
}

/** Template data for a run: `.Run`, `.Values` (file merged with set values) and `.Secrets`. */
export function templateData(
  facts: RunFacts,
  values: readonly { name: string; value: string }[],
  valuesFile: Readonly<Record<string, unknown>>,
  secrets: Readonly<Record<string, string>> = {},
): TemplateData {
  return {
    Run: runTemplateData(facts),
    Values: mergeValues(valuesFile, Object.fromEntries(values.map((v) => [v.name, v.value]))),
    Secrets: secrets,
  };
}

/**
 * Checks an encoded task before it is queued, with the request's values and placeholder run facts, so that a
 * broken file is a 400 naming the step at fault rather than a failed run. (A task file in the source can only be
 * checked once the source is fetched, by the run.)
 */
export async function checkEncodedTask(
  encodedTaskContent: string,
  encodedValuesContent: string | undefined,
  values: readonly { name: string; value: string }[],
  registry: string,
  field = 'encodedTaskContent',
): Promise<void> {
  try {
    const valuesFile = encodedValuesContent
      ? parseValuesFile(decode(encodedValuesContent), 'encodedValuesContent')
      : {};
    const facts: RunFacts = {
      runId: 'aa1',
      registry,
      date: new Date(),
      platform: { os: 'Linux', architecture: 'amd64' },
      sharedVolume: '/workspace',
    };
    // Alias files are in the source, not here: they are read by the run.
    await loadTaskFile(decode(encodedTaskContent), {
      data: templateData(facts, values, valuesFile),
      readAliasSource: async () => '',
    });
  } catch (err) {
    if (err instanceof AcbError) throw new ValidationError(err.message, field);
    throw err;
  }
}

/**
 * Checks what a quick run's schema cannot: a FileTask needs a source to read its file from, the source must be one
 * Refit can fetch, steps run on Linux, and an encoded task must be a valid task file.
 */
export async function checkTaskFileRunRequest(request: TaskFileRunRequest, registry: string): Promise<void> {
  if (request.sourceLocation) checkSourceLocation(request.sourceLocation);
  else if (request.type === 'FileTaskRunRequest')
    throw new ValidationError(
      'sourceLocation is required with a FileTaskRunRequest: the task file is read from the source',
      'sourceLocation',
    );
  if (request.platform.os === 'Windows')
    throw new ValidationError(
      "platform.os 'Windows' is not supported: Refit runs Linux steps",
      'platform.os',
    );
  if (request.type === 'EncodedTaskRunRequest')
    await checkEncodedTask(
      request.encodedTaskContent,
      request.encodedValuesContent,
      request.values,
      registry,
    );
}

/** Everything needed to turn a validated request into a Queued run. */
export interface NewTaskFileRunContext {
  readonly runId: string;
  readonly now: Date;
  readonly secretKey: Buffer;
  readonly runType: RunType;
  readonly taskName?: string;
  /** The request's registry logins, by login server (checked). */
  readonly registries?: Readonly<Record<string, RegistryCredentials>>;
}

/** The Queued run a FileTaskRunRequest or EncodedTaskRunRequest becomes; secret values are sealed apart. */
export function newTaskFileRun(request: TaskFileRunRequest, ctx: NewTaskFileRunContext): Run {
  const time = ctx.now.toISOString();
  const platform: Platform = {
    os: request.platform.os,
    architecture: request.platform.architecture,
    ...(request.platform.variant ? { variant: request.platform.variant } : {}),
  };
  const secretValues = Object.fromEntries(
    request.values.filter((v) => v.isSecret).map((v) => [v.name, v.value]),
  );
  // A password in the source URL is sealed with the run's secrets, never stored in its spec.
  const source = request.sourceLocation ? withoutUrlPassword(request.sourceLocation) : undefined;
  return {
    runId: ctx.runId,
    status: 'Queued',
    runType: ctx.runType,
    taskName: ctx.taskName,
    createTime: time,
    startTime: undefined,
    finishTime: undefined,
    lastUpdatedTime: time,
    isArchiveEnabled: request.isArchiveEnabled,
    platform,
    agentConfiguration: request.agentConfiguration,
    timeout: request.timeout,
    outputImages: [],
    runErrorMessage: undefined,
    spec: {
      kind: 'TaskFile',
      sourceLocation: source?.location,
      ...(request.type === 'FileTaskRunRequest'
        ? {
            taskFilePath: request.taskFilePath,
            ...(request.valuesFilePath ? { valuesFilePath: request.valuesFilePath } : {}),
          }
        : {
            encodedTaskContent: request.encodedTaskContent,
            ...(request.encodedValuesContent ? { encodedValuesContent: request.encodedValuesContent } : {}),
          }),
      values: request.values.map((v) =>
        v.isSecret ? { name: v.name, isSecret: true } : { name: v.name, isSecret: false, value: v.value },
      ),
    },
    sealedSecrets: sealRunSecrets(ctx.secretKey, {
      arguments: {},
      values: secretValues,
      ...(source?.password ? { gitToken: source.password } : {}),
      ...(ctx.registries && Object.keys(ctx.registries).length ? { registries: ctx.registries } : {}),
    }),
  };
}
