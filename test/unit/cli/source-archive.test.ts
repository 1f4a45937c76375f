import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar';
import { packContext } from '../../../src/cli/source-archive';

async function read(archive: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  await new Promise<void>((resolve, reject) => {
    const parser = new tar.Parser({
      onReadEntry: (e) => {
        const chunks: Buffer[] = [];
        e.on('data', (c: Buffer) => chunks.push(c));
        e.on('end', () => files.set(e.path, Buffer.concat(chunks).toString()));
      },
    });
    parser.on('end', resolve).on('error', reject);
    Readable.from(archive).pipe(parser);
  });
  return files;
}

async function entries(archive: Buffer): Promise<string[]> {
  return [...(await read(archive)).keys()].sort();
}

describe('source-archive', () => {
  describe('packContext', () => {
    it('honours .dockerignore, re-includes ! patterns, and always sends the Dockerfile and .dockerignore', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'refit-ctx-'));
      mkdirSync(join(dir, 'node_modules', 'x'), { recursive: true });
      mkdirSync(join(dir, 'docs'));
      mkdirSync(join(dir, 'src'));
      writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
      writeFileSync(
        join(dir, '.dockerignore'),
        '# comment\nnode_modules\n*.md\n!KEEP.md\nDockerfile\ndocs\n',
      );
      writeFileSync(join(dir, 'node_modules', 'x', 'index.js'), '');
      writeFileSync(join(dir, 'README.md'), '');
      writeFileSync(join(dir, 'KEEP.md'), '');
      writeFileSync(join(dir, 'docs', 'a.txt'), '');
      writeFileSync(join(dir, 'src', 'app.js'), '');

      const archive = await packContext(dir, 'Dockerfile');

      expect(archive.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect(await entries(archive)).toEqual(['.dockerignore', 'Dockerfile', 'KEEP.md', 'src/app.js']);
    });

    it('adds a Dockerfile from outside the folder at the root, under the name given', async () => {
      const root = mkdtempSync(join(tmpdir(), 'refit-ctx-'));
      mkdirSync(join(root, 'app'));
      writeFileSync(join(root, 'app', 'main.txt'), 'main');
      writeFileSync(join(root, 'Dockerfile.outside'), 'FROM scratch\nCOPY main.txt /\n');

      const archive = await packContext(join(root, 'app'), 'x1_Dockerfile.outside', {
        path: join(root, 'Dockerfile.outside'),
        name: 'x1_Dockerfile.outside',
      });

      const files = await read(archive);
      expect([...files.keys()].sort()).toEqual(['main.txt', 'x1_Dockerfile.outside']);
      expect(files.get('x1_Dockerfile.outside')).toBe('FROM scratch\nCOPY main.txt /\n');
    });
  });
});
