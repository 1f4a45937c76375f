import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  apiKeyFor,
  ensureApiKey,
  findStackKey,
  rememberStackKey,
  requestApiKey,
  stackKeysFile,
} from '../../../src/local/api-key';

describe('api-key', () => {
  const fresh = (): string => mkdtempSync(join(tmpdir(), 'refit-key-'));

  describe('ensureApiKey', () => {
    it('creates a random key readable by its owner only, and keeps it across calls', () => {
      const file = join(fresh(), 'api.key');

      const key = ensureApiKey(file);

      expect(key).toMatch(/^[\w-]{43}$/);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(ensureApiKey(file)).toBe(key);
      expect(ensureApiKey(join(fresh(), 'api.key'))).not.toBe(key);
    });

    it('tightens a key file left readable by others', () => {
      const file = join(fresh(), 'api.key');
      writeFileSync(file, 'kept\n', { mode: 0o644 });

      expect(ensureApiKey(file)).toBe('kept');
      expect(statSync(file).mode & 0o777).toBe(0o600);
    });
  });

  describe('stackKeysFile', () => {
    it('lives in XDG_CONFIG_HOME, else ~/.config', () => {
      expect(stackKeysFile({ XDG_CONFIG_HOME: '/x', HOME: '/h' })).toBe('/x/refit/stack-keys.json');
      expect(stackKeysFile({ HOME: '/h' })).toBe('/h/.config/refit/stack-keys.json');
    });
  });

  describe('rememberStackKey and findStackKey', () => {
    it('keep one key per stack URL, so stacks on other ports do not clash, in a 0600 file', () => {
      const env = { XDG_CONFIG_HOME: fresh() };

      rememberStackKey('http://127.0.0.1:7071', 'first', env);
      rememberStackKey('http://127.0.0.1:7171', 'second', env);

      expect(findStackKey('http://127.0.0.1:7071', env)).toBe('first');
      expect(findStackKey('http://localhost:7071/', env)).toBe('first');
      expect(findStackKey('http://127.0.0.1:7171', env)).toBe('second');
      expect(findStackKey('http://127.0.0.1:7271', env)).toBeUndefined();
      expect(statSync(stackKeysFile(env)).mode & 0o777).toBe(0o600);
      expect(statSync(join(env.XDG_CONFIG_HOME, 'refit')).mode & 0o777).toBe(0o700);
    });

    it('replaces a stack’s old key, and finds nothing in a missing or malformed file', () => {
      const env = { XDG_CONFIG_HOME: fresh() };
      expect(findStackKey('http://127.0.0.1:7071', env)).toBeUndefined();

      rememberStackKey('http://127.0.0.1:7071', 'old', env);
      rememberStackKey('http://127.0.0.1:7071', 'new', env);
      expect(findStackKey('http://127.0.0.1:7071', env)).toBe('new');

      writeFileSync(stackKeysFile(env), 'not json');
      expect(findStackKey('http://127.0.0.1:7071', env)).toBeUndefined();
      rememberStackKey('http://127.0.0.1:7071', 'again', env);
      expect(JSON.parse(readFileSync(stackKeysFile(env), 'utf8'))).toMatchObject({
        'http://127.0.0.1:7071': 'again',
      });
    });
  });

  describe('apiKeyFor', () => {
    it('prefers REFIT_KEY to the recorded key', () => {
      const env = { XDG_CONFIG_HOME: fresh() };
      rememberStackKey('http://127.0.0.1:7071', 'recorded', env);

      expect(apiKeyFor('http://127.0.0.1:7071', env)).toBe('recorded');
      expect(apiKeyFor('http://127.0.0.1:7071', { ...env, REFIT_KEY: 'mine' })).toBe('mine');
    });
  });

  describe('requestApiKey', () => {
    const none = new URLSearchParams();
    it.each([
      ['x-functions-key', { 'x-functions-key': 'k1' }, none, 'k1'],
      ['Authorization: Bearer, as the Azure SDKs send it', { authorization: 'Bearer k2' }, none, 'k2'],
      ['a bearer scheme in any case', { authorization: 'bEaReR  k3 ' }, none, 'k3'],
      ['the code query', {}, new URLSearchParams('code=k4'), 'k4'],
      [
        'x-functions-key before a Bearer',
        { 'x-functions-key': 'k1', authorization: 'Bearer k2' },
        none,
        'k1',
      ],
    ])('takes the key from %s', (_what, headers, query, key) => {
      expect(requestApiKey(headers, query)).toBe(key);
    });

    it.each([
      ['no credentials', {}],
      ['Basic credentials', { authorization: 'Basic a2V5Og==' }],
      ['a Bearer without a token', { authorization: 'Bearer ' }],
    ])('finds no key in %s', (_what, headers) => {
      expect(requestApiKey(headers, none)).toBeNull();
    });
  });
});
