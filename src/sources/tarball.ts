import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SourceError } from './source-error';
import { maskUrlCredentials } from './url-credentials';

/** Downloads a tarball URL to a file. */
export async function fetchUrl(url: string, file: string, signal: AbortSignal): Promise<void> {
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
