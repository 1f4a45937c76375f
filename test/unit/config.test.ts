import { randomBytes } from 'node:crypto';
import { ConfigError } from '../../src/errors';
import { loadConfig } from '../../src/config';

const base = {
  REFIT_STORAGE: 'UseDevelopmentStorage=true',
  REFIT_REGISTRY: '127.0.0.1:5000',
  REFIT_SECRET_KEY: randomBytes(32).toString('base64'),
};

describe('config', () => {
  describe('loadConfig', () => {
    it('reads a complete environment, treating loopback registries as plain HTTP', () => {
      const config = loadConfig({ ...base, REFIT_REGISTRY_ALIASES: 'localhost:5000' });
      expect(config.homeRegistryAliases).toEqual(['127.0.0.1:5000', 'localhost:5000']);
      expect(config.insecureRegistries).toEqual(['127.0.0.1:5000', 'localhost:5000']);
      expect(config.runIdPrefix).toBe('aa');
    });

    it('allows no browser origin and no public host name by default', () => {
      const config = loadConfig(base);
      expect(config.allowedOrigins).toEqual([]);
      expect(config.publicHost).toBeUndefined();
    });

    it('reads REFIT_ALLOWED_ORIGINS as a comma list of origins, and REFIT_PUBLIC_HOST', () => {
      const config = loadConfig({
        ...base,
        REFIT_ALLOWED_ORIGINS: 'https://app.example, http://localhost:3000/',
        REFIT_PUBLIC_HOST: 'refit.example',
      });
      expect(config.allowedOrigins).toEqual(['https://app.example', 'http://localhost:3000']);
      expect(config.publicHost).toBe('refit.example');
    });

    it.each([
      [{ REFIT_REGISTRY: undefined }, 'REFIT_REGISTRY'],
      [{ REFIT_STORAGE: undefined }, 'AzureWebJobsStorage'],
      [{ REFIT_SECRET_KEY: undefined }, 'REFIT_SECRET_KEY'],
      [{ REFIT_SECRET_KEY: 'c2hvcnQ=' }, 'REFIT_SECRET_KEY'],
      [{ REFIT_RUN_ID_PREFIX: 'A1' }, 'REFIT_RUN_ID_PREFIX'],
      [{ REFIT_LOCAL_CONCURRENCY: '0' }, 'REFIT_LOCAL_CONCURRENCY'],
      [{ REFIT_EXECUTOR: 'kubernetes' }, 'REFIT_EXECUTOR'],
      [{ REFIT_ALLOWED_ORIGINS: 'app.example' }, 'REFIT_ALLOWED_ORIGINS'],
      [{ REFIT_ALLOWED_ORIGINS: 'https://app.example/path' }, 'REFIT_ALLOWED_ORIGINS'],
      [{ REFIT_ALLOWED_ORIGINS: 'ftp://app.example' }, 'REFIT_ALLOWED_ORIGINS'],
    ])('fails fast naming the setting (%j)', (override, setting) => {
      try {
        loadConfig({ ...base, ...override });
        throw new Error('no error');
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).target).toBe(setting);
        expect((err as Error).message).toContain(setting);
      }
    });
  });
});
