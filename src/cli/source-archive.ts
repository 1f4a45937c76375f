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

/**
 * Packs a build context as a tar.gz the way `docker build` sends it: .dockerignore honoured, while the
 * Dockerfile and .dockerignore themselves always go along.
 */
export async function packContext(dir: string, dockerfile: string): Promise<Buffer> {
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
  const chunks: Buffer[] = [];
  const stream = tar.c({ gzip: true, cwd: dir, portable: true, noDirRecurse: true }, files);
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}
