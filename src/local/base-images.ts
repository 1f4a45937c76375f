import { mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv } from '../process/child-env';
import { runProcess } from '../process/run-process';

/** The busybox base image the local stack keeps in its registry for examples and tests (built FROM scratch). */
export const BUSYBOX_REPOSITORY = 'refit/busybox';
export const BUSYBOX_TAG = 'stable';

/** The registries.conf(5) entries that let buildah reach the given registries over plain HTTP. */
export function insecureRegistryEntries(insecure: readonly string[]): string {
  return insecure.map((r) => `\n[[registry]]\nlocation = "${r}"\ninsecure = true\n`).join('');
}

/** A registries.conf(5) that lets buildah reach the given registries over plain HTTP. */
export function registriesConf(insecure: readonly string[]): string {
  return (
    ['unqualified-search-registries = ["docker.io"]', 'short-name-mode = "permissive"', ''].join('\n') +
    insecureRegistryEntries(insecure)
  );
}

/**
 * Pushes `<registry>/refit/busybox:stable` unless the registry has it: FROM scratch plus Debian's static busybox,
 * so that images can have a shell without pulling anything from the internet. buildah sees the allow-listed
 * environment plus `ownEnv` (its registries.conf).
 */
export async function seedBusybox(
  registry: string,
  buildahArgs: readonly string[],
  ownEnv: Readonly<Record<string, string>>,
  print: (l: string) => void,
): Promise<void> {
  const head = await fetch(`http://${registry}/v2/${BUSYBOX_REPOSITORY}/manifests/${BUSYBOX_TAG}`, {
    method: 'HEAD',
    headers: {
      accept:
        'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
    },
  });
  if (head.ok) return;
  print(`Seeding ${registry}/${BUSYBOX_REPOSITORY}:${BUSYBOX_TAG} (FROM scratch + static busybox)...`);
  const dir = await mkdtemp(join(tmpdir(), 'refit-busybox-'));
  const image = `${registry}/${BUSYBOX_REPOSITORY}:${BUSYBOX_TAG}`;
  let output = '';
  const collect = { env: childEnv(ownEnv), onOutput: (c: string) => (output += c) };
  try {
    await copyFile('/bin/busybox', join(dir, 'busybox'));
    await writeFile(
      join(dir, 'Dockerfile'),
      'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["/bin/sh"]\n',
    );
    const bud = await runProcess(
      'buildah',
      [...buildahArgs, 'bud', '--isolation', 'chroot', '-t', image, dir],
      collect,
    );
    if (bud.code !== 0) throw new Error(`building ${image} failed:\n${output}`);
    const push = await runProcess(
      'buildah',
      [...buildahArgs, 'push', '--tls-verify=false', image, `docker://${image}`],
      collect,
    );
    if (push.code !== 0) throw new Error(`pushing ${image} failed:\n${output}`);
    await runProcess('buildah', [...buildahArgs, 'rmi', image], collect);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
