import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { posix } from 'node:path';
import * as tar from 'tar';
import { LIMIT_SETTINGS } from '../config';
import { SourceError } from './source-error';

/** How much one archive may unpack to. */
export interface ExtractLimits {
  /** Bytes of file content, as the entries' headers declare them (the parser reads exactly that much). */
  readonly bytes: number;
  /** Entries of any kind: files, folders, links. */
  readonly entries: number;
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

const KEPT_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink']);

/** Why an entry is refused, or undefined: only files, folders and links that stay inside the source are unpacked. */
function entryRefusal(entry: tar.ReadEntry): string | undefined {
  const path = entry.path;
  if (posix.isAbsolute(path) || /^[a-z]:/i.test(path)) return `'${path}' is an absolute path`;
  if (path.split(/[\\/]/).includes('..')) return `'${path}' climbs out of the source ('..')`;
  if (entry.type === 'Link') return `'${path}' is a hard link (not allowed in a source)`;
  if (!KEPT_TYPES.has(entry.type))
    return `'${path}' is a ${entry.type} entry (only files, folders and symbolic links are allowed)`;
  if (entry.type === 'SymbolicLink') {
    const target = entry.linkpath ?? '';
    const resolved = posix.normalize(posix.join(posix.dirname(path), target));
    if (posix.isAbsolute(target) || resolved === '..' || resolved.startsWith('../'))
      return `'${path}' is a symbolic link to '${target}', outside the source`;
  }
  return undefined;
}

/**
 * Extracts a tar.gz into `dir`; `what` names the archive in errors. Refused, the whole archive (no partial source is
 * built): hard links, device files and fifos, absolute or `..` paths, symbolic links that point outside the source,
 * and more entries or bytes than `limits` allow, each named with its setting. The archive is read as one stream and
 * stopped at the first refusal, so a decompression bomb is not unpacked to the end.
 */
export async function extract(
  archive: string,
  dir: string,
  what: string,
  limits: ExtractLimits,
): Promise<void> {
  if (!(await isGzip(archive)))
    throw new SourceError(`${what} is not a gzip-compressed tar archive (tar.gz)`);
  await mkdir(dir, { recursive: true });
  let entries = 0;
  let bytes = 0;
  const unpack: tar.Unpack = new tar.Unpack({
    cwd: dir,
    strict: true,
    filter: (_path, entry) => {
      const e = entry as tar.ReadEntry;
      entries += 1;
      bytes += e.type === 'Directory' || e.type === 'SymbolicLink' ? 0 : e.size;
      const why =
        entryRefusal(e) ??
        (entries > limits.entries
          ? `it has more than ${limits.entries} entries (${LIMIT_SETTINGS.extractedEntries})`
          : bytes > limits.bytes
            ? `it unpacks to more than ${limits.bytes} bytes (${LIMIT_SETTINGS.extractedBytes})`
            : undefined);
      if (!why) return true;
      unpack.abort(new SourceError(`${what} is refused: ${why}`));
      return false;
    },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const input = createReadStream(archive);
      unpack.on('error', (err: Error) => {
        input.destroy();
        reject(err);
      });
      unpack.on('close', () => resolve());
      input.on('error', reject);
      input.pipe(unpack);
    });
  } catch (err) {
    if (err instanceof SourceError) throw new SourceError(err.message);
    throw new SourceError(`${what} could not be extracted: ${(err as Error).message}`);
  }
}
