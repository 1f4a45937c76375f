// What a child process (buildah, git, a cmd step, apt-get) sees of Refit's environment: an allow-list, never the
// whole of it. Builds run untrusted Dockerfiles and acb.yaml as root, and buildah fills a value-less
// `--build-arg NAME` from its own environment, so anything beyond this list could be printed into an image.

/** The variables a child inherits: the search path, home and temporary folders, the locale and the proxies. */
const INHERITED = new Set([
  'PATH',
  'HOME',
  'TMPDIR',
  'LANG',
  'LANGUAGE',
  'TZ',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
]);

/**
 * The environment of a child process: the allow-listed variables of `from` (PATH, HOME, TMPDIR, the locale and
 * proxy variables) and what the caller sets for this child in `own` (a step's env, CONTAINERS_REGISTRIES_CONF,
 * GIT_* settings). Refit's settings and secrets are never inherited.
 */
export function childEnv(
  own: Readonly<Record<string, string | undefined>> = {},
  from: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(from))
    if (value !== undefined && (INHERITED.has(name) || name.startsWith('LC_'))) env[name] = value;
  for (const [name, value] of Object.entries(own)) if (value !== undefined) env[name] = value;
  return env;
}
