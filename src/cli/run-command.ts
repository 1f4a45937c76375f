import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AcbError } from '../acb/errors';
import { loadTaskFile } from '../acb/task-file';
import type { Platform } from '../runs/run';
import { platformSchema } from '../runs/schedule-run';
import { parseValuesFile, templateData } from '../runs/task-file-run';
import { collect, intOption, parsePlatform, print, readLocal, setValue } from './args';
import { CliError, type RefitClient } from './client';
import type { RunResource } from './format';
import { followQueued, isRemoteSource, uploadSource, type WaitOptions } from './run-stream';

interface RunOptions extends WaitOptions {
  file?: string;
  set: string[];
  setSecret: string[];
  values?: string;
  cmd?: string;
  timeout?: string;
  platform: string;
  dryRun?: boolean;
}

/** The task file az acr run --cmd generates: one cmd step, run where the image wants (no workdir override). */
export function cmdTaskFile(cmd: string, timeout: number): string {
  return [
    'version: v1.1.0',
    'steps:',
    `  - cmd: ${JSON.stringify(cmd)}`,
    '    disableWorkingDirectoryOverride: true',
    `    timeout: ${timeout}`,
    '',
  ].join('\n');
}

/**
 * `--dry-run`: the task file rendered and validated here, as the run would see it (Run.ID is `dryrun`, the
 * registry is REFIT_REGISTRY or the local stack's), printed as the step graph.
 */
async function dryRun(
  text: string,
  valuesText: string,
  values: { name: string; value: string }[],
  platform: string,
): Promise<void> {
  const parsed = platformSchema.safeParse(parsePlatform(platform));
  if (!parsed.success) throw new CliError(`--platform: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  try {
    const task = await loadTaskFile(text, {
      data: templateData(
        {
          runId: 'dryrun',
          registry: process.env.REFIT_REGISTRY ?? 'localhost:5000',
          date: new Date(),
          platform: parsed.data as Platform,
          sharedVolume: '/workspace',
        },
        values,
        parseValuesFile(valuesText, '--values'),
      ),
      readAliasSource: async (src) => {
        if (/^https?:\/\//i.test(src))
          return (await fetch(src, { signal: AbortSignal.timeout(2000) })).text();
        return readLocal(src, 'the alias file');
      },
    });
    for (const w of task.warnings) process.stderr.write(`Warning: ${w}\n`);
    print({
      steps: task.steps.map((s) => ({
        id: s.id,
        when: s.dependsOn,
        ...(s.type === 'build' ? { build: s.build } : s.type === 'cmd' ? { cmd: s.cmd } : { push: s.push }),
      })),
    });
  } catch (err) {
    if (err instanceof AcbError) throw new CliError(err.message);
    throw err;
  }
}

async function run(client: RefitClient, source: string, opts: RunOptions): Promise<number> {
  if (opts.cmd && opts.file)
    throw new CliError(
      'refit run can run with either --cmd myCommand /dev/null or -f myFile mySourceLocation, but not both',
    );
  const timeout = intOption(opts.timeout, '--timeout');
  const values = [
    ...opts.set.map((s) => ({ ...setValue(s, '--set'), isSecret: false })),
    ...opts.setSecret.map((s) => ({ ...setValue(s, '--set-secret'), isSecret: true })),
  ];
  const noSource = source === '/dev/null';
  const file = opts.file ?? 'acb.yaml';
  const local = !noSource && !isRemoteSource(source);
  if (local && !(await stat(resolve(source)).catch(() => null))?.isDirectory())
    throw new CliError(`the source '${source}' is not a directory, a git URL, a tarball URL or /dev/null`);

  // The task file's text, when it is on this machine (always with /dev/null or --cmd).
  let text: string | undefined;
  let valuesText = '';
  if (opts.cmd) text = cmdTaskFile(opts.cmd, timeout ?? 3600);
  else if (noSource) text = await readLocal(file, 'the task file');
  else if (local) text = await readLocal(resolve(source, file), 'the task file');
  if (opts.values) {
    if (noSource || opts.cmd) valuesText = await readLocal(opts.values, 'the values file');
    else if (local) valuesText = await readLocal(resolve(source, opts.values), 'the values file');
  }

  if (opts.dryRun) {
    if (text === undefined)
      throw new CliError('--dry-run reads the task file on this machine: give a local folder or /dev/null');
    await dryRun(text, valuesText, values, opts.platform);
    return 0;
  }

  const sourceLocation = noSource
    ? undefined
    : local
      ? await uploadSource(client, resolve(source), opts.cmd ? '.dockerignore' : file)
      : source;
  const common = {
    platform: parsePlatform(opts.platform),
    ...(timeout !== undefined ? { timeout } : {}),
    values,
    ...(sourceLocation ? { sourceLocation } : {}),
  };
  const body =
    text !== undefined && (noSource || opts.cmd)
      ? {
          type: 'EncodedTaskRunRequest',
          ...common,
          encodedTaskContent: Buffer.from(text).toString('base64'),
          ...(valuesText ? { encodedValuesContent: Buffer.from(valuesText).toString('base64') } : {}),
        }
      : {
          type: 'FileTaskRunRequest',
          ...common,
          taskFilePath: file,
          ...(opts.values ? { valuesFilePath: opts.values } : {}),
        };
  const queued = await client.json<RunResource>('POST', '/scheduleRun', body);
  process.stderr.write(`Queued a run with ID: ${queued.properties.runId}\n`);
  return followQueued(client, queued, opts);
}

/** `refit run` (az acr run): a multi-step task file, or one command, run once. */
export function addRunCommand(cli: Command, client: RefitClient, exit: { code: number }): void {
  cli
    .command('run')
    .description(
      'Queue a quick run (az acr run): the steps of an ACR Tasks YAML file (acb.yaml), or one --cmd, in a source or none (/dev/null).',
    )
    .argument('<source>', 'a local directory, a git URL, a tarball URL, or /dev/null for no source')
    .option(
      '-f, --file <path>',
      'the task file: relative to a source, or a local file (or - for stdin) with /dev/null',
    )
    .option(
      '--set <name=value>',
      'a value for {{.Values.name}} (repeatable; wins over --values)',
      collect,
      [],
    )
    .option('--set-secret <name=value>', 'a secret value, masked in the log (repeatable)', collect, [])
    .option('--values <path>', 'a YAML values file (relative to a source, or local with /dev/null)')
    .option('--cmd <command>', 'run one command (an image and its arguments) instead of a task file')
    .option('--timeout <seconds>', 'the run timeout (300-28800)')
    .option('--platform <os/arch>', 'the platform', 'linux/amd64')
    .option(
      '--dry-run',
      'validate the task file and print its steps and what each waits for, without running',
    )
    .option('--no-logs', 'wait for the run without streaming its log; exit 1 if it does not succeed')
    .option('--no-wait', 'return after queueing, printing the queued run')
    .option('--no-format', 'print the log as it is (colour sequences kept even when not on a terminal)')
    .action(async (source: string, opts: RunOptions) => {
      exit.code = await run(client, source, opts);
    });
}
