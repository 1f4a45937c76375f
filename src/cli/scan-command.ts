import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { scanDockerfile } from '../dockerfile/scan';
import { collect } from './args';
import { CliError, type RefitClient } from './client';

/** `refit deps IMAGE`: which tasks are built from IMAGE, and from which digest. */
export function addDepsCommand(cli: Command, client: RefitClient): void {
  cli
    .command('deps')
    .description('Which tasks are built from an image, and from which digest (the reverse dependency index).')
    .argument('<image>', 'an image reference, e.g. node:20 or myreg.azurecr.io/base:1')
    .option('--updates', 'show the observed updates of the image and what each triggered, instead')
    .action(async (image: string, opts: { updates?: boolean }) => {
      const path = opts.updates ? '/imageUpdates' : '/dependencies';
      const result = await client.json('GET', `${path}?image=${encodeURIComponent(image)}`);
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    });
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
