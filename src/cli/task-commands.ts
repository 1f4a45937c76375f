import { Command, Option } from 'commander';
import { cmdTaskFile } from './run-command';
import { isGitSource } from '../runs/schedule-run';
import {
  collect,
  intOption,
  keyValue,
  outputOption,
  parsePlatform,
  print,
  readLocal,
  setValue,
} from './args';
import { CliError, type RefitClient } from './client';
import { table, tsv } from './format';

type Output = 'json' | 'table' | 'tsv';

interface TaskResource {
  name: string;
  properties: {
    status: string;
    platform?: { os?: string; architecture?: string };
    step: {
      type?: string;
      contextPath?: string;
      arguments?: { name: string; value?: string; isSecret?: boolean }[];
    };
    trigger?: {
      sourceTriggers?: { name: string; status?: string; sourceRepository: { repositoryUrl: string } }[];
      timerTriggers?: { name: string; schedule: string; status?: string }[];
      baseImageTrigger?: { status?: string; updateTriggerPayloadType?: string };
    };
  };
  [key: string]: unknown;
}

function bool(value: string, flag: string): boolean {
  const v = value.toLowerCase();
  if (v !== 'true' && v !== 'false') throw new CliError(`${flag} must be true or false, got '${value}'`);
  return v === 'true';
}

/** `[name:]cron` as az takes --schedule; unnamed timers are t1, t2, … */
function parseSchedules(entries: string[]): { name: string; schedule: string; status: string }[] {
  return entries.map((entry, i) => {
    const m = /^([A-Za-z0-9_-]+):(.+)$/.exec(entry);
    return { name: m ? m[1]! : `t${i + 1}`, schedule: (m ? m[2]! : entry).trim(), status: 'Enabled' };
  });
}

function sourceControlType(url: string): string {
  return /dev\.azure\.com|visualstudio\.com/i.test(url) ? 'VisualStudioTeamService' : 'Github';
}

function taskRow(task: TaskResource): string[] {
  const p = task.properties;
  const triggers = [
    ...(p.trigger?.baseImageTrigger?.status === 'Enabled' ? ['BASE_IMAGE'] : []),
    ...(p.trigger?.sourceTriggers?.some((t) => t.status !== 'Disabled') ? ['SOURCE'] : []),
    ...(p.trigger?.timerTriggers?.some((t) => t.status !== 'Disabled') ? ['TIMER'] : []),
  ].sort();
  return [
    task.name,
    `${p.platform?.os?.toLowerCase() ?? ''}`,
    p.status,
    p.trigger?.sourceTriggers?.[0]?.sourceRepository.repositoryUrl ?? '',
    triggers.join(', '),
  ];
}

interface TaskOptions {
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
  schedule: string[];
  platform?: string;
  cpu?: string;
  timeout?: string;
  status?: string;
  target?: string;
  push?: boolean;
  cache?: boolean;
}

function args(opts: TaskOptions): { name: string; value: string; isSecret: boolean }[] {
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
async function stepOf(opts: TaskOptions): Promise<Record<string, unknown>> {
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

/** The Tasks_Create body `az acr task create` would send for these flags. */
function createBody(opts: TaskOptions, step: Record<string, unknown>): Record<string, unknown> {
  const context = opts.context!;
  const git = isGitSource(context);
  const commit = bool(opts.commitTriggerEnabled ?? 'true', '--commit-trigger-enabled');
  const pr = bool(opts.pullRequestTriggerEnabled ?? 'false', '--pull-request-trigger-enabled');
  const baseImage = bool(opts.baseImageTriggerEnabled ?? 'true', '--base-image-trigger-enabled');
  const [repositoryUrl = context, fragment = ''] = context.split('#');
  const branch = fragment.split(':')[0] || 'master';
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
                  name: 'defaultSourceTriggerName',
                  sourceRepository: {
                    sourceControlType: sourceControlType(repositoryUrl),
                    repositoryUrl,
                    branch,
                    ...(opts.gitAccessToken
                      ? { sourceControlAuthProperties: { tokenType: 'PAT', token: opts.gitAccessToken } }
                      : {}),
                  },
                  sourceTriggerEvents: events,
                  status: 'Enabled',
                },
              ]
            : [],
        timerTriggers: parseSchedules(opts.schedule),
        baseImageTrigger: {
          name: 'defaultBaseimageTriggerName',
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

/** The Tasks_Update body for the flags given (only those). */
async function updateBody(opts: TaskOptions, current: TaskResource): Promise<Record<string, unknown>> {
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
  const source = current.properties.trigger?.sourceTriggers?.[0];
  if (source && (opts.commitTriggerEnabled !== undefined || opts.pullRequestTriggerEnabled !== undefined)) {
    const commit = bool(opts.commitTriggerEnabled ?? 'true', '--commit-trigger-enabled');
    const pr = bool(opts.pullRequestTriggerEnabled ?? 'false', '--pull-request-trigger-enabled');
    trigger.sourceTriggers = [
      {
        ...source,
        sourceTriggerEvents: [...(commit ? ['commit'] : []), ...(pr ? ['pullrequest'] : [])],
        status: commit || pr ? 'Enabled' : 'Disabled',
      },
    ];
    if (!commit && !pr)
      (trigger.sourceTriggers as { sourceTriggerEvents: string[] }[])[0]!.sourceTriggerEvents = ['commit'];
  }
  if (
    opts.baseImageTriggerEnabled !== undefined ||
    opts.baseImageTriggerType ||
    opts.updateTriggerEndpoint ||
    opts.updateTriggerPayloadType
  ) {
    const previous = current.properties.trigger?.baseImageTrigger;
    trigger.baseImageTrigger = {
      name: 'defaultBaseimageTriggerName',
      baseImageTriggerType: opts.baseImageTriggerType ?? 'Runtime',
      status: bool(opts.baseImageTriggerEnabled ?? 'true', '--base-image-trigger-enabled')
        ? 'Enabled'
        : 'Disabled',
      ...(opts.updateTriggerEndpoint ? { updateTriggerEndpoint: opts.updateTriggerEndpoint } : {}),
      ...(opts.updateTriggerPayloadType || previous?.updateTriggerPayloadType
        ? { updateTriggerPayloadType: opts.updateTriggerPayloadType ?? previous?.updateTriggerPayloadType }
        : {}),
    };
  }
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

function taskOptions(cmd: Command, creating: boolean): Command {
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
    .option('--schedule <[name:]cron>', 'a timer trigger (repeatable)', collect, [])
    .option('--platform <os/arch>', 'the platform to build for')
    .option('--cpu <n>', 'CPUs for the run')
    .option('--timeout <seconds>', 'the run timeout (300-28800)')
    .addOption(new Option('--status <status>', 'the task status').choices(['Enabled', 'Disabled']))
    .option('--target <stage>', 'the Dockerfile stage to build')
    .option('--no-push', 'build without pushing')
    .option('--no-cache', 'do not use the build cache');
}

/** `refit task create|update|show|list|delete|run` and `refit task timer …`. */
export function addTaskCommands(
  task: Command,
  client: RefitClient,
  exit: { code: number },
  streamRun: (runId: string) => Promise<number>,
): void {
  const path = (name: string): string => `/tasks/${encodeURIComponent(name)}`;

  taskOptions(task.command('create').description('Create a task (az acr task create).'), true).action(
    async (opts: TaskOptions) => {
      if (!opts.context)
        throw new CliError(
          '--context is required: a git URL (url#branch:folder), a tarball URL, or /dev/null for a task with no context',
        );
      let existing = true;
      try {
        await client.request('GET', path(opts.name));
      } catch (err) {
        if (!(err instanceof CliError && err.message.includes('(HTTP 404)'))) throw err;
        existing = false;
      }
      if (existing) throw new CliError(`task '${opts.name}' already exists: use refit task update`);
      print(await client.json('PUT', path(opts.name), createBody(opts, await stepOf(opts))));
    },
  );

  taskOptions(
    task.command('update').description('Update a task: only the flags given change.'),
    false,
  ).action(async (opts: TaskOptions) => {
    const current = await client.json<TaskResource>('GET', path(opts.name));
    print(await client.json('PATCH', path(opts.name), await updateBody(opts, current)));
  });

  task
    .command('show')
    .description('Show a task (secret values are never shown).')
    .requiredOption('-n, --name <name>', 'the task name')
    .action(async (opts: { name: string }) => print(await client.json('GET', path(opts.name))));

  task
    .command('list')
    .description('List tasks.')
    .addOption(outputOption())
    .action(async (opts: { output: Output }) => {
      const tasks: TaskResource[] = [];
      let next: string | undefined = '/tasks?$top=100';
      while (next) {
        const page: { value: TaskResource[]; nextLink?: string } = await client.json('GET', next);
        tasks.push(...page.value);
        next = page.nextLink ? page.nextLink.slice(page.nextLink.indexOf('/api/') + 4) : undefined;
      }
      if (opts.output === 'table')
        process.stdout.write(
          table(['NAME', 'PLATFORM', 'STATUS', 'SOURCE REPOSITORY', 'TRIGGERS'], tasks.map(taskRow)) + '\n',
        );
      else if (opts.output === 'tsv')
        process.stdout.write(tsv(tasks.map(taskRow)) + (tasks.length ? '\n' : ''));
      else print(tasks);
    });

  task
    .command('delete')
    .description('Delete a task.')
    .requiredOption('-n, --name <name>', 'the task name')
    .action(async (opts: { name: string }) => {
      const res = await client.request('DELETE', path(opts.name));
      process.stderr.write(
        res.status === 204 ? `Task '${opts.name}' did not exist.\n` : `Task '${opts.name}' deleted.\n`,
      );
    });

  task
    .command('run')
    .description('Run a task now and stream its log (az acr task run).')
    .requiredOption('-n, --name <name>', 'the task name')
    .option('--arg <name=value>', 'override a build argument (repeatable)', collect, [])
    .option('--secret-arg <name=value>', 'override a secret build argument (repeatable)', collect, [])
    .option('--set <name=value>', 'a task value (multi-step tasks; repeatable)', collect, [])
    .option('-f, --file <path>', 'override the Dockerfile')
    .option('-c, --context <source>', 'override the context')
    .option('--target <stage>', 'override the target stage')
    .option('--update-trigger-token <token>', 'a token sent with later base-image update notifications')
    .option('--no-logs', 'return after queueing')
    .action(
      async (opts: {
        name: string;
        updateTriggerToken?: string;
        arg: string[];
        secretArg: string[];
        set: string[];
        file?: string;
        context?: string;
        target?: string;
        logs: boolean;
      }) => {
        const overrides = {
          ...(opts.context ? { contextPath: opts.context } : {}),
          ...(opts.file ? { file: opts.file } : {}),
          ...(opts.target ? { target: opts.target } : {}),
          ...(opts.updateTriggerToken
            ? { updateTriggerToken: Buffer.from(opts.updateTriggerToken).toString('base64') }
            : {}),
          ...(opts.arg.length || opts.secretArg.length
            ? { arguments: args({ arg: opts.arg, secretArg: opts.secretArg } as TaskOptions) }
            : {}),
          ...(opts.set.length
            ? { values: opts.set.map((s) => ({ ...setValue(s, '--set'), isSecret: false })) }
            : {}),
        };
        const run = await client.json<{ properties: { runId: string } }>('POST', '/scheduleRun', {
          type: 'TaskRunRequest',
          taskId: opts.name,
          ...(Object.keys(overrides).length ? { overrideTaskStepProperties: overrides } : {}),
        });
        process.stderr.write(`Queued a run with ID: ${run.properties.runId}\n`);
        if (!opts.logs) {
          print(run);
          return;
        }
        process.stderr.write('Waiting for an agent...\n');
        exit.code = await streamRun(run.properties.runId);
      },
    );

  const timer = task.command('timer').description('Timer triggers of a task: add, update, remove, list.');
  const timerCommand = (name: string, description: string): Command =>
    timer.command(name).description(description).requiredOption('-n, --name <name>', 'the task name');

  timerCommand('add', 'Add a timer trigger.')
    .requiredOption('--timer-name <name>', 'the timer name')
    .requiredOption('--schedule <cron>', 'five fields, or six with seconds first (UTC)')
    .option('--enabled <bool>', 'whether it fires', 'true')
    .action(async (opts: { name: string; timerName: string; schedule: string; enabled: string }) => {
      const current = await client.json<TaskResource>('GET', path(opts.name));
      if (current.properties.trigger?.timerTriggers?.some((t) => t.name === opts.timerName)) {
        throw new CliError(`timer '${opts.timerName}' already exists: use refit task timer update`);
      }
      const timerTriggers = [
        {
          name: opts.timerName,
          schedule: opts.schedule,
          status: bool(opts.enabled, '--enabled') ? 'Enabled' : 'Disabled',
        },
      ];
      print(await client.json('PATCH', path(opts.name), { properties: { trigger: { timerTriggers } } }));
    });

  timerCommand('update', 'Change a timer trigger.')
    .requiredOption('--timer-name <name>', 'the timer name')
    .option('--schedule <cron>', 'the new schedule')
    .option('--enabled <bool>', 'whether it fires')
    .action(async (opts: { name: string; timerName: string; schedule?: string; enabled?: string }) => {
      const current = await client.json<TaskResource>('GET', path(opts.name));
      const existing = current.properties.trigger?.timerTriggers?.find((t) => t.name === opts.timerName);
      if (!existing) throw new CliError(`task '${opts.name}' has no timer '${opts.timerName}'`);
      const updated = {
        name: existing.name,
        schedule: opts.schedule ?? existing.schedule,
        status:
          opts.enabled === undefined
            ? (existing.status ?? 'Enabled')
            : bool(opts.enabled, '--enabled')
              ? 'Enabled'
              : 'Disabled',
      };
      print(
        await client.json('PATCH', path(opts.name), {
          properties: { trigger: { timerTriggers: [updated] } },
        }),
      );
    });

  timerCommand('remove', 'Remove a timer trigger.')
    .requiredOption('--timer-name <name>', 'the timer name')
    .action(async (opts: { name: string; timerName: string }) => {
      const current = await client.json<TaskResource>('GET', path(opts.name));
      const timers = current.properties.trigger?.timerTriggers ?? [];
      if (!timers.some((t) => t.name === opts.timerName))
        throw new CliError(`task '${opts.name}' has no timer '${opts.timerName}'`);
      // As az does: PUT the whole task without the timer (secrets left out of the GET keep their values).
      const { id: _id, type: _type, ...rest } = current;
      const body = {
        ...rest,
        properties: {
          ...current.properties,
          trigger: {
            ...current.properties.trigger,
            timerTriggers: timers.filter((t) => t.name !== opts.timerName),
          },
        },
      };
      delete (body.properties as Record<string, unknown>).provisioningState;
      delete (body.properties as Record<string, unknown>).creationDate;
      print(await client.json('PUT', path(opts.name), body));
    });

  timerCommand('list', 'List the timer triggers of a task.').action(async (opts: { name: string }) => {
    const current = await client.json<TaskResource>('GET', path(opts.name));
    print(current.properties.trigger?.timerTriggers ?? []);
  });
}
