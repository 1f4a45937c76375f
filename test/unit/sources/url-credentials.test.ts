import { parseGitSource } from '../../../src/sources/git-source';
import { maskUrlCredentials, sourceSecrets, withoutUrlPassword } from '../../../src/sources/url-credentials';

describe('source', () => {
  describe('parseGitSource', () => {
    it.each([
      [
        'https://github.com/o/r.git',
        { url: 'https://github.com/o/r.git', ref: undefined, folder: undefined },
      ],
      [
        'https://github.com/o/r.git#main',
        { url: 'https://github.com/o/r.git', ref: 'main', folder: undefined },
      ],
      [
        'git://127.0.0.1:9418/app.git#dev:src/app',
        { url: 'git://127.0.0.1:9418/app.git', ref: 'dev', folder: 'src/app' },
      ],
      [
        'https://github.com/o/r#:docker/',
        { url: 'https://github.com/o/r', ref: undefined, folder: 'docker' },
      ],
    ])('splits %s', (location, expected) => {
      expect(parseGitSource(location)).toEqual(expected);
    });
  });

  describe('maskUrlCredentials', () => {
    it('hides a token in a clone URL as ACR logs do', () => {
      expect(maskUrlCredentials('git clone https://x-access-token:ghp_abc123@github.com/o/r /src')).toBe(
        'git clone https://x-access-token:*************@github.com/o/r /src',
      );
    });

    it('leaves URLs without credentials alone', () => {
      expect(maskUrlCredentials('https://github.com/o/r.git and git://127.0.0.1:9418/a.git')).toBe(
        'https://github.com/o/r.git and git://127.0.0.1:9418/a.git',
      );
    });
  });

  describe('sourceSecrets', () => {
    it('returns the password of a URL, raw and decoded', () => {
      expect(sourceSecrets('https://u:p%40ss@host/r.git')).toEqual(['p%40ss', 'p@ss']);
      expect(sourceSecrets('https://host/r.git')).toEqual([]);
    });
  });
});

describe('url-credentials', () => {
  describe('withoutUrlPassword', () => {
    it.each([
      ['https://alice:s3cret@host/r.git#main', 'https://alice@host/r.git#main', 's3cret'],
      ['https://x:p%40ss@host/r.git', 'https://x@host/r.git', 'p@ss'],
      ['https://:tok@host/r.git', 'https://host/r.git', 'tok'],
      ['https://alice:*************@host/r.git', 'https://alice@host/r.git', undefined],
      ['https://alice@host/r.git', 'https://alice@host/r.git', undefined],
      ['git://127.0.0.1:9418/a.git', 'git://127.0.0.1:9418/a.git', undefined],
    ])('splits %s', (location, clean, password) => {
      expect(withoutUrlPassword(location)).toEqual({ location: clean, ...(password ? { password } : {}) });
    });
  });
});
