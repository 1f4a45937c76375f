import type { RecordedDependency } from '../../dependencies/dependency-index';
import { scanDockerfile } from '../../dockerfile/scan';
import { log } from '../../log';
import type { RegistryClient } from '../../registry/client';
import type { RegistryCredentials } from '../../registry/auth';
import { parseImageReference } from '../../registry/image-reference';
import type { OutputImage, Platform } from '../../runs/run';

/** What a build in a container group was made from, as its report gives it. */
export interface BuiltFrom {
  readonly runId: string;
  /** The Dockerfile the build used (its report carries it). */
  readonly dockerfile: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly target: string | undefined;
  readonly platform: Platform;
  /** Logins for registries other than the home one, by login server. */
  readonly registries: Readonly<Record<string, RegistryCredentials>> | undefined;
}

/**
 * The bases a build in ACI used, scanned from its Dockerfile and resolved now (kaniko pulled them by tag; the
 * digests are the ones the registry gives right after). A Dockerfile that cannot be read records none, and says so in
 * Refit's log: the run's result stands.
 */
export async function recordedBases(
  registry: RegistryClient,
  built: BuiltFrom,
): Promise<RecordedDependency[]> {
  if (!built.dockerfile) return [];
  try {
    const found = scanDockerfile(built.dockerfile, { buildArgs: built.buildArgs, target: built.target });
    return await Promise.all(
      found.map(async (dep): Promise<RecordedDependency> => {
        const resolved = await registry
          .resolve(dep, built.platform, built.registries?.[dep.registry])
          .catch(() => null);
        return {
          ...dep,
          digest: dep.digest ?? resolved?.digest ?? null,
          platformDigest: resolved?.platformDigest ?? dep.digest,
        };
      }),
    );
  } catch (err) {
    log.warn('the dependencies of an aci run could not be read', {
      runId: built.runId,
      error: (err as Error).message,
    });
    return [];
  }
}

/** An output image from kaniko's `name:tag@sha256:…` line (nothing for a line that is not one). */
export function outputImage(line: string): OutputImage[] {
  try {
    const ref = parseImageReference(line.trim());
    if (!ref.digest) return [];
    return [{ registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: ref.digest }];
  } catch {
    return [];
  }
}
