import { mkdir, open } from 'node:fs/promises';
import * as tar from 'tar';
import { SourceError } from './source-error';

async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** Extracts a tar.gz into `dir`; `what` names the archive in errors. */
export async function extract(archive: string, dir: string, what: string): Promise<void> {
  if (!(await isGzip(archive)))
    throw new SourceError(`${what} is not a gzip-compressed tar archive (tar.gz)`);
  await mkdir(dir, { recursive: true });
  try {
    await tar.x({ file: archive, cwd: dir, strict: true });
  } catch (err) {
    throw new SourceError(`${what} could not be extracted: ${(err as Error).message}`);
  }
}
