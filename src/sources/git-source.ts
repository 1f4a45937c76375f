// How Refit runs git against a remote it was given. Three decisions, each closing a way out of the trust boundary:
// - Credentials travel in git's environment (GIT_CONFIG_* → http.extraHeader), never in the URL: a URL's credentials
//   would be saved in the clone's .git/config, which is the build context (a `COPY . .` pushes it) and every cmd
//   step's /workspace, and a command line is readable by every local user (/proc/*/cmdline).
// - Only https, http and git are spoken (GIT_ALLOW_PROTOCOL), whatever the API let through: ssh would use this
//   machine's keys, file reads its disk, ext runs a command. The host's own git configuration is not read
//   (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL): an `insteadOf` or credential helper there must not apply to a URL a user
//   chose.
// - The remote's host is resolved and every address checked against the network policy before git runs, and git is
//   pinned to the checked addresses, so that a DNS answer that changes between the check and the connection (DNS
//   rebinding) does not pass: http(s) through curl's resolve list (http.curloptResolve), git:// by connecting to the
//   address literal and setting the clean URL back afterwards. Redirects are not followed (http.followRedirects), so
//   a redirect cannot lead git past the check either. A proxy configured for this machine (HTTPS_PROXY) resolves the
//   name itself: that is the operator's choice.
import { isIP } from 'node:net';
import { DestinationRefusedError } from '../errors';
import { bareHost, resolveAllowed, type NetworkPolicy } from '../net/address-policy';
import { childEnv } from '../process/child-env';
import { runProcess } from '../process/run-process';
import { SourceError } from './source-error';
import { SOURCE_SCHEMES } from './source-path';
import { maskUrlCredentials } from './url-credentials';

/** A git source split into its parts: `url#ref:folder`. */
export interface GitSource {
  readonly url: string;
  readonly ref: string | undefined;
  readonly folder: string | undefined;
}

/** Splits `https://host/repo.git#branch:folder` (both parts optional) as az acr build does. */
export function parseGitSource(location: string): GitSource {
  const hash = location.indexOf('#');
  if (hash < 0) return { url: location, ref: undefined, folder: undefined };
  const fragment = location.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = (colon < 0 ? fragment : fragment.slice(0, colon)) || undefined;
  const folder = (colon < 0 ? '' : fragment.slice(colon + 1)).replace(/^\/+|\/+$/g, '') || undefined;
  return { url: location.slice(0, hash), ref, folder };
}

/** A git remote as Refit clones it: its clean URL, and what to connect to. */
export interface GitRemote {
  /** The URL without credentials: what the clone keeps as its origin and the log shows. */
  readonly url: string;
  readonly scheme: 'https' | 'http' | 'git';
  /** The host name (IPv6 without brackets) and port git connects to. */
  readonly host: string;
  readonly port: number;
  /** The credentials the URL carried (decoded), sent as a header instead. */
  readonly username: string | undefined;
  readonly password: string | undefined;
}

const DEFAULT_PORTS = { https: 443, http: 80, git: 9418 } as const;

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Parses a git URL; a scheme other than https, http or git (ssh, file, ext::…) is a {@link SourceError}. */
export function parseGitRemote(url: string): GitRemote {
  let parsed: URL | undefined;
  try {
    parsed = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  const scheme = parsed?.protocol.slice(0, -1).toLowerCase();
  if (!parsed || !scheme || !SOURCE_SCHEMES.includes(scheme) || !parsed.hostname)
    throw new SourceError(
      `the git source ${maskUrlCredentials(url)} is refused: only https://, http:// and git:// URLs are cloned`,
    );
  const s = scheme as GitRemote['scheme'];
  const username = parsed.username ? decode(parsed.username) : undefined;
  const password = parsed.password ? decode(parsed.password) : undefined;
  parsed.username = '';
  parsed.password = '';
  return {
    url: parsed.href,
    scheme: s,
    host: bareHost(parsed.hostname),
    port: parsed.port ? Number(parsed.port) : DEFAULT_PORTS[s],
    username,
    password,
  };
}

/**
 * True when two source locations are on the same server (scheme, host and port): a run's git token is sent only to
 * its own source's server, never to another one a task file names.
 */
export function sameServer(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  const origin = (location: string): string | undefined => {
    try {
      const url = new URL(location.split('#')[0]!);
      return url.hostname ? `${url.protocol}//${url.host}`.toLowerCase() : undefined;
    } catch {
      return undefined;
    }
  };
  const left = origin(a);
  return left !== undefined && left === origin(b);
}

/** How git is run against one remote: the URL it is given, the URL the clone keeps, and git's environment. */
export interface GitAccess {
  /** The URL on git's command line: the clean URL, or for git:// the checked address in place of the name. */
  readonly connectUrl: string;
  /** The clean URL, set as the clone's origin. */
  readonly cleanUrl: string;
  /** git's whole environment (childEnv): no Refit setting, and the auth header and pins as GIT_CONFIG_* entries. */
  readonly env: Record<string, string>;
}

function literal(address: string): string {
  return isIP(address) === 6 ? `[${address}]` : address;
}

/**
 * Builds git's URL and environment for `remote`: credentials (the URL's own, or `token` as GitHub and Azure DevOps
 * take it, user `x-access-token`) as a Basic `Authorization` header in http.extraHeader; the connection pinned to
 * `addresses` (already checked); only the remote's own protocol allowed; redirects not followed.
 */
export function gitAccess(
  remote: GitRemote,
  token: string | undefined,
  addresses: readonly string[],
  from: Readonly<Record<string, string | undefined>> = process.env,
): GitAccess {
  const config: [string, string][] = [['http.followRedirects', 'false']];
  // A URL's own credentials win over the task's token, as they did when they were part of the URL.
  const secret = remote.password ?? token;
  // Decided: the token goes over plain http too, as it would in the URL; git:// has no authentication.
  if (secret && remote.scheme !== 'git') {
    const basic = Buffer.from(`${remote.username ?? 'x-access-token'}:${secret}`).toString('base64');
    config.push(['http.extraHeader', `Authorization: Basic ${basic}`]);
  }
  let connectUrl = remote.url;
  const pinned = isIP(remote.host) === 0 && addresses.length > 0;
  if (pinned && remote.scheme !== 'git') {
    config.push(['http.curloptResolve', `${remote.host}:${remote.port}:${addresses.map(literal).join(',')}`]);
  } else if (pinned) {
    // git:// resolves the name itself, with nothing like curl's resolve list: give it the checked address.
    const url = new URL(remote.url);
    url.hostname = literal(addresses[0]!);
    connectUrl = url.href;
  }
  const own: Record<string, string> = {
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ALLOW_PROTOCOL: remote.scheme,
    GIT_CONFIG_COUNT: String(config.length),
  };
  config.forEach(([key, value], i) => {
    own[`GIT_CONFIG_KEY_${i}`] = key;
    own[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return { connectUrl, cleanUrl: remote.url, env: childEnv(own, from) };
}

/** How a clone is made: the commit to check out, the token, and where git may connect. */
export interface CloneOptions {
  readonly commit?: string | undefined;
  readonly token?: string | undefined;
  readonly network: NetworkPolicy;
}

/** Why git failed, from its last words: a refused or missing credential is said plainly. */
function gitFailure(output: string, hadCredentials: boolean): string {
  if (/could not read (Username|Password)|Authentication failed|returned error: 40[13]/i.test(output))
    return hadCredentials
      ? 'the git server refused the credentials: check the git access token'
      : 'the git server asks for credentials: give the task a git access token';
  return maskUrlCredentials(output.trim().split('\n').pop() ?? '');
}

/** Clones a git source into `dir` (at `options.commit` when given), after checking where it connects. */
export async function cloneGit(
  source: GitSource,
  dir: string,
  signal: AbortSignal,
  log: (text: string) => void,
  options: CloneOptions,
): Promise<void> {
  const remote = parseGitRemote(source.url);
  let addresses: string[];
  try {
    addresses = (await resolveAllowed(remote.host, options.network, 'sourceLocation')).map((a) => a.address);
  } catch (err) {
    if (err instanceof DestinationRefusedError)
      throw new SourceError(`the git source ${remote.url} was refused: ${err.message}`);
    throw err;
  }
  const access = gitAccess(remote, options.token, addresses);
  const hadCredentials = (remote.password ?? options.token) !== undefined;
  const env = access.env;
  const git = async (args: string[], cwd?: string): Promise<void> => {
    log(`Running command git ${maskUrlCredentials(args.join(' '))}`);
    let output = '';
    const result = await runProcess('git', args, {
      ...(cwd ? { cwd } : {}),
      env,
      signal,
      onOutput: (chunk) => {
        output += chunk;
      },
    });
    if (output.trim()) log(maskUrlCredentials(output.trimEnd()));
    if (result.code !== 0 && !signal.aborted) {
      throw new SourceError(`git ${args[0]} of ${remote.url} failed: ${gitFailure(output, hadCredentials)}`);
    }
  };
  const refIsCommit = source.ref !== undefined && /^[0-9a-f]{7,40}$/i.test(source.ref);
  const wanted = options.commit ?? (refIsCommit ? source.ref : undefined);
  const branch = refIsCommit ? undefined : source.ref;
  const url = access.connectUrl;
  if (!wanted) {
    await git(['clone', '--quiet', '--depth', '1', ...(branch ? ['--branch', branch] : []), '--', url, dir]);
  } else {
    // A given commit: clone the branch shallowly and check the commit out, deepening only if it is older.
    await git([
      'clone',
      '--quiet',
      '--no-checkout',
      '--depth',
      '50',
      ...(branch ? ['--branch', branch] : []),
      '--',
      url,
      dir,
    ]);
    const hasCommit = await runProcess('git', ['cat-file', '-e', `${wanted}^{commit}`], { cwd: dir, env });
    if (hasCommit.code !== 0) {
      // Older than the shallow history, or on another branch than the one cloned (a shallow clone takes one):
      // fetch every branch, whole.
      let shallow = '';
      await runProcess('git', ['rev-parse', '--is-shallow-repository'], {
        cwd: dir,
        env,
        onOutput: (c) => (shallow += c),
      });
      await git(
        [
          'fetch',
          '--quiet',
          ...(shallow.trim() === 'true' ? ['--unshallow'] : []),
          'origin',
          '+refs/heads/*:refs/remotes/origin/*',
        ],
        dir,
      );
    }
    await git(['checkout', '--quiet', '--detach', wanted], dir);
    log(`Checked out commit ${wanted}`);
  }
  // The clone keeps the URL it was given: for git://, the address literal. The build sees the one the user named.
  if (access.connectUrl !== access.cleanUrl) await git(['remote', 'set-url', 'origin', access.cleanUrl], dir);
}
