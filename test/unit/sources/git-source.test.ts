import { gitAccess, parseGitRemote, sameServer } from '../../../src/sources/git-source';
import { SourceError } from '../../../src/sources/source-error';

/** git's GIT_CONFIG_* entries as a key → value list. */
function gitConfig(env: Record<string, string>): [string, string][] {
  return Array.from({ length: Number(env.GIT_CONFIG_COUNT) }, (_, i) => [
    env[`GIT_CONFIG_KEY_${i}`]!,
    env[`GIT_CONFIG_VALUE_${i}`]!,
  ]);
}

const basic = (userPass: string): string =>
  `Authorization: Basic ${Buffer.from(userPass).toString('base64')}`;

const server = { PATH: '/usr/bin:/bin', HOME: '/root', REFIT_SECRET_KEY: 'master-key', GIT_ASKPASS: '/x' };

describe('git-source', () => {
  describe('parseGitRemote', () => {
    it('splits the credentials off a URL, decoded, and keeps the clean URL', () => {
      expect(parseGitRemote('https://alice:p%40ss@Git.Example.com/o/r.git')).toEqual({
        url: 'https://git.example.com/o/r.git',
        scheme: 'https',
        host: 'git.example.com',
        port: 443,
        username: 'alice',
        password: 'p@ss',
      });
    });

    it.each([
      ['git://127.0.0.1:9418/app.git', 'git', '127.0.0.1', 9418],
      ['git://[::1]/app.git', 'git', '::1', 9418],
      ['http://repo.test/app.git', 'http', 'repo.test', 80],
      ['https://repo.test:8443/app.git', 'https', 'repo.test', 8443],
    ])('takes %s', (url, scheme, host, port) => {
      expect(parseGitRemote(url)).toMatchObject({ url, scheme, host, port });
    });

    it.each([
      'file:///srv/repos/secret.git',
      'ssh://git@github.com/o/r.git',
      'ext::sh -c touch% /tmp/pwned',
      'git@github.com:o/r.git',
      'fd::17',
      '/srv/repos/r.git',
    ])('refuses %s as a second line behind the API', (url) => {
      expect(() => parseGitRemote(url)).toThrow(SourceError);
      expect(() => parseGitRemote(url)).toThrow('only https://, http:// and git:// URLs are cloned');
    });
  });

  describe('gitAccess', () => {
    it('sends a token as a header in the environment, never in the URL or on the command line', () => {
      const access = gitAccess(
        parseGitRemote('https://git.example.com/o/r.git'),
        'ghp_token123',
        ['203.0.113.7'],
        server,
      );
      expect(access.connectUrl).toBe('https://git.example.com/o/r.git');
      expect(access.cleanUrl).toBe('https://git.example.com/o/r.git');
      expect(access.connectUrl).not.toContain('ghp_token123');
      expect(gitConfig(access.env)).toContainEqual([
        'http.extraHeader',
        basic('x-access-token:ghp_token123'),
      ]);
    });

    it("sends a URL's user and password as the header and keeps the URL clean", () => {
      const access = gitAccess(
        parseGitRemote('https://alice:s3cret@git.example.com/o/r.git'),
        'ignored',
        ['203.0.113.7'],
        server,
      );
      expect(access.connectUrl).toBe('https://git.example.com/o/r.git');
      expect(JSON.stringify(access.connectUrl)).not.toContain('s3cret');
      expect(gitConfig(access.env)).toContainEqual(['http.extraHeader', basic('alice:s3cret')]);
    });

    it('uses the URL user name with the token', () => {
      const access = gitAccess(
        parseGitRemote('https://org@dev.azure.com/org/p/_git/r'),
        'pat',
        ['203.0.113.7'],
        server,
      );
      expect(gitConfig(access.env)).toContainEqual(['http.extraHeader', basic('org:pat')]);
    });

    it('sends no header without credentials, and none over git://', () => {
      for (const [url, token] of [
        ['https://git.example.com/o/r.git', undefined],
        ['git://127.0.0.1:9418/r.git', 'token'],
      ] as const) {
        const keys = gitConfig(gitAccess(parseGitRemote(url), token, ['127.0.0.1'], server).env).map(
          ([k]) => k,
        );
        expect(keys).not.toContain('http.extraHeader');
      }
    });

    it('pins http(s) to the checked addresses and never follows a redirect', () => {
      const access = gitAccess(
        parseGitRemote('https://git.example.com/o/r.git'),
        undefined,
        ['203.0.113.7', '2001:db8::7'],
        server,
      );
      expect(gitConfig(access.env)).toEqual(
        expect.arrayContaining([
          ['http.curloptResolve', 'git.example.com:443:203.0.113.7,[2001:db8::7]'],
          ['http.followRedirects', 'false'],
        ]),
      );
    });

    it('pins git:// by connecting to the checked address, keeping the clean URL for the clone', () => {
      const access = gitAccess(
        parseGitRemote('git://git.example.com/r.git'),
        undefined,
        ['203.0.113.7'],
        server,
      );
      expect(access.connectUrl).toBe('git://203.0.113.7/r.git');
      expect(access.cleanUrl).toBe('git://git.example.com/r.git');
    });

    it('needs no pin for an address literal', () => {
      const access = gitAccess(
        parseGitRemote('git://127.0.0.1:9418/r.git'),
        undefined,
        ['127.0.0.1'],
        server,
      );
      expect(access.connectUrl).toBe('git://127.0.0.1:9418/r.git');
      expect(gitConfig(access.env).map(([k]) => k)).not.toContain('http.curloptResolve');
    });

    it("allows only the remote's protocol, reads no host git configuration and no Refit setting", () => {
      const { env } = gitAccess(
        parseGitRemote('https://git.example.com/o/r.git'),
        't',
        ['203.0.113.7'],
        server,
      );
      expect(env).toMatchObject({
        GIT_ALLOW_PROTOCOL: 'https',
        GIT_TERMINAL_PROMPT: '0',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        PATH: '/usr/bin:/bin',
      });
      expect(env.REFIT_SECRET_KEY).toBeUndefined();
      expect(env.GIT_ASKPASS).toBeUndefined();
    });
  });

  describe('sameServer', () => {
    it.each([
      ['https://git.example.com/o/a.git#main', 'https://alice@GIT.example.com/o/b.git', true],
      ['http://127.0.0.1:8080/a.git', 'http://127.0.0.1:8081/a.git', false],
      ['https://git.example.com/a.git', 'http://git.example.com/a.git', false],
      ['https://evil.example/a.git', 'https://git.example.com/a.git', false],
      ['https://git.example.com/a.git', undefined, false],
      ['./context', 'https://git.example.com/a.git', false],
    ])('%s and %s: %s', (a, b, expected) => {
      expect(sameServer(a, b)).toBe(expected);
    });
  });
});
