import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../config';
import { childEnv } from '../../process/child-env';
import { endLeftGroups, type LeftGroups } from '../../process/process-groups';
import { runProcess } from '../../process/run-process';

/** Where the local executor records the process groups of the commands it has running (see ProcessGroups). */
export function processGroupsDir(config: Config): string {
  return join(config.workDir, '.process-groups');
}

/** What {@link removeLeftovers} found and removed. */
export interface Leftovers extends LeftGroups {
  /** Working containers removed (only from a storage of the deployment's own). */
  readonly containers: number;
  /** Run folders removed from the work folder. */
  readonly workFolders: number;
}

/** Runs buildah on the deployment's own storage; its output, or an error naming the call. */
async function buildah(config: Config, args: readonly string[]): Promise<string> {
  let output = '';
  const conf = config.containersRegistriesConf;
  const result = await runProcess('buildah', [...config.buildahGlobalArgs, ...args], {
    env: childEnv(conf ? { CONTAINERS_REGISTRIES_CONF: conf } : {}),
    onOutput: (chunk) => (output += chunk),
  });
  if (result.code !== 0)
    throw new Error(`buildah ${args.join(' ')} failed (${result.code ?? result.signal}): ${output.trim()}`);
  return output;
}

/**
 * Removes every working container from the deployment's own buildah storage (none when it has none: a storage
 * shared with others holds containers that are not ours to remove). Safe only when no build of this deployment runs.
 */
export async function removeWorkingContainers(config: Config): Promise<number> {
  if (!config.buildahStorage) return 0;
  const ids = (await buildah(config, ['containers', '--quiet'])).split('\n').filter(Boolean);
  if (ids.length > 0) await buildah(config, ['rm', '--all']);
  return ids.length;
}

/**
 * What a host that stopped without cleaning up (killed, or crashed) left, removed before the next one starts builds:
 * the process groups it had running (ended), the working containers and, after a crash, every image of the
 * deployment's own buildah storage (the images its runs built and never removed; bases are pulled again), and the
 * runs' work folders.
 */
export async function removeLeftovers(config: Config, afterCrash: boolean): Promise<Leftovers> {
  const groups = await endLeftGroups(processGroupsDir(config));
  const containers = await removeWorkingContainers(config);
  if (config.buildahStorage)
    await buildah(config, afterCrash ? ['rmi', '--all', '--force'] : ['rmi', '--prune']);
  const entries = await readdir(config.workDir).catch(() => [] as string[]);
  await Promise.all(
    entries.map((entry) => rm(join(config.workDir, entry), { recursive: true, force: true })),
  );
  const workFolders = entries.filter((entry) => !entry.startsWith('.')).length;
  return { ...groups, containers, workFolders };
}
