import { Command, Option } from 'commander';
import { cmdTaskFile } from './run-command';
import { isGitSource } from '../runs/schedule-run';
import { collect, intOption, keyValue, parsePlatform, readLocal, setValue } from './args';
import { CliError } from './client';
import { MASKED_PASSWORD } from '../sources/url-credentials';
import { bool, type TaskResource } from './task-resource';

/** `[name:]cron` as az takes --schedule; unnamed timers are t1, t2, … */
export function parseSchedules(entries: string[]): { name: string; schedule: string; status: string }[] {
  return entries.map((entry, i) => {
    const m = /^([A-Za-z0-9_-]+):(.+)$/.exec(entry);
    return { name: m ? m[1]! : `t${i + 1}`, schedule: (m ? m[2]! : entry).trim(), status: 'Enabled' };
  });
}

function sourceControlType(url: string): string {
  return /dev\.azure\.com|visualstudio\.com/i.test(url) ? 'VisualStudioTeamService' : 'Github';
}

/** The flags of `refit task create` and `refit task update`. */
export interface TaskOptions {
  name: string;
  context?: string;
  file?: string;
  cmd?: string;
  set: string[];
  setSecret: string[];
  values?: string;
  image: string[];
  arg: string[];
  secretArg: string[];
  gitAccessToken?: string;
  commitTriggerEnabled?: string;
  pullRequestTriggerEnabled?: string;
  baseImageTriggerEnabled?: string;
  baseImageTriggerType?: string;
  updateTriggerEndpoint?: string;
  updateTriggerPayloadType?: string;
  sourceTriggerName?: string;
  baseImageTriggerName?: string;
  schedule: string[];
  platform?: string;
  cpu?: string;
  timeout?: string;
  status?: string;
  target?: string;
  push?: boolean;
  cache?: boolean;
}

/** The build arguments the flags give (`--arg`, `--secret-arg`). */
export function args(opts: TaskOptions): { name: string; value: string; isSecret: boolean }[] {
  return [
    ...opts.arg.map((a) => ({ ...keyValue(a, '--arg'), isSecret: false })),
    ...opts.secretArg.map((a) => ({ ...keyValue(a, '--secret-arg'), isSecret: true })),
  ];
}

/** Extensions that make `-f` a task file (az: a FileTask), not a Dockerfile. */
const TASK_FILE = /\.(ya?ml|toml|json|sh|bash|zsh|ps1|ps|cmd|bat|ts|js|php|py|rb|lua)$/i;

function taskValues(opts: TaskOptions): { name: string; value: string; isSecret: boolean }[] {
  return [
    ...opts.set.map((a) => ({ ...setValue(a, '--set'), isSecret: false })),
    ...opts.setSecret.map((a) => ({ ...setValue(a, '--set-secret'), isSecret: true })),
  ];
}

/**
 * The step `az acr task create` makes of the flags: `-c /dev/null` gives an EncodedTask (the task file read here,
 * or one `--cmd`), a task file (`-f acb.yaml`) a FileTask, anything else a Docker build.
 */
export async function stepOf(opts: TaskOptions): Promise<Record<string, unknown>> {
  const context = opts.context!;
  const noContext = context === '/dev/null';
  if (opts.cmd && opts.file) throw new CliError('give either --cmd or -f, not both');
  if (noContext || opts.cmd) {
    const text = opts.cmd
      ? cmdTaskFile(opts.cmd, intOption(opts.timeout, '--timeout') ?? 3600)
      : await readLocal(opts.file ?? 'acb.yaml', 'the task file');
    const values = opts.values ? await readLocal(opts.values, 'the values file') : undefined;
    return {
      type: 'EncodedTask',
      ...(noContext ? {} : { contextPath: context }),
      encodedTaskContent: Buffer.from(text).toString('base64'),
      ...(values ? { encodedValuesContent: Buffer.from(values).toString('base64') } : {}),
      values: taskValues(opts),
      ...(opts.gitAccessToken ? { contextAccessToken: opts.gitAccessToken } : {}),
    };
  }
  if (opts.file && TASK_FILE.test(opts.file)) {
    return {
      type: 'FileTask',
      contextPath: context,
      taskFilePath: opts.file,
      ...(opts.values ? { valuesFilePath: opts.values } : {}),
      values: taskValues(opts),
      ...(opts.gitAccessToken ? { contextAccessToken: opts.gitAccessToken } : {}),
    };
  }
  return {
    type: 'Docker',
    contextPath: context,
    dockerFilePath: opts.file ?? 'Dockerfile',
    imageNames: opts.image,
    isPushEnabled: opts.push !== false,
    noCache: opts.cache === false,
    ...(opts.target ? { target: opts.target } : {}),
    arguments: args(opts),
    ...(opts.gitAccessToken ? { contextAccessToken: opts.gitAccessToken } : {}),
  };
}

const DEFAULT_SOURCE_TRIGGER = 'defaultSourceTriggerName';
const DEFAULT_BASE_IMAGE_TRIGGER = 'defaultBaseimageTriggerName';

/** The repository a source trigger watches: the git context's URL and branch (`url#branch:folder`). */
function sourceRepository(context: string, token: string | undefined): Record<string, unknown> {
  const [repositoryUrl = context, fragment = ''] = context.split('#');
  return {
    sourceControlType: sourceControlType(repositoryUrl),
    repositoryUrl,
    branch: fragment.split(':')[0] || 'master',
    ...(token ? { sourceControlAuthProperties: { tokenType: 'PAT', token } } : {}),
  };
}

/** The Tasks_Create body `az acr task create` would send for these flags. */
export function createBody(opts: TaskOptions, step: Record<string, unknown>): Record<string, unknown> {
  const context = opts.context!;
  const git = isGitSource(context);
  const commit = bool(opts.commitTriggerEnabled ?? 'true', '--commit-trigger-enabled');
  const pr = bool(opts.pullRequestTriggerEnabled ?? 'false', '--pull-request-trigger-enabled');
  const baseImage = bool(opts.baseImageTriggerEnabled ?? 'true', '--base-image-trigger-enabled');
  const events = [...(commit ? ['commit'] : []), ...(pr ? ['pullrequest'] : [])];
  return {
    properties: {
      ...(opts.status ? { status: opts.status } : {}),
      platform: parsePlatform(opts.platform ?? 'linux/amd64'),
      agentConfiguration: { cpu: intOption(opts.cpu, '--cpu') ?? 2 },
      timeout: intOption(opts.timeout, '--timeout') ?? 3600,
      step,
      trigger: {
        sourceTriggers:
          git && events.length
            ? [
                {
                  name: opts.sourceTriggerName ?? DEFAULT_SOURCE_TRIGGER,
                  sourceRepository: sourceRepository(context, opts.gitAccessToken),
                  sourceTriggerEvents: events,
                  status: 'Enabled',
                },
              ]
            : [],
        timerTriggers: parseSchedules(opts.schedule),
        baseImageTrigger: {
          name: opts.baseImageTriggerName ?? DEFAULT_BASE_IMAGE_TRIGGER,
          baseImageTriggerType: opts.baseImageTriggerType ?? 'Runtime',
          status: baseImage ? 'Enabled' : 'Disabled',
          ...(opts.updateTriggerEndpoint
            ? {
                updateTriggerEndpoint: opts.updateTriggerEndpoint,
                updateTriggerPayloadType: opts.updateTriggerPayloadType ?? 'Default',
              }
            : {}),
        },
      },
    },
  };
}

/** A value Refit shows masked (a URL's password) cannot be sent back: the flag that sets it must be given again. */
function unmasked(value: string, flag: string): string {
  if (value.includes(MASKED_PASSWORD))
    throw new CliError(
      `the task's stored ${flag === '--context' ? 'context' : 'update trigger endpoint'} holds a password that Refit does not show: give ${flag} again with this update`,
    );
  return value;
}

/**
 * The source trigger az acr task update sends: `--commit/--pull-request-trigger-enabled` change the stored event
 * list (a disabled trigger counts as none), the trigger is disabled when no event is left, and a task without a
 * source trigger (or without one named --source-trigger-name) gets one on its git context.
 */
function sourceTriggerPatch(opts: TaskOptions, current: TaskResource): Record<string, unknown> | undefined {
  if (opts.commitTriggerEnabled === undefined && opts.pullRequestTriggerEnabled === undefined)
    return undefined;
  const stored = current.properties.trigger?.sourceTriggers ?? [];
  const existing = opts.sourceTriggerName ? stored.find((t) => t.name === opts.sourceTriggerName) : stored[0];
  const events = new Set(
    existing && existing.status !== 'Disabled' ? (existing.sourceTriggerEvents ?? []) : [],
  );
  for (const [flag, value, event] of [
    ['--commit-trigger-enabled', opts.commitTriggerEnabled, 'commit'],
    ['--pull-request-trigger-enabled', opts.pullRequestTriggerEnabled, 'pullrequest'],
  ] as const) {
    if (value === undefined) continue;
    if (bool(value, flag)) events.add(event);
    else events.delete(event);
  }
  const list = ['commit', 'pullrequest'].filter((e) => events.has(e));
  const context = opts.context ?? current.properties.step.contextPath;
  if (existing) {
    return {
      ...existing,
      ...(opts.context || opts.gitAccessToken
        ? { sourceRepository: sourceRepository(unmasked(context ?? '', '--context'), opts.gitAccessToken) }
        : {}),
      // A disabled trigger keeps its events (the API wants at least one); its status says it does not fire.
      sourceTriggerEvents: list.length ? list : existing.sourceTriggerEvents,
      status: list.length ? 'Enabled' : 'Disabled',
    };
  }
  if (list.length === 0) return undefined;
  if (!context || !isGitSource(context))
    throw new CliError(
      `task '${current.name}' has no source trigger to enable, and its context is not a git repository: give a git context with -c`,
    );
  return {
    name: opts.sourceTriggerName ?? DEFAULT_SOURCE_TRIGGER,
    sourceRepository: sourceRepository(unmasked(context, '--context'), opts.gitAccessToken),
    sourceTriggerEvents: list,
    status: 'Enabled',
  };
}

/** The base-image trigger az acr task update sends: the stored one, with only the fields the flags give changed. */
function baseImageTriggerPatch(
  opts: TaskOptions,
  current: TaskResource,
): Record<string, unknown> | undefined {
  if (
    opts.baseImageTriggerEnabled === undefined &&
    !opts.baseImageTriggerType &&
    !opts.updateTriggerEndpoint &&
    !opts.updateTriggerPayloadType &&
    !opts.baseImageTriggerName
  )
    return undefined;
  const previous = current.properties.trigger?.baseImageTrigger;
  const endpoint =
    opts.updateTriggerEndpoint ??
    (previous?.updateTriggerEndpoint
      ? unmasked(previous.updateTriggerEndpoint, '--update-trigger-endpoint')
      : undefined);
  const payloadType = opts.updateTriggerPayloadType ?? previous?.updateTriggerPayloadType;
  return {
    name: opts.baseImageTriggerName ?? previous?.name ?? DEFAULT_BASE_IMAGE_TRIGGER,
    baseImageTriggerType: opts.baseImageTriggerType ?? previous?.baseImageTriggerType ?? 'Runtime',
    status:
      opts.baseImageTriggerEnabled !== undefined
        ? bool(opts.baseImageTriggerEnabled, '--base-image-trigger-enabled')
          ? 'Enabled'
          : 'Disabled'
        : (previous?.status ?? 'Enabled'),
    ...(endpoint ? { updateTriggerEndpoint: endpoint } : {}),
    ...(payloadType ? { updateTriggerPayloadType: payloadType } : {}),
  };
}

/** The Tasks_Update body for the flags given (only those). */
export async function updateBody(opts: TaskOptions, current: TaskResource): Promise<Record<string, unknown>> {
  const step: Record<string, unknown> = {};
  if (opts.context) step.contextPath = opts.context;
  const type = current.properties.step.type;
  if (type === 'EncodedTask') {
    // The file is stored with the task: -f and --values name local files to read again.
    const encoded = async (path: string, what: string): Promise<string> =>
      Buffer.from(await readLocal(path, what)).toString('base64');
    if (opts.file) step.encodedTaskContent = await encoded(opts.file, 'the task file');
    if (opts.values) step.encodedValuesContent = await encoded(opts.values, 'the values file');
  } else {
    if (opts.file) step[type === 'FileTask' ? 'taskFilePath' : 'dockerFilePath'] = opts.file;
    if (opts.values) step.valuesFilePath = opts.values;
  }
  if (opts.set.length || opts.setSecret.length) step.values = taskValues(opts);
  if (opts.image.length) step.imageNames = opts.image;
  if (opts.target) step.target = opts.target;
  if (opts.push === false) step.isPushEnabled = false;
  if (opts.cache === false) step.noCache = true;
  const a = args(opts);
  if (a.length) step.arguments = a;
  if (opts.gitAccessToken) step.contextAccessToken = opts.gitAccessToken;
  const trigger: Record<string, unknown> = {};
  const sourceTrigger = sourceTriggerPatch(opts, current);
  if (sourceTrigger) trigger.sourceTriggers = [sourceTrigger];
  const baseImageTrigger = baseImageTriggerPatch(opts, current);
  if (baseImageTrigger) trigger.baseImageTrigger = baseImageTrigger;
  if (opts.schedule.length) trigger.timerTriggers = parseSchedules(opts.schedule);
  return {
    properties: {
      ...(opts.status ? { status: opts.status } : {}),
      ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}),
      ...(opts.cpu ? { agentConfiguration: { cpu: intOption(opts.cpu, '--cpu') } } : {}),
      ...(opts.timeout ? { timeout: intOption(opts.timeout, '--timeout') } : {}),
      ...(Object.keys(step).length ? { step } : {}),
      ...(Object.keys(trigger).length ? { trigger } : {}),
    },
  };
}

/** The flags `refit task create` and `refit task update` take (as az's). */
export function taskOptions(cmd: Command, creating: boolean): Command {
  return cmd
    .requiredOption('-n, --name <name>', 'the task name')
    .option(
      '-c, --context <source>',
      creating ? 'the context: a git URL (url#branch:folder) or a tarball URL (required)' : 'the context',
    )
    .option(
      '-f, --file <path>',
      'the Dockerfile, or a task file (acb.yaml), relative to the context (a local file with -c /dev/null)',
    )
    .option('--cmd <command>', 'a task of one command (an image and its arguments)')
    .option('--set <name=value>', 'a value of a multi-step task (repeatable)', collect, [])
    .option('--set-secret <name=value>', 'a secret value of a multi-step task (repeatable)', collect, [])
    .option('--values <path>', 'the values file of a multi-step task')
    .option('-t, --image <name>', 'image name and tag (repeatable)', collect, [])
    .option('--arg <name=value>', 'a build argument (repeatable)', collect, [])
    .option('--secret-arg <name=value>', 'a secret build argument (repeatable)', collect, [])
    .option('--git-access-token <token>', 'a token to clone the context with (masked in logs)')
    .option('--commit-trigger-enabled <bool>', 'build on commits to the context branch (default true)')
    .option('--pull-request-trigger-enabled <bool>', 'build pull requests (default false)')
    .option('--base-image-trigger-enabled <bool>', 'rebuild when a base image is updated (default true)')
    .addOption(
      new Option('--base-image-trigger-type <type>', 'which base images trigger').choices(['All', 'Runtime']),
    )
    .option('--update-trigger-endpoint <url>', 'a URL to notify when a base-image update starts a run')
    .addOption(
      new Option('--update-trigger-payload-type <type>', 'what the notification carries').choices([
        'Default',
        'Token',
      ]),
    )
    .option(
      '--source-trigger-name <name>',
      creating
        ? 'the name of the source trigger (default defaultSourceTriggerName)'
        : 'the source trigger that the trigger flags change or add (default the first)',
    )
    .option(
      '--base-image-trigger-name <name>',
      creating
        ? 'the name of the base image trigger (default defaultBaseimageTriggerName)'
        : 'rename the base image trigger',
    )
    .option('--schedule <[name:]cron>', 'a timer trigger (repeatable)', collect, [])
    .option('--platform <os/arch>', 'the platform to build for')
    .option('--cpu <n>', 'CPUs for the run')
    .option('--timeout <seconds>', 'the run timeout (300-28800)')
    .addOption(new Option('--status <status>', 'the task status').choices(['Enabled', 'Disabled']))
    .option('--target <stage>', 'the Dockerfile stage to build')
    .option('--no-push', 'build without pushing')
    .option('--no-cache', 'do not use the build cache');
}
