import { childEnv } from '../process/child-env';
import { runProcess } from '../process/run-process';
import { SourceError } from './source-error';
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

/** Puts a token into an https clone URL as GitHub and Azure DevOps take it (`x-access-token:TOKEN@`). */
export function withToken(url: string, token: string | undefined): string {
  if (!token || !/^https:\/\//i.test(url) || /^https:\/\/[^/]*@/i.test(url)) return url;
  return url.replace(/^https:\/\//i, `https://x-access-token:${encodeURIComponent(token)}@`);
}

/** Clones a git source into `dir`, at `commit` when given. */
export async function cloneGit(
  source: GitSource,
  dir: string,
  signal: AbortSignal,
  log: (text: string) => void,
  commit?: string,
): Promise<void> {
  const env = childEnv({ GIT_TERMINAL_PROMPT: '0' });
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
      throw new SourceError(
        `git ${args[0]} of ${maskUrlCredentials(source.url)} failed: ${maskUrlCredentials(output.trim().split('\n').pop() ?? '')}`,
      );
    }
  };
  const refIsCommit = source.ref !== undefined && /^[0-9a-f]{7,40}$/i.test(source.ref);
  const wanted = commit ?? (refIsCommit ? source.ref : undefined);
  const branch = refIsCommit ? undefined : source.ref;
  if (!wanted) {
    await git(['clone', '--quiet', '--depth', '1', ...(branch ? ['--branch', branch] : []), source.url, dir]);
    return;
  }
  // A given commit: clone the branch shallowly and check the commit out, deepening only if it is older.
  await git([
    'clone',
    '--quiet',
    '--no-checkout',
    '--depth',
    '50',
    ...(branch ? ['--branch', branch] : []),
    source.url,
    dir,
  ]);
  const hasCommit = await runProcess('git', ['cat-file', '-e', `${wanted}^{commit}`], { cwd: dir, env });
  if (hasCommit.code !== 0) {
    // Older than the shallow history, or on another branch than the one cloned (a shallow clone takes one): fetch
    // every branch, whole.
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
