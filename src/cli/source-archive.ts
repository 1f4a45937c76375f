import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import ignore, { type Ignore } from '@balena/dockerignore';
import * as tar from 'tar';

async function walk(
  root: string,
  dir: string,
  ig: Ignore,
  hasNegations: boolean,
  out: string[],
): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const abs = join(dir, entry.name);
    const rel = relative(root, abs).split(sep).join('/');
    if (ig.ignores(rel)) {
      // An excluded folder may still hold re-included files (a `!` pattern): look inside only then.
      if (!entry.isDirectory() || !hasNegations) continue;
    }
    if (entry.isDirectory()) await walk(root, abs, ig, hasNegations, out);
    else if (!ig.ignores(rel)) out.push(rel);
  }
}

/** A file from outside the context that goes into the archive under `name` (at its root). */
export interface ExtraFile {
  readonly path: string;
  readonly name: string;
}

/**
 * Packs a build context as a tar.gz the way `docker build` sends it: .dockerignore honoured, while the
 * Dockerfile and .dockerignore themselves always go along; `extra` (a Dockerfile outside the folder, as az adds
 * it) is added at the root.
 */
export async function packContext(dir: string, dockerfile: string, extra?: ExtraFile): Promise<Buffer> {
  const patterns = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => '');
  const lines = patterns.split(/\r?\n/).filter((l) => l.trim() && !l.trim().startsWith('#'));
  const ig = ignore().add(lines);
  const files: string[] = [];
  await walk(
    dir,
    dir,
    ig,
    lines.some((l) => l.trim().startsWith('!')),
    files,
  );
  for (const always of [dockerfile, '.dockerignore']) {
    const rel = always.split(sep).join('/');
    if (
      !files.includes(rel) &&
      (await readFile(join(dir, rel)).then(
        () => true,
        () => false,
      ))
    )
      files.push(rel);
  }
  if (extra && files.includes(extra.name))
    throw new Error(`the context already has a file named '${extra.name}'`);
  const pack = new tar.Pack({ gzip: true, cwd: dir, portable: true, noDirRecurse: true });
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const file of files) pack.add(file);
  if (extra) {
    const body = await readFile(extra.path);
    const header = new tar.Header({
      path: extra.name,
      mode: 0o644,
      size: body.length,
      type: 'File',
      mtime: new Date(0),
    });
    const entry = new tar.ReadEntry(header);
    entry.end(body);
    pack.add(entry);
  }
  pack.end();
  await ended;
  return Buffer.concat(chunks);
}
