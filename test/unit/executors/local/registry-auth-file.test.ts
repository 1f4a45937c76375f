import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  registryAuthFile,
  removeRegistryAuthFile,
  writeRegistryAuthFile,
} from '../../../../src/executors/local/registry-auth-file';
import { RegistryNames } from '../../../../src/registry/registry-names';

const names = new RegistryNames('127.0.0.1:5000', ['localhost:5000']);
const basic = (user: string, password: string): string =>
  Buffer.from(`${user}:${password}`).toString('base64');

describe('registry-auth-file', () => {
  describe('registryAuthFile', () => {
    it('writes containers-auth.json: each login under every name of its registry', () => {
      const file = JSON.parse(
        registryAuthFile(
          {
            'localhost:5000': { username: 'home', password: 'pw:with:colons' },
            'reg.example.com': { username: 'u', password: 'p' },
          },
          names,
        ),
      );
      expect(file).toEqual({
        auths: {
          'localhost:5000': { auth: basic('home', 'pw:with:colons') },
          '127.0.0.1:5000': { auth: basic('home', 'pw:with:colons') },
          'reg.example.com': { auth: basic('u', 'p') },
        },
      });
    });
  });

  describe('writeRegistryAuthFile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'refit-auth-file-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('creates the file readable by its owner alone, and removes it', async () => {
      const path = await writeRegistryAuthFile(
        dir,
        { 'reg.example.com': { username: 'u', password: 'p' } },
        names,
      );
      expect(statSync(path!).mode & 0o777).toBe(0o600);
      expect(readFileSync(path!, 'utf8')).toContain(basic('u', 'p'));
      await removeRegistryAuthFile(path);
      expect(statSync(path!, { throwIfNoEntry: false })).toBeUndefined();
    });

    it('writes nothing for a run without logins', async () => {
      expect(await writeRegistryAuthFile(dir, {}, names)).toBeUndefined();
      expect(await writeRegistryAuthFile(dir, undefined, names)).toBeUndefined();
    });
  });
});
