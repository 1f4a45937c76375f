import type { Command } from 'commander';
import { print } from './args';
import { CliError, type RefitClient } from './client';
import { bool, taskPath as path, type TaskResource } from './task-resource';

/** `refit task timer add|update|remove|list` (az acr task timer …). */
export function addTimerCommands(task: Command, client: RefitClient): void {
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
