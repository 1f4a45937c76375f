import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecordedDependency } from '../../dependencies/dependency-index';
import { closeEmptyTargetStage } from '../../dockerfile/empty-stage';
import { scanDockerfileNames, type NamedDependency } from '../../dockerfile/scan';
import { formatImageReference } from '../../registry/image-reference';
import type { RegistryCredentials } from '../../registry/auth';
import type { RegistryClient } from '../../registry/client';
import type { Platform } from '../../runs/run';
import type { LogSink } from './multi-step';

/** What the base-image scan of a build takes besides the Dockerfile. */
export interface BaseScanOptions {
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly target: string | undefined;
  /** The platform the build is for: the manifest recorded for a multi-platform base is this one's. */
  readonly platform: Platform;
  /** Values that must stay off buildah's command line. */
  readonly secrets?: readonly string[];
  /** The run's login for a registry, if it has one: the digest lookups use it. */
  readonly credentials?: (registry: string) => RegistryCredentials | undefined;
  /** A folder of the run's own, outside the build context, for a copy of the Dockerfile the build may need. */
  readonly scratchDir: string;
}

/** A build's base images, resolved before it: what it is pinned to and records. */
export interface BuildBases {
  /** The bases with the digests the build is pinned to (null where it could not be). */
  readonly recorded: RecordedDependency[];
  /** buildah arguments pinning each base (every name the Dockerfile gives it) to the recorded digest. */
  readonly buildContexts: string[];
  /**
   * The Dockerfile to build: the one given, or a copy (in the run's work folder, outside the context) whose empty
   * target stage is closed with a no-op (see closeEmptyTargetStage).
   */
  readonly dockerfile: string;
  /** The bases whose registry refused them (401, 403, 404): a copy in the storage must not stand in for them. */
  readonly refused: string[];
}

/**
 * Scans the Dockerfile and resolves each base image's digests for the build's platform BEFORE the build, and pins
 * the build to them: every name the Dockerfile gives a base (as written, which buildah matches in FROM, and
 * expanded) becomes `--build-context NAME=docker-image://REPOSITORY@DIGEST`, so that the image is built from the
 * digest that is recorded even when the base is updated during the build. The user's Dockerfile is left as it is.
 * A base that cannot be resolved or pinned is built from its tag and recorded without digests (unknown, so that
 * its next update triggers). Never fails the run.
 */
export async function pinBases(
  registry: RegistryClient,
  dockerfile: string,
  options: BaseScanOptions,
  log: LogSink,
): Promise<BuildBases> {
  const { buildArgs, target, platform, secrets = [], credentials } = options;
  let scanned: NamedDependency[];
  let text: string;
  try {
    text = await readFile(dockerfile, 'utf8');
    scanned = scanDockerfileNames(text, { buildArgs, target });
  } catch (err) {
    log.line(`The dependency scan failed: ${(err as Error).message}`);
    return { recorded: [], buildContexts: [], refused: [], dockerfile };
  }
  const recorded: RecordedDependency[] = [];
  const buildContexts: string[] = [];
  const refused: string[] = [];
  for (const { dependency: dep, names } of scanned) {
    const image = formatImageReference(dep);
    let resolved = null;
    try {
      resolved = await registry.resolve(dep, platform, credentials?.(dep.registry));
      if (!resolved) {
        log.line(`The digest of ${image} could not be resolved: the registry has no such image`);
        refused.push(image);
      }
    } catch (err) {
      log.line(`The digest of ${image} could not be resolved: ${(err as Error).message}`);
    }
    if (!resolved) {
      recorded.push({ ...dep, digest: dep.digest, platformDigest: dep.digest });
      continue;
    }
    if (!dep.digest) {
      const pinned = `${dep.registry}/${dep.repository}@${resolved.digest}`;
      // `--build-context` splits at the first `=`; a name or reference holding a secret stays off the command line.
      const unsafe = (text: string): boolean => secrets.some((v) => v && text.includes(v));
      if (names.some((n) => n.includes('=') || unsafe(n)) || unsafe(pinned)) {
        log.line(`${image} is built from its tag (its name cannot be pinned), so its digest is not recorded`);
        recorded.push({ ...dep, digest: null, platformDigest: null });
        continue;
      }
      for (const name of names) buildContexts.push('--build-context', `${name}=docker-image://${pinned}`);
    }
    recorded.push({
      ...dep,
      digest: dep.digest ?? resolved.digest,
      platformDigest: resolved.platformDigest,
    });
  }
  log.line(`The following dependencies were found:\n${JSON.stringify(recorded)}`);
  const closed = closeEmptyTargetStage(text, target);
  if (!closed) return { recorded, buildContexts, refused, dockerfile };
  const dir = await mkdtemp(join(options.scratchDir, 'dockerfile-'));
  await writeFile(join(dir, 'Dockerfile'), closed);
  return { recorded, buildContexts, refused, dockerfile: join(dir, 'Dockerfile') };
}
