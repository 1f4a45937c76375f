import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { collect, keyValue, outputOption, parsePlatform, print } from './args';
import { CliError, RefitClient } from './client';
import { RUN_COLUMNS, runRow, table, tsv, type RunResource } from './format';
import { finishedCode, isRemoteSource, streamRun, uploadSource } from './run-stream';
import { addRunCommand } from './run-command';
import { addDepsCommand, addScanCommand } from './scan-command';
import { addTaskCommands } from './task-commands';
import { addWatchCommand } from './watch-command';

type Output = 'json' | 'table' | 'tsv';

function printRuns(runs: RunResource[], output: Output): void {
  if (output === 'table') process.stdout.write(table(RUN_COLUMNS, runs.map(runRow)) + '\n');
  else if (output === 'tsv') process.stdout.write(tsv(runs.map(runRow)) + (runs.length ? '\n' : ''));
  else print(runs);
}

interface BuildOptions {
  image: string[];
  file?: string;
  buildArg: string[];
  secretBuildArg: string[];
  target?: string;
  platform: string;
  push: boolean;
  logs: boolean;
  timeout?: string;
  noCache?: boolean;
}

async function build(client: RefitClient, source: string, opts: BuildOptions): Promise<number> {
  const dockerfile = opts.file ?? 'Dockerfile';
  let sourceLocation: string;
  if (isRemoteSource(source)) {
    sourceLocation = source;
  } else {
    const dir = resolve(source);
    if (!(await stat(dir).catch(() => null))?.isDirectory())
      throw new CliError(`the source '${source}' is not a directory, a git URL or a tarball URL`);
    if (!(await stat(resolve(dir, dockerfile)).catch(() => null))?.isFile()) {
      throw new CliError(
        `no Dockerfile at '${resolve(dir, dockerfile)}': give its path relative to the source with -f`,
      );
    }
    sourceLocation = await uploadSource(client, dir, dockerfile);
  }
  if (opts.image.length === 0)
    process.stderr.write("'--image or -t' is not provided. Skipping image push after build.\n");
  const timeout = opts.timeout === undefined ? undefined : Number(opts.timeout);
  if (timeout !== undefined && !Number.isInteger(timeout))
    throw new CliError(`--timeout '${opts.timeout}' must be whole seconds`);
  const run = await client.json<RunResource>('POST', '/scheduleRun', {
    type: 'DockerBuildRequest',
    imageNames: opts.image,
    isPushEnabled: opts.push && opts.image.length > 0,
    noCache: opts.noCache ?? false,
    dockerFilePath: dockerfile,
    ...(opts.target ? { target: opts.target } : {}),
    arguments: [
      ...opts.buildArg.map((a) => ({ ...keyValue(a, '--build-arg'), isSecret: false })),
      ...opts.secretBuildArg.map((a) => ({ ...keyValue(a, '--secret-build-arg'), isSecret: true })),
    ],
    platform: parsePlatform(opts.platform),
    ...(timeout !== undefined ? { timeout } : {}),
    sourceLocation,
  });
  process.stderr.write(`Queued a build with ID: ${run.properties.runId}\n`);
  if (!opts.logs) {
    print(run);
    return 0;
  }
  process.stderr.write('Waiting for an agent...\n');
  return finishedCode(await streamRun(client, run.properties.runId));
}

async function lastRunId(client: RefitClient, taskName?: string): Promise<string> {
  const filter = taskName
    ? `&$filter=${encodeURIComponent(`taskName eq '${taskName.replace(/'/g, "''")}'`)}`
    : '';
  const page = await client.json<{ value: RunResource[] }>('GET', `/runs?$top=1${filter}`);
  const run = page.value[0];
  if (!run) throw new CliError(taskName ? `task '${taskName}' has no runs` : 'there are no runs yet');
  return run.properties.runId;
}

function program(client: RefitClient, exit: { code: number }): Command {
  const cli = new Command('refit')
    .description(
      'Refit: self-hosted Azure Container Registry Tasks. Talks to REFIT_URL (default http://127.0.0.1:7071).',
    )
    .exitOverride()
    .showHelpAfterError();

  cli
    .command('build')
    .description(
      'Queue a quick build (az acr build): build and push an image from a local directory, git URL or tarball URL.',
    )
    .argument('<source>', 'a local directory, a git URL (url#branch:folder) or a tarball URL')
    .option(
      '-t, --image <name>',
      'image name and tag; {{.Run.ID}}, {{.Run.Registry}}, {{.Run.Date}} are rendered (repeatable)',
      collect,
      [],
    )
    .option('-f, --file <path>', 'the Dockerfile, relative to the source', undefined)
    .option('--build-arg <name=value>', 'a build argument (repeatable)', collect, [])
    .option(
      '--secret-build-arg <name=value>',
      'a secret build argument, masked in logs (repeatable)',
      collect,
      [],
    )
    .option('--target <stage>', 'the stage of a multi-stage Dockerfile to build')
    .option('--platform <os/arch>', 'the platform to build for', 'linux/amd64')
    .option('--no-push', 'build without pushing')
    .option('--no-cache', 'do not use the build cache')
    .option('--no-logs', 'return after queueing instead of streaming the log')
    .option('--timeout <seconds>', 'the run timeout (300-28800)')
    .action(async (source: string, opts: BuildOptions & { cache: boolean }) => {
      exit.code = await build(client, source, { ...opts, noCache: !opts.cache });
    });

  addRunCommand(cli, client, exit);
  addScanCommand(cli);
  addDepsCommand(cli, client);
  addWatchCommand(cli, client);

  const task = cli.command('task').description('Tasks and runs (az acr task).');
  addTaskCommands(task, client, exit, async (runId) => finishedCode(await streamRun(client, runId)));

  task
    .command('list-runs')
    .description('List runs, newest first.')
    .option('-n, --name <task>', 'only the runs of this task')
    .option('--run-status <status>', 'only runs in this status (Queued, Running, Succeeded, Failed, ...)')
    .option('--top <n>', 'how many runs', '15')
    .addOption(outputOption())
    .action(async (opts: { name?: string; runStatus?: string; top: string; output: Output }) => {
      const filters = [
        ...(opts.name ? [`taskName eq '${opts.name.replace(/'/g, "''")}'`] : []),
        ...(opts.runStatus ? [`status eq '${opts.runStatus.replace(/'/g, "''")}'`] : []),
      ];
      const query = `?$top=${encodeURIComponent(opts.top)}${filters.length ? `&$filter=${encodeURIComponent(filters.join(' and '))}` : ''}`;
      const page = await client.json<{ value: RunResource[] }>('GET', `/runs${query}`);
      printRuns(page.value, opts.output);
    });

  task
    .command('show-run')
    .description('Show one run.')
    .requiredOption('--run-id <id>', 'the run ID')
    .addOption(outputOption())
    .action(async (opts: { runId: string; output: Output }) => {
      const run = await client.json<RunResource>('GET', `/runs/${encodeURIComponent(opts.runId)}`);
      if (opts.output === 'json') print(run);
      else printRuns([run], opts.output);
    });

  task
    .command('logs')
    .description(
      'Show a run log: streams a running run, prints a finished one. Without --run-id, the last created run.',
    )
    .option('--run-id <id>', 'the run ID')
    .option('-n, --name <task>', 'the last run of this task')
    .action(async (opts: { runId?: string; name?: string }) => {
      let runId = opts.runId;
      if (!runId) {
        runId = await lastRunId(client, opts.name);
        process.stderr.write(`Showing logs of the last created run.\nRun ID: ${runId}\n`);
      }
      await streamRun(client, runId);
    });

  task
    .command('cancel-run')
    .description('Cancel a queued or running run.')
    .requiredOption('--run-id <id>', 'the run ID')
    .action(async (opts: { runId: string }) => {
      await client.json('POST', `/runs/${encodeURIComponent(opts.runId)}/cancel`);
      process.stderr.write(`Run '${opts.runId}' has been canceled.\n`);
    });

  task
    .command('update-run')
    .description('Change whether a run is archived.')
    .requiredOption('--run-id <id>', 'the run ID')
    .requiredOption('--no-archive <bool>', 'true: do not archive the run; false: archive it')
    .action(async (opts: { runId: string; archive: string }) => {
      const value = String(opts.archive).toLowerCase();
      if (value !== 'true' && value !== 'false')
        throw new CliError(`--no-archive must be true or false, got '${opts.archive}'`);
      print(
        await client.json('PATCH', `/runs/${encodeURIComponent(opts.runId)}`, {
          isArchiveEnabled: value === 'false',
        }),
      );
    });

  return cli;
}

/** The `refit` command line; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const exit = { code: 0 };
  try {
    await program(new RefitClient(), exit).parseAsync([...argv]);
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CliError) {
      process.stderr.write(`refit: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
