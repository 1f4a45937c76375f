import { AcbError } from '../../acb/errors';

// Every local user can read /proc/<pid>/cmdline, so a secret value never goes on a command line. buildah reads a
// value-less `--build-arg NAME` (and `buildah config --env NAME`) from its own environment: the value goes there, to
// one buildah process, and only the name goes on argv.

/**
 * Names buildah itself (or the Go runtime, its TLS, storage and auth lookups) reads from its environment: a secret
 * passed under one of them would change how buildah runs, so such a name is refused instead.
 */
const READ_BY_BUILDAH =
  /^(PATH|HOME|TMPDIR|TMP|TZ|SHELL|USER|LANG|LANGUAGE|LC_\w*|https?_proxy|no_proxy|HTTPS?_PROXY|NO_PROXY|LD_\w*|GO\w*|BUILDAH_\w*|CONTAINERS_\w*|_CONTAINERS_\w*|STORAGE_\w*|REGISTRY_\w*|REGISTRIES_\w*|DOCKER_\w*|XDG_\w*|SSL_\w*|BUILD_REGISTRY_SOURCES|NOTIFY_SOCKET|DBUS_\w*)$/;

/** A variable name that can carry a secret in buildah's environment, or an {@link AcbError} naming it. */
export function checkSecretName(name: string, what: string): void {
  if (READ_BY_BUILDAH.test(name))
    throw new AcbError(
      `${what} '${name}' carries a secret value, and buildah reads '${name}' itself: a secret is passed to buildah in its environment (never on its command line), so give it another name`,
    );
}

/** Words of a command line with secret values taken off, and the environment that carries them instead. */
export interface OffArgv {
  readonly words: string[];
  readonly env: Record<string, string>;
}

/** True when `value` holds one of the secrets (as a whole or a part, e.g. `token=<secret>`). */
function holdsSecret(value: string, secrets: readonly string[]): boolean {
  return secrets.some((s) => s !== '' && value.includes(s));
}

/**
 * A build command's words with each `--build-arg NAME=VALUE` whose value holds a secret turned into a value-less
 * `--build-arg NAME`, and NAME=VALUE in the returned environment (buildah takes the value from there).
 * `indices` are the words that hold a build argument (`NAME=VALUE` after `--build-arg`, or `--build-arg=NAME=VALUE`).
 */
export function buildArgsOffArgv(
  words: readonly string[],
  indices: readonly number[],
  secrets: readonly string[],
): OffArgv {
  const out = [...words];
  const env: Record<string, string> = {};
  for (const i of indices) {
    const word = out[i]!;
    const prefix = word.startsWith('--build-arg=') ? '--build-arg=' : '';
    const arg = word.slice(prefix.length);
    const eq = arg.indexOf('=');
    if (eq <= 0) continue;
    const name = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    if (!holdsSecret(value, secrets)) continue;
    checkSecretName(name, 'the build argument');
    out[i] = prefix + name;
    env[name] = value;
  }
  return { words: out, env };
}

/**
 * A Docker build's `--build-arg` words: plain arguments as NAME=VALUE, secret ones as a value-less NAME with the
 * value in the returned environment.
 */
export function dockerBuildArgs(
  args: readonly { readonly name: string; readonly isSecret: boolean }[],
  values: Readonly<Record<string, string>>,
): OffArgv {
  const secret = new Set(args.filter((a) => a.isSecret).map((a) => a.name));
  const env: Record<string, string> = {};
  const words = Object.entries(values).flatMap(([name, value]) => {
    if (!secret.has(name)) return ['--build-arg', `${name}=${value}`];
    checkSecretName(name, 'the secret build argument');
    env[name] = value;
    return ['--build-arg', name];
  });
  return { words, env };
}

/**
 * A cmd step's `KEY=VALUE` variables split in two: the plain ones for `buildah run --env`, and the ones whose value
 * holds a secret, to be set on the step's container with a value-less `buildah config --env KEY` (buildah 1.28's
 * `run --env KEY` does not read its environment; `config --env KEY` does).
 */
export function stepEnvOffArgv(
  env: readonly string[],
  secrets: readonly string[],
): { readonly plain: string[]; readonly secret: Record<string, string> } {
  const plain: string[] = [];
  const secret: Record<string, string> = {};
  for (const entry of env) {
    const eq = entry.indexOf('=');
    const value = eq > 0 ? entry.slice(eq + 1) : '';
    if (eq <= 0 || !holdsSecret(value, secrets)) {
      plain.push(entry);
      continue;
    }
    const name = entry.slice(0, eq);
    checkSecretName(name, 'the environment variable');
    secret[name] = value;
  }
  return { plain, secret };
}
