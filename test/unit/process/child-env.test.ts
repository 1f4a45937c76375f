import { childEnv } from '../../../src/process/child-env';

describe('child-env', () => {
  describe('childEnv', () => {
    const server = {
      PATH: '/usr/bin:/bin',
      HOME: '/root',
      LANG: 'C.UTF-8',
      LC_ALL: 'C',
      https_proxy: 'http://proxy:3128',
      REFIT_SECRET_KEY: 'master-key',
      REFIT_WEBHOOK_SECRET: 'hook',
      AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountKey=k',
      NODE_OPTIONS: '--require /tmp/x.js',
      GIT_SSH_COMMAND: 'ssh -i key',
    };

    it('keeps the search path, home, locale and proxies and nothing of Refit', () => {
      expect(childEnv({}, server)).toEqual({
        PATH: '/usr/bin:/bin',
        HOME: '/root',
        LANG: 'C.UTF-8',
        LC_ALL: 'C',
        https_proxy: 'http://proxy:3128',
      });
    });

    it('adds what the caller sets for this child, over the inherited values', () => {
      const env = childEnv(
        { CONTAINERS_REGISTRIES_CONF: '/x.conf', HOME: '/acb/home', SKIP: undefined },
        server,
      );
      expect(env.CONTAINERS_REGISTRIES_CONF).toBe('/x.conf');
      expect(env.HOME).toBe('/acb/home');
      expect('SKIP' in env).toBe(false);
      expect(env.REFIT_SECRET_KEY).toBeUndefined();
    });
  });
});
