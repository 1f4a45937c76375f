import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { scanDockerfile, type BaseImageDependency } from '../dockerfile/scan';
import type { Platform } from '../runs/run';
import { platformSchema } from '../runs/schedule-run';
import { DEFAULT_LIMITS } from '../config';
import { LOCAL_POLICY } from '../net/address-policy';
import { GuardedFetch } from '../net/guarded-fetch';
import { RegistryClient } from '../registry/client';
import { collect, keyValue, parsePlatform } from './args';
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

/** Registries named in REFIT_INSECURE_REGISTRIES (plain HTTP besides those on loopback). */
function insecureRegistries(): string[] {
  return (process.env.REFIT_INSECURE_REGISTRIES ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
}

/** Fills each dependency's digest (and the digest of the platform) from its registry. */
async function resolveDependencies(
  deps: readonly BaseImageDependency[],
  platformText: string,
): Promise<(BaseImageDependency & { platformDigest: string })[]> {
  const parsed = platformSchema.safeParse(parsePlatform(platformText));
  if (!parsed.success) throw new CliError(`--platform: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const platform = parsed.data as Platform;
  // The command line runs on the user's own machine: its registries may be on loopback or a private network.
  const http = new GuardedFetch(LOCAL_POLICY);
  const client = new RegistryClient(insecureRegistries(), http, DEFAULT_LIMITS.registryResponseBytes);
  const missing: string[] = [];
  const resolved = await Promise.all(
    deps.map(async (d) => {
      const name = `${d.registry}/${d.repository}${d.digest ? `@${d.digest}` : `:${d.tag ?? 'latest'}`}`;
      const found = await client.resolve(d, platform).catch((err: unknown) => {
        missing.push(`${name}: ${(err as Error).message}`);
        return null;
      });
      if (!found) {
        if (!missing.some((m) => m.startsWith(`${name}:`)))
          missing.push(`${name}: not found (or not readable anonymously)`);
        return { ...d, platformDigest: '' };
      }
      return { ...d, digest: found.digest, platformDigest: found.platformDigest };
    }),
  ).finally(() => http.close()); // kept-alive connections would hold the command open
  if (missing.length) throw new CliError(`could not resolve ${missing.join('; ')}`);
  return resolved;
}

/** `refit scan`: the base-image dependencies of a Dockerfile, found statically (no network unless --resolve). */
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
    .option('--resolve', "fill in each image's digest (and the digest of --platform) from its registry")
    .option('--platform <os/arch>', 'the platform whose digest --resolve reports', 'linux/amd64')
    .action(
      async (
        dir: string,
        opts: { file: string; buildArg: string[]; target?: string; resolve?: boolean; platform: string },
      ) => {
        const path = resolve(dir, opts.file);
        const text = await readFile(path, 'utf8').catch(() => {
          throw new CliError(`no Dockerfile at '${path}'`);
        });
        const buildArgs: Record<string, string> = {};
        for (const entry of opts.buildArg) {
          const { name, value } = keyValue(entry, '--build-arg');
          buildArgs[name] = value;
        }
        let baseImageDependencies: BaseImageDependency[];
        try {
          baseImageDependencies = scanDockerfile(text, { buildArgs, target: opts.target });
        } catch (err) {
          throw new CliError(`${opts.file}: ${(err as Error).message}`);
        }
        if (opts.resolve)
          baseImageDependencies = await resolveDependencies(baseImageDependencies, opts.platform);
        process.stdout.write(JSON.stringify({ baseImageDependencies }, null, 2) + '\n');
      },
    );
}
