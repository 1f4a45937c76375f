import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Command, CommanderError } from 'commander';
import { collect, keyValue, outputOption, parsePlatform, print } from './args';
import { CliError, RefitClient } from './client';
import { RUN_COLUMNS, runRow, table, tsv, type RunResource } from './format';
import { followQueued, isRemoteSource, streamRun, uploadSource, type WaitOptions } from './run-stream';
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

interface BuildOptions extends WaitOptions {
  image: string[];
  file?: string;
  buildArg: string[];
  secretBuildArg: string[];
  target?: string;
  platform: string;
  push: boolean;
  timeout?: string;
  noCache?: boolean;
}

/**
 * Uploads a local source as az acr build does: `-f` is resolved from the current directory (without it,
 * SOURCE/Dockerfile), and a Dockerfile outside SOURCE goes into the upload at its root under a unique name.
 * Returns the source location and the Dockerfile's path in it.
 */
async function uploadBuildSource(
  client: RefitClient,
  source: string,
  file: string | undefined,
): Promise<{ sourceLocation: string; dockerfile: string }> {
  const dir = resolve(source);
  if (!(await stat(dir).catch(() => null))?.isDirectory())
    throw new CliError(`the source '${source}' is not a directory, a git URL or a tarball URL`);
  const local = file === undefined ? join(dir, 'Dockerfile') : resolve(file);
  if (!(await stat(local).catch(() => null))?.isFile()) {
    throw new CliError(
      `Unable to find '${file ?? join(source, 'Dockerfile')}'` +
        (file === undefined ? '' : ': -f is resolved from the current directory, as az acr build does'),
    );
  }
  const inside = relative(dir, local);
  if (inside && !inside.startsWith('..') && !isAbsolute(inside)) {
    const dockerfile = inside.split(sep).join('/');
    return { sourceLocation: await uploadSource(client, dir, dockerfile), dockerfile };
  }
  const dockerfile = `${randomUUID().replace(/-/g, '')}_${basename(local)}`;
  return {
    sourceLocation: await uploadSource(client, dir, dockerfile, { path: local, name: dockerfile }),
    dockerfile,
  };
}

async function build(client: RefitClient, source: string, opts: BuildOptions): Promise<number> {
  let sourceLocation: string;
  let dockerfile: string;
  if (isRemoteSource(source)) {
    sourceLocation = source;
    dockerfile = opts.file ?? 'Dockerfile';
  } else {
    ({ sourceLocation, dockerfile } = await uploadBuildSource(client, source, opts.file));
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
  return followQueued(client, run, opts);
}

/** A `$filter` string literal. */
function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * `--image REPO[:TAG|@DIGEST]` as az takes it (no tag means latest): a `$filter` term on the images runs pushed.
 * az resolves the tag to its digest first; Refit's runs record the tag they pushed, so the tag is matched as given.
 */
function imageFilter(image: string): string {
  const last = image.slice(image.lastIndexOf('/') + 1);
  const ref = image.includes('@') || last.includes(':') ? image : `${image}:latest`;
  return `contains(outputImageManifests, ${literal(ref)})`;
}

function runsQuery(top: string, filters: string[]): string {
  return `/runs?$top=${encodeURIComponent(top)}${filters.length ? `&$filter=${encodeURIComponent(filters.join(' and '))}` : ''}`;
}

/** Follows nextLinks until `top` runs are read (a filter checked per run may return short pages). */
async function listRuns(client: RefitClient, top: number, filters: string[]): Promise<RunResource[]> {
  const runs: RunResource[] = [];
  let next: string | undefined = runsQuery(String(top), filters);
  while (next && runs.length < top) {
    const page: { value: RunResource[]; nextLink?: string } = await client.json('GET', next);
    runs.push(...page.value);
    next = page.nextLink ? page.nextLink.slice(page.nextLink.indexOf('/api/') + 4) : undefined;
  }
  return runs.slice(0, top);
}

async function lastRunId(client: RefitClient, taskName?: string, image?: string): Promise<string> {
  const filters = [
    ...(taskName ? [`taskName eq ${literal(taskName)}`] : []),
    ...(image ? [imageFilter(image)] : []),
  ];
  const run = (await listRuns(client, 1, filters))[0];
  if (!run) {
    const what = [
      ...(taskName ? [`of task '${taskName}'`] : []),
      ...(image ? [`that pushed '${image}'`] : []),
    ];
    throw new CliError(what.length ? `there is no run ${what.join(' ')}` : 'there are no runs yet');
  }
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
    .option(
      '-f, --file <path>',
      'the Dockerfile: for a local source, a path from the current directory (default SOURCE/Dockerfile), which may lie outside the source; for a remote one, relative to it',
    )
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
    .option('--no-logs', 'wait for the run without streaming its log; exit 1 if it does not succeed')
    .option('--no-wait', 'return after queueing, printing the queued run')
    .option('--no-format', 'print the log as it is (colour sequences kept even when not on a terminal)')
    .option('--timeout <seconds>', 'the run timeout (300-28800)')
    .action(async (source: string, opts: BuildOptions & { cache: boolean }) => {
      exit.code = await build(client, source, { ...opts, noCache: !opts.cache });
    });

  addRunCommand(cli, client, exit);
  addScanCommand(cli);
  addDepsCommand(cli, client);
  addWatchCommand(cli, client);

  // az acr agentpool and az acr taskrun (both preview in az) have no counterpart: say so rather than "unknown command".
  const outOfScope: Record<string, string> = {
    agentpool:
      'refit agentpool is not supported: Refit has no agent pools (az acr agentpool); runs go to the executor this deployment is configured with (local concurrency REFIT_LOCAL_CONCURRENCY, or Azure Container Instances)',
    taskrun:
      'refit taskrun is not supported: Refit has no taskRuns resource (az acr taskrun); run a task with refit task run and follow it with refit task list-runs, show-run and logs',
  };
  for (const [name, message] of Object.entries(outOfScope)) {
    cli
      .command(name)
      .description(`Not supported (az acr ${name}): prints why.`)
      .argument('[args...]')
      .allowUnknownOption()
      .helpOption(false)
      .action(() => {
        throw new CliError(message);
      });
  }

  const task = cli.command('task').description('Tasks and runs (az acr task).');
  addTaskCommands(task, client, exit);

  task
    .command('list-runs')
    .description('List runs, newest first.')
    .option('-n, --name <task>', 'only the runs of this task')
    .option('--run-status <status>', 'only runs in this status (Queued, Running, Succeeded, Failed, ...)')
    .option('--top <n>', 'how many runs', '15')
    .option('--image <repo:tag>', 'only the runs that pushed this image (REPO:TAG or REPO@DIGEST)')
    .addOption(outputOption())
    .action(
      async (opts: { name?: string; runStatus?: string; top: string; image?: string; output: Output }) => {
        const top = Number(opts.top);
        if (!Number.isInteger(top) || top < 1)
          throw new CliError(`--top must be a whole number, got '${opts.top}'`);
        const filters = [
          ...(opts.name ? [`taskName eq ${literal(opts.name)}`] : []),
          ...(opts.runStatus ? [`status eq ${literal(opts.runStatus)}`] : []),
          ...(opts.image ? [imageFilter(opts.image)] : []),
        ];
        printRuns(await listRuns(client, top, filters), opts.output);
      },
    );

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
    .option('--image <repo:tag>', 'the last run that pushed this image (REPO:TAG or REPO@DIGEST)')
    .option('--no-format', 'print the log as it is (colour sequences kept even when not on a terminal)')
    .action(async (opts: { runId?: string; name?: string; image?: string; format: boolean }) => {
      let runId = opts.runId;
      if (!runId) {
        runId = await lastRunId(client, opts.name, opts.image);
        process.stderr.write(`Showing logs of the last created run.\nRun ID: ${runId}\n`);
      }
      await streamRun(client, runId, !opts.format);
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
