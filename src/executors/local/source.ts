import { createWriteStream } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { isGitSource } from '../../runs/schedule-run';
import { isUploadedSource } from '../../sources/source-path';
import { names, type Storage } from '../../storage/storage';
import { runProcess } from './process';

/** A source that could not be fetched; its message becomes the run's runErrorMessage. */
export class SourceError extends Error {}

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

/** `https://user:token@host/…` → `https://user:*************@host/…`, as ACR's logs show clone URLs. */
export function maskUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:)[^@\s/]+@/gi, '$1*************@');
}

/** The secrets hidden in a source location (a URL's password), to mask in the log. */
export function sourceSecrets(location: string): string[] {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:([^@\s/]+)@/i.exec(location);
  return m?.[1] ? [m[1], decodeURIComponent(m[1])] : [];
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

async function extract(archive: string, dir: string, what: string): Promise<void> {
  if (!(await isGzip(archive)))
    throw new SourceError(`${what} is not a gzip-compressed tar archive (tar.gz)`);
  await mkdir(dir, { recursive: true });
  try {
    await tar.x({ file: archive, cwd: dir, strict: true });
  } catch (err) {
    throw new SourceError(`${what} could not be extracted: ${(err as Error).message}`);
  }
}

async function fetchUrl(url: string, file: string, signal: AbortSignal): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    throw new SourceError(
      `the source ${maskUrlCredentials(url)} could not be downloaded: ${(err as Error).message}`,
    );
  }
  if (!response.ok || !response.body) {
    throw new SourceError(
      `the source ${maskUrlCredentials(url.split('?')[0]!)} could not be downloaded: HTTP ${response.status}`,
    );
  }
  await pipeline(Readable.fromWeb(response.body), createWriteStream(file));
}

/** Puts a token into an https clone URL as GitHub and Azure DevOps take it (`x-access-token:TOKEN@`). */
function withToken(url: string, token: string | undefined): string {
  if (!token || !/^https:\/\//i.test(url) || /^https:\/\/[^/]*@/i.test(url)) return url;
  return url.replace(/^https:\/\//i, `https://x-access-token:${encodeURIComponent(token)}@`);
}

async function cloneGit(
  source: GitSource,
  dir: string,
  signal: AbortSignal,
  log: (text: string) => void,
  commit?: string,
): Promise<void> {
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
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

/**
 * Fetches a run's source into `workDir/src` and returns the build context directory: an uploaded tar.gz,
 * a git URL (`url#ref:folder`) or a tarball URL.
 */
export async function fetchSource(
  storage: Storage,
  source: {
    readonly location: string;
    readonly commit?: string | undefined;
    readonly gitToken?: string | undefined;
  },
  workDir: string,
  signal: AbortSignal,
  log: (text: string) => void,
): Promise<string> {
  const location = source.location;
  const src = join(workDir, 'src');
  let folder: string | undefined;
  if (isUploadedSource(location)) {
    const archive = join(workDir, 'source.tar.gz');
    const blob = storage.container(names.containers.sources).getBlobClient(location);
    try {
      await blob.downloadToFile(archive, 0, undefined, { abortSignal: signal });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      throw new SourceError(
        status === 404
          ? `the uploaded source '${location}' was not found: upload it before scheduling the run`
          : `the uploaded source could not be read: ${(err as Error).message}`,
      );
    }
    await extract(archive, src, 'the uploaded source');
  } else if (isGitSource(location)) {
    const git = parseGitSource(location);
    folder = git.folder;
    await cloneGit({ ...git, url: withToken(git.url, source.gitToken) }, src, signal, log, source.commit);
  } else {
    if (!/^https?:\/\//i.test(location)) {
      throw new SourceError(`the context '${location}' is neither a git URL nor a tarball URL`);
    }
    const archive = join(workDir, 'source.tar.gz');
    await fetchUrl(location, archive, signal);
    await extract(archive, src, `the source ${maskUrlCredentials(location.split('?')[0]!)}`);
  }
  const context = resolve(src, folder ?? '.');
  if (context !== src && !context.startsWith(src + sep))
    throw new SourceError(`the context folder '${folder}' is outside the source`);
  const info = await stat(context).catch(() => null);
  if (!info?.isDirectory())
    throw new SourceError(`the context folder '${folder}' does not exist in the source`);
  return context;
}
