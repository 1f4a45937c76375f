import { isGitSource, sourceLocationProblem } from '../../../src/sources/source-path';

describe('source-path', () => {
  describe('sourceLocationProblem', () => {
    it.each([
      'source/20261123/0b9f7a5e-8a61-4f6f-9d6a-1f0e2b3c4d5e.tar.gz',
      'https://github.com/o/r.git#main:docker',
      'http://127.0.0.1:8080/app.git',
      'git://127.0.0.1:9418/app.git#dev',
      'https://user:secret@git.example.com/r.git',
      'https://example.com/context.tar.gz',
    ])('takes %s', (location) => {
      expect(sourceLocationProblem(location)).toBeUndefined();
    });

    it.each([
      ['file:///srv/repos/private.git', 'uses file://'],
      ['ssh://git@github.com/o/r.git', 'uses ssh://'],
      ['git+ssh://github.com/o/r.git', 'uses git+ssh://'],
      ['ext::sh -c touch% /tmp/pwned', 'transport::address'],
      ['fd::3', 'transport::address'],
      ['git@github.com:o/r.git', 'scp-like'],
      ['build-host:repos/r.git', 'scp-like'],
      ['/srv/repos/r.git', 'neither an uploaded source'],
      ['ftp://example.com/ctx.tar.gz', 'uses ftp://'],
    ])('refuses %s', (location, why) => {
      expect(sourceLocationProblem(location)).toContain(why);
    });
  });

  describe('isGitSource', () => {
    it.each(['ssh://h/r.git', 'file:///r', 'ext::sh', 'alice@host:r.git', 'git://h/r', 'https://h/r.git'])(
      'treats %s as git (to be refused or cloned as one)',
      (location) => {
        expect(isGitSource(location)).toBe(true);
      },
    );
  });
});
