import { AcbError } from '../../acb/errors';

/**
 * The docker build flags a build step may give here. A build step runs buildah on the machine Refit runs on (acb
 * runs it in a throw-away VM), so a flag that reaches this machine's files, devices, sockets or privileges
 * (`-v /:/host`, `--secret src=...`, `--build-context x=/`, `-o type=local,dest=/`, `--iidfile`, `--logfile`,
 * `--device`, `--cap-add`, `--network`, ...) would hand the build Refit's own secrets.
 */
const ALLOWED = new Set([
  '-t',
  '--tag',
  '-f',
  '--file',
  '--build-arg',
  '--target',
  '--platform',
  '--label',
  '--no-cache',
  '--pull',
  '-q',
  '--quiet',
  '--rm',
  '--force-rm',
  '--squash',
  '--cache-from',
  '--add-host',
  '--progress',
  '-m',
  '--memory',
  '--shm-size',
  '--ulimit',
  '--cpu-shares',
  '--cpuset-cpus',
]);

/** Refuses, with an {@link AcbError} naming it, a build-step flag that could reach this machine. */
export function checkBuildFlags(flags: readonly string[]): void {
  const refused = flags.find((f) => !ALLOWED.has(f));
  if (refused !== undefined)
    throw new AcbError(
      `build: the flag '${refused}' is not allowed: build steps run on the machine Refit runs on, where it could reach that machine's files, devices or privileges (allowed: ${[...ALLOWED].join(' ')})`,
    );
}
