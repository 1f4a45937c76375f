import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { scanDockerfile } from '../dockerfile/scan';
import { CliError } from './client';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `refit scan`: the base-image dependencies of a Dockerfile, found statically (no network). */
export function addScanCommand(cli: Command): void {
  cli
    .command('scan')
    .description(
      'Print the base images a Dockerfile is built from (RunTime: behind the final or target stage; BuildTime: every other).',
    )
    .argument('[dir]', 'the build context', '.')
    .option('-f, --file <path>', 'the Dockerfile, relative to the context', 'Dockerfile')
    .option('--build-arg <name=value>', 'a build argument (repeatable)', collect, [])
    .option('--target <stage>', 'the stage to build')
    .action(async (dir: string, opts: { file: string; buildArg: string[]; target?: string }) => {
      const path = resolve(dir, opts.file);
      const text = await readFile(path, 'utf8').catch(() => {
        throw new CliError(`no Dockerfile at '${path}'`);
      });
      const buildArgs: Record<string, string> = {};
      for (const entry of opts.buildArg) {
        const eq = entry.indexOf('=');
        if (eq <= 0) throw new CliError(`--build-arg '${entry}' must be NAME=VALUE`);
        buildArgs[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      try {
        const baseImageDependencies = scanDockerfile(text, { buildArgs, target: opts.target });
        process.stdout.write(JSON.stringify({ baseImageDependencies }, null, 2) + '\n');
      } catch (err) {
        throw new CliError(`${opts.file}: ${(err as Error).message}`);
      }
    });
}
