import { stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { LIMIT_SETTINGS, type Limits } from '../config';
import type { GuardedFetch } from '../net/guarded-fetch';
import { names, type Storage } from '../storage/storage';
import { extract } from './archive';
import { cloneGit, parseGitSource } from './git-source';
import { isGitSource, isUploadedSource } from './source-path';
import { SourceError } from './source-error';
import { fetchUrl } from './tarball';
import { maskUrlCredentials } from './url-credentials';

/** What fetching a source needs: the storage uploads live in, the guarded HTTP client and the size limits. */
export interface SourceAccess {
  readonly storage: Storage;
  /** The guarded HTTP client; git is held to its policy too. */
  readonly http: GuardedFetch;
  readonly limits: Pick<Limits, 'sourceBytes' | 'extractedBytes' | 'extractedEntries'>;
}

/**
 * Downloads a source stored in the sources container (an upload, or the workspace a multi-step run's source group
 * left) within the limit; the blob itself is left as it is.
 */
export async function downloadUpload(
  access: SourceAccess,
  location: string,
  file: string,
  signal: AbortSignal,
): Promise<void> {
  const max = access.limits.sourceBytes;
  const blob = access.storage.container(names.containers.sources).getBlobClient(location);
  try {
    // The upload SAS cannot bound the size, so it is checked here, before a byte is downloaded...
    const { contentLength = 0, etag } = await blob.getProperties({ abortSignal: signal });
    if (contentLength > max)
      throw new SourceError(
        `the uploaded source is ${contentLength} bytes, larger than the limit of ${max} bytes (${LIMIT_SETTINGS.sourceBytes})`,
      );
    // ...and the download is bound to the blob that was checked: a blob replaced in between fails (412).
    await blob.downloadToFile(file, 0, contentLength > 0 ? contentLength : undefined, {
      abortSignal: signal,
      conditions: etag ? { ifMatch: etag } : {},
    });
  } catch (err) {
    if (err instanceof SourceError) throw err;
    const status = (err as { statusCode?: number }).statusCode;
    throw new SourceError(
      status === 404
        ? `the uploaded source '${location}' was not found: upload it before scheduling the run`
        : status === 412
          ? 'the uploaded source was replaced while it was being downloaded'
          : `the uploaded source could not be read: ${(err as Error).message}`,
    );
  }
}

/**
 * Fetches a run's source into `workDir/src` and returns the build context directory: an uploaded tar.gz,
 * a git URL (`url#ref:folder`) or a tarball URL. `access.http.policy` says where it may connect.
 */
export async function fetchSource(
  access: SourceAccess,
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
  const extractLimits = { bytes: access.limits.extractedBytes, entries: access.limits.extractedEntries };
  const src = join(workDir, 'src');
  let folder: string | undefined;
  if (isUploadedSource(location)) {
    const archive = join(workDir, 'source.tar.gz');
    await downloadUpload(access, location, archive, signal);
    await extract(archive, src, 'the uploaded source', extractLimits);
  } else if (isGitSource(location)) {
    const git = parseGitSource(location);
    folder = git.folder;
    await cloneGit(git, src, signal, log, {
      commit: source.commit,
      token: source.gitToken,
      network: access.http.policy,
    });
  } else {
    if (!/^https?:\/\//i.test(location)) {
      throw new SourceError(`the context '${location}' is neither a git URL nor a tarball URL`);
    }
    const archive = join(workDir, 'source.tar.gz');
    await fetchUrl(access.http, location, archive, signal, access.limits.sourceBytes);
    await extract(archive, src, `the source ${maskUrlCredentials(location.split('?')[0]!)}`, extractLimits);
  }
  const context = resolve(src, folder ?? '.');
  if (context !== src && !context.startsWith(src + sep))
    throw new SourceError(`the context folder '${folder}' is outside the source`);
  const info = await stat(context).catch(() => null);
  if (!info?.isDirectory())
    throw new SourceError(`the context folder '${folder}' does not exist in the source`);
  return context;
}
