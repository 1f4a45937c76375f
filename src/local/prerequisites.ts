import { spawnSync } from 'node:child_process';
import { childEnv } from '../process/child-env';

/** A command the local stack needs, and the Debian package that provides it. */
export interface Prerequisite {
  readonly command: string;
  readonly debianPackage: string;
}

/** What `npm start` needs on the machine besides Node. */
export const PREREQUISITES: readonly Prerequisite[] = [
  { command: 'buildah', debianPackage: 'buildah' },
  { command: 'docker-registry', debianPackage: 'docker-registry' },
  { command: 'git', debianPackage: 'git' },
  { command: 'busybox', debianPackage: 'busybox-static' },
];

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore', env: childEnv() }).status === 0;
}

/** The prerequisites that are not installed. */
export function missingPrerequisites(): Prerequisite[] {
  return PREREQUISITES.filter((p) => !has(p.command));
}

/**
 * Installs what is missing with apt-get when running as root; otherwise throws a message naming the packages.
 */
export function ensurePrerequisites(print: (line: string) => void): void {
  const missing = missingPrerequisites();
  if (missing.length === 0) return;
  const packages = missing.map((p) => p.debianPackage);
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !has('apt-get')) {
    throw new Error(
      `Refit needs ${missing.map((p) => p.command).join(', ')}. Install them with:\n  sudo apt-get install -y ${packages.join(' ')}`,
    );
  }
  print(`Installing ${packages.join(', ')} with apt-get...`);
  const env = childEnv({ DEBIAN_FRONTEND: 'noninteractive' });
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const result = spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env });
  const still = missingPrerequisites();
  if (result.status !== 0 || still.length > 0) {
    throw new Error(
      `apt-get could not install ${still.map((p) => p.debianPackage).join(' ') || packages.join(' ')}; install them and run npm start again`,
    );
  }
}
