import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { extract, type ExtractLimits } from '../../../src/sources/archive';
import { SourceError } from '../../../src/sources/source-error';

/** One raw tar entry: any type, any path, any link target, as a hostile archive would write it. */
interface RawEntry {
  readonly path: string;
  readonly type?: tar.Header['type'];
  readonly body?: string | Buffer;
  readonly linkpath?: string;
}

/** A tar.gz written header by header, so that entries tar's own packer would never make can be made. */
function archive(entries: readonly RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new tar.Header({
      path: e.path,
      type: e.type ?? 'File',
      size: e.type === undefined || e.type === 'File' ? body.length : 0,
      mode: 0o644,
      mtime: new Date(0),
      ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (body.length && (e.type === undefined || e.type === 'File')) {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

const roomy: ExtractLimits = { bytes: 1024 * 1024, entries: 100 };

/** Extracts into `<tmp>/work/src`, so that anything written outside it (`<tmp>/work`, `<tmp>`) can be seen. */
async function extractInto(
  entries: readonly RawEntry[],
  limits = roomy,
): Promise<{ err: unknown; root: string; src: string }> {
  const root = mkdtempSync(join(tmpdir(), 'refit-archive-'));
  const file = join(root, 'source.tar.gz');
  writeFileSync(file, archive(entries));
  const src = join(root, 'work', 'src');
  const err = await extract(file, src, 'the source', limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, root, src };
}

/** Everything under `dir`, relative, links not followed. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('archive', () => {
  describe('extract', () => {
    it('unpacks files, folders and symbolic links that stay inside the source', async () => {
      const { err, src } = await extractInto([
        { path: 'app/', type: 'Directory' },
        { path: 'app/main.js', body: 'console.log(1)\n' },
        { path: 'Dockerfile', body: 'FROM scratch\n' },
        { path: 'app/link.js', type: 'SymbolicLink', linkpath: 'main.js' },
        { path: 'app/up', type: 'SymbolicLink', linkpath: '../Dockerfile' },
      ]);

      expect(err).toBeUndefined();
      expect(tree(src)).toEqual(['Dockerfile', 'app', 'app/link.js', 'app/main.js', 'app/up']);
      expect(readFileSync(join(src, 'app/up'), 'utf8')).toBe('FROM scratch\n');
    });

    it.each<[string, RawEntry[], RegExp]>([
      [
        'a hard link',
        [
          { path: 'a.txt', body: 'a' },
          { path: 'b.txt', type: 'Link', linkpath: 'a.txt' },
        ],
        /'b\.txt' is a hard link/,
      ],
      [
        'a hard link to a file of this machine',
        [{ path: 'passwd', type: 'Link', linkpath: '/etc/passwd' }],
        /'passwd' is a hard link/,
      ],
      [
        'a character device',
        [{ path: 'null', type: 'CharacterDevice' }],
        /'null' is a CharacterDevice entry/,
      ],
      ['a block device', [{ path: 'sda', type: 'BlockDevice' }], /'sda' is a BlockDevice entry/],
      ['a fifo', [{ path: 'pipe', type: 'FIFO' }], /'pipe' is a FIFO entry/],
      [
        'a symbolic link to an absolute path',
        [{ path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }],
        /'etc' is a symbolic link to '\/etc', outside the source/,
      ],
      [
        'a symbolic link that climbs out',
        [{ path: 'a/out', type: 'SymbolicLink', linkpath: '../../outside' }],
        /'a\/out' is a symbolic link to '\.\.\/\.\.\/outside', outside the source/,
      ],
      ['a path with ..', [{ path: '../escaped.txt', body: 'x' }], /'\.\.\/escaped\.txt' climbs out/],
      ['a nested path with ..', [{ path: 'a/../../escaped.txt', body: 'x' }], /climbs out/],
      ['an absolute path', [{ path: '/tmp/escaped.txt', body: 'x' }], /is an absolute path/],
    ])(
      'refuses the whole archive with %s, writing nothing outside the source',
      async (_name, entries, why) => {
        const { err, root, src } = await extractInto(entries);

        expect(err).toBeInstanceOf(SourceError);
        expect((err as Error).message).toMatch(/^the source is refused: /);
        expect((err as Error).message).toMatch(why);
        expect(readdirSync(root).sort()).toEqual(['source.tar.gz', 'work']);
        expect(readdirSync(join(root, 'work'))).toEqual(['src']);
        for (const name of tree(src)) expect(lstatSync(join(src, name)).isFile()).toBe(true);
        expect(existsSync('/tmp/escaped.txt')).toBe(false);
      },
    );

    it('refuses an archive with more entries than the limit, naming the setting', async () => {
      const entries = Array.from({ length: 11 }, (_, i) => ({ path: `f${i}.txt`, body: 'x' }));

      const { err, src } = await extractInto(entries, { bytes: 1024 * 1024, entries: 10 });

      expect(err).toBeInstanceOf(SourceError);
      expect((err as Error).message).toBe(
        'the source is refused: it has more than 10 entries (REFIT_MAX_EXTRACTED_ENTRIES)',
      );
      expect(tree(src).length).toBeLessThanOrEqual(10);
    });

    it('refuses an archive that unpacks to more bytes than the limit, naming the setting, before writing them', async () => {
      // Zeros compress a thousandfold: the archive is small, what it unpacks to is not.
      const entries = [
        { path: 'small.txt', body: 'ok' },
        { path: 'big.bin', body: Buffer.alloc(200 * 1024) },
      ];

      const { err, src } = await extractInto(entries, { bytes: 100 * 1024, entries: 100 });

      expect(err).toBeInstanceOf(SourceError);
      expect((err as Error).message).toBe(
        'the source is refused: it unpacks to more than 102400 bytes (REFIT_MAX_EXTRACTED_BYTES)',
      );
      expect(existsSync(join(src, 'big.bin'))).toBe(false);
    });

    it('takes an archive of exactly the limits', async () => {
      const entries = [
        { path: 'a.bin', body: Buffer.alloc(600) },
        { path: 'b.bin', body: Buffer.alloc(424) },
      ];

      const { err, src } = await extractInto(entries, { bytes: 1024, entries: 2 });

      expect(err).toBeUndefined();
      expect(tree(src)).toEqual(['a.bin', 'b.bin']);
    });

    it('says a file that is not a tar.gz is not one', async () => {
      const root = mkdtempSync(join(tmpdir(), 'refit-archive-'));
      writeFileSync(join(root, 'x'), 'plain text');

      await expect(extract(join(root, 'x'), join(root, 'src'), 'the source', roomy)).rejects.toThrow(
        'the source is not a gzip-compressed tar archive (tar.gz)',
      );
    });
  });
});
