import type { Command } from 'commander';
import { collect, outputOption, print, setValue } from './args';
import { CliError, type RefitClient } from './client';
import { table, tsv, type RunResource } from './format';
import { followQueued } from './run-stream';
import { args, createBody, stepOf, taskOptions, updateBody, type TaskOptions } from './task-body';
import { taskPath, type TaskResource } from './task-resource';
import { addTimerCommands } from './task-timer-commands';
import { addCredentialCommands } from './task-credential-commands';

type Output = 'json' | 'table' | 'tsv';

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
/** `refit task create|update|show|list|delete|run`, `refit task timer …` and `refit task credential …`. */
export function addTaskCommands(task: Command, client: RefitClient, exit: { code: number }): void {
  const path = taskPath;

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
    .description('Show a task (secret values only with --with-secure-properties).')
    .requiredOption('-n, --name <name>', 'the task name')
    .option(
      '--with-secure-properties',
      "also show the task's secret values (secret arguments and values, tokens, registry passwords), as az does",
    )
    .action(async (opts: { name: string; withSecureProperties?: boolean }) =>
      print(
        // Tasks_GetDetails: the one answer that carries the secrets, to a key holder who asks for them.
        await client.json(
          opts.withSecureProperties ? 'POST' : 'GET',
          `${path(opts.name)}${opts.withSecureProperties ? '/listDetails' : ''}`,
        ),
      ),
    );

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
    .option(
      '--set-secret <name=value>',
      'a secret task value, masked in the log (multi-step tasks; repeatable)',
      collect,
      [],
    )
    .option('-f, --file <path>', 'override the Dockerfile')
    .option('-c, --context <source>', 'override the context')
    .option('--target <stage>', 'override the target stage')
    .option('--update-trigger-token <token>', 'a token sent with later base-image update notifications')
    .option('--no-logs', 'wait for the run without streaming its log; exit 1 if it does not succeed')
    .option('--no-wait', 'return after queueing, printing the queued run')
    .option('--no-format', 'print the log as it is (colour sequences kept even when not on a terminal)')
    .action(
      async (opts: {
        name: string;
        updateTriggerToken?: string;
        arg: string[];
        secretArg: string[];
        set: string[];
        setSecret: string[];
        file?: string;
        context?: string;
        target?: string;
        logs: boolean;
        wait: boolean;
        format: boolean;
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
          ...(opts.set.length || opts.setSecret.length
            ? {
                values: [
                  ...opts.set.map((s) => ({ ...setValue(s, '--set'), isSecret: false })),
                  ...opts.setSecret.map((s) => ({ ...setValue(s, '--set-secret'), isSecret: true })),
                ],
              }
            : {}),
        };
        const run = await client.json<RunResource>('POST', '/scheduleRun', {
          type: 'TaskRunRequest',
          taskId: opts.name,
          ...(Object.keys(overrides).length ? { overrideTaskStepProperties: overrides } : {}),
        });
        process.stderr.write(`Queued a run with ID: ${run.properties.runId}\n`);
        exit.code = await followQueued(client, run, opts);
      },
    );

  addTimerCommands(task, client);
  addCredentialCommands(task, client);
}
