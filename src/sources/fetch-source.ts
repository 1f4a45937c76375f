import { stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { names, type Storage } from '../storage/storage';
import { extract } from './archive';
import type { NetworkPolicy } from '../net/address-policy';
import { cloneGit, parseGitSource } from './git-source';
import { isGitSource, isUploadedSource } from './source-path';
import { SourceError } from './source-error';
import { fetchUrl } from './tarball';
import { maskUrlCredentials } from './url-credentials';

/**
 * Fetches a run's source into `workDir/src` and returns the build context directory: an uploaded tar.gz,
 * a git URL (`url#ref:folder`) or a tarball URL. `network` says where the fetch may connect.
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
  network: NetworkPolicy,
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
    await cloneGit(git, src, signal, log, { commit: source.commit, token: source.gitToken, network });
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
