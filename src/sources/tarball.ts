import { LIMIT_SETTINGS } from '../config';
import type { GuardedFetch } from '../net/guarded-fetch';
import { SourceError } from './source-error';
import { maskUrlCredentials } from './url-credentials';

/**
 * Downloads a tarball URL to a file through the guard, at most `maxBytes`. A refused destination says so, and why, in
 * the error ("… the destination is refused: 169.254.169.254 is a cloud metadata address"); a stalled server is given
 * up by the guard's idle timeouts, the whole download by the run's.
 */
export async function fetchUrl(
  http: GuardedFetch,
  url: string,
  file: string,
  signal: AbortSignal,
  maxBytes: number,
): Promise<void> {
  const shown = maskUrlCredentials(url.split('?')[0]!);
  try {
    const response = await http.fetch(url, {
      signal,
      limit: { bytes: maxBytes, setting: LIMIT_SETTINGS.sourceBytes },
    });
    if (response.status < 200 || response.status > 299) {
      await response.discard();
      throw new SourceError(`the source ${shown} could not be downloaded: HTTP ${response.status}`);
    }
    await response.saveTo(file);
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw new SourceError(`the source ${shown} could not be downloaded: ${(err as Error).message}`);
  }
}
