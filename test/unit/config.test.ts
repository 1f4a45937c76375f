import { randomBytes } from 'node:crypto';
import { ConfigError } from '../../src/errors';
import { config, forgetSecretSettings, loadConfig } from '../../src/config';

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

    it('caps a run log at 64 MiB unless REFIT_MAX_LOG_BYTES says otherwise', () => {
      expect(loadConfig(base).maxLogBytes).toBe(64 * 1024 * 1024);
      expect(loadConfig({ ...base, REFIT_MAX_LOG_BYTES: '1048576' }).maxLogBytes).toBe(1048576);
    });

    it('keeps finished runs 30 days, as ACR does, unless REFIT_RETENTION_DAYS says otherwise', () => {
      expect(loadConfig(base).retentionDays).toBe(30);
      expect(loadConfig({ ...base, REFIT_RETENTION_DAYS: '90' }).retentionDays).toBe(90);
    });

    it('watches registries every 5 to 10 minutes with a 2-minute settle, and treats the home registry and REFIT_EVENT_REGISTRIES as sending events', () => {
      expect(loadConfig(base).polling).toEqual({
        eventRegistries: [base.REFIT_REGISTRY],
        intervalMinSeconds: 300,
        intervalMaxSeconds: 600,
        settleSeconds: 120,
      });
      const set = loadConfig({
        ...base,
        REFIT_EVENT_REGISTRIES: ' hub.example , harbor.example',
        REFIT_POLL_INTERVAL_MIN: '5',
        REFIT_POLL_INTERVAL_MAX: '5',
        REFIT_POLL_SETTLE: '1',
      }).polling;
      expect(set).toEqual({
        eventRegistries: [base.REFIT_REGISTRY, 'hub.example', 'harbor.example'],
        intervalMinSeconds: 5,
        intervalMaxSeconds: 5,
        settleSeconds: 1,
      });
    });

    it("admits ACI creates within ACI's quotas (100 cores, 300 creates an hour) unless the settings say otherwise", () => {
      expect(loadConfig(base).aciAdmission).toEqual({ maxCores: 100, createsPerHour: 300 });
      expect(
        loadConfig({ ...base, REFIT_ACI_MAX_CORES: '400', REFIT_ACI_CREATES_PER_HOUR: '1200' }).aciAdmission,
      ).toEqual({ maxCores: 400, createsPerHour: 1200 });
    });

    it.each([
      ['REFIT_ACI_MAX_CORES', '0'],
      ['REFIT_ACI_MAX_CORES', '2.5'],
      ['REFIT_ACI_CREATES_PER_HOUR', '-1'],
      ['REFIT_ACI_CREATES_PER_HOUR', 'many'],
    ])('refuses %s=%s with a ConfigError naming it', (name, value) => {
      let error: unknown;
      try {
        loadConfig({ ...base, [name]: value });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).target).toBe(name);
      expect((error as Error).message).toContain(name);
    });

    it('bounds what Refit downloads and unpacks, each limit with its own setting', () => {
      expect(loadConfig(base).limits).toEqual({
        sourceBytes: 512 * 1024 * 1024,
        extractedBytes: 2048 * 1024 * 1024,
        extractedEntries: 100000,
        registryResponseBytes: 4 * 1024 * 1024,
        aliasBytes: 1024 * 1024,
      });
      expect(loadConfig({ ...base, REFIT_MAX_ALIAS_BYTES: '2048' }).limits.aliasBytes).toBe(2048);
    });

    it('reads Key Vault with the managed identity REFIT_IDENTITY_CLIENT_ID names, and not at all without it', () => {
      expect(loadConfig(base).identityClientId).toBeUndefined();
      expect(
        loadConfig({ ...base, REFIT_IDENTITY_CLIENT_ID: ' 0F0E0D0C-0B0A-4908-8706-050403020100 ' })
          .identityClientId,
      ).toBe('0f0e0d0c-0b0a-4908-8706-050403020100');
    });

    it("gives buildah a storage of the deployment's own under REFIT_BUILDAH_STORAGE, and none by default", () => {
      expect(loadConfig(base)).toMatchObject({
        buildahGlobalArgs: ['--storage-driver', 'vfs'],
        buildahStorage: undefined,
      });
      expect(loadConfig({ ...base, REFIT_BUILDAH_STORAGE: '/data/buildah' })).toMatchObject({
        buildahGlobalArgs: [
          '--storage-driver',
          'vfs',
          '--root',
          '/data/buildah/root',
          '--runroot',
          '/data/buildah/runroot',
        ],
        buildahStorage: '/data/buildah',
      });
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
      [{ REFIT_MAX_LOG_BYTES: '64MiB' }, 'REFIT_MAX_LOG_BYTES'],
      [{ REFIT_EXECUTOR: 'kubernetes' }, 'REFIT_EXECUTOR'],
      [{ REFIT_EXECUTOR: 'aci' }, 'REFIT_ACI_SUBSCRIPTION_ID'],
      [{ REFIT_RETENTION_DAYS: '0' }, 'REFIT_RETENTION_DAYS'],
      [{ REFIT_RETENTION_DAYS: '-3' }, 'REFIT_RETENTION_DAYS'],
      [{ REFIT_RETENTION_DAYS: '1.5' }, 'REFIT_RETENTION_DAYS'],
      [{ REFIT_RETENTION_DAYS: '30d' }, 'REFIT_RETENTION_DAYS'],
      [{ REFIT_RETENTION_DAYS: '1e9' }, 'REFIT_RETENTION_DAYS'],
      [{ REFIT_MAX_SOURCE_BYTES: '0' }, 'REFIT_MAX_SOURCE_BYTES'],
      [{ REFIT_POLL_INTERVAL_MIN: '0' }, 'REFIT_POLL_INTERVAL_MIN'],
      [{ REFIT_POLL_INTERVAL_MAX: '5m' }, 'REFIT_POLL_INTERVAL_MAX'],
      [{ REFIT_POLL_INTERVAL_MIN: '600', REFIT_POLL_INTERVAL_MAX: '300' }, 'REFIT_POLL_INTERVAL_MIN'],
      [{ REFIT_POLL_SETTLE: '-1' }, 'REFIT_POLL_SETTLE'],
      [{ REFIT_MAX_EXTRACTED_ENTRIES: 'many' }, 'REFIT_MAX_EXTRACTED_ENTRIES'],
      [{ REFIT_ALLOWED_ORIGINS: 'app.example' }, 'REFIT_ALLOWED_ORIGINS'],
      [{ REFIT_ALLOWED_ORIGINS: 'https://app.example/path' }, 'REFIT_ALLOWED_ORIGINS'],
      [{ REFIT_ALLOWED_ORIGINS: 'ftp://app.example' }, 'REFIT_ALLOWED_ORIGINS'],
      [{ REFIT_BUILDAH_STORAGE: 'relative/buildah' }, 'REFIT_BUILDAH_STORAGE'],
      [{ REFIT_IDENTITY_CLIENT_ID: 'my-identity' }, 'REFIT_IDENTITY_CLIENT_ID'],
      [
        { REFIT_BUILDAH_STORAGE: '/data/buildah', REFIT_BUILDAH_ARGS: '--root /var/lib/other' },
        'REFIT_BUILDAH_STORAGE',
      ],
      [
        { REFIT_BUILDAH_STORAGE: '/data/buildah', REFIT_BUILDAH_ARGS: '--runroot=/run/other' },
        'REFIT_BUILDAH_STORAGE',
      ],
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

  describe('loadConfig: arm', () => {
    it.each([
      ['myreg.azurecr.io', {}, 'myreg'],
      ['myreg.example.com:5000', {}, 'myreg'],
      ['127.0.0.1:5000', {}, 'refit'],
      ['localhost:5000', {}, 'refit'],
      ['127.0.0.1:5000', { REFIT_ARM_REGISTRY_NAME: 'prodreg' }, 'prodreg'],
    ])('answers for REFIT_REGISTRY %s %j as registry %s', (registry, env, name) => {
      expect(loadConfig({ ...base, REFIT_REGISTRY: registry, ...env }).arm).toEqual({
        registryName: name,
        subscriptionId: undefined,
        resourceGroup: undefined,
      });
    });

    it('refuses a REFIT_ARM_REGISTRY_NAME that is not an ACR registry name', () => {
      expect(() => loadConfig({ ...base, REFIT_ARM_REGISTRY_NAME: 'my-reg' })).toThrow(
        expect.objectContaining({ target: 'REFIT_ARM_REGISTRY_NAME' }),
      );
    });
  });

  describe('forgetSecretSettings', () => {
    it('removes the secret settings and keeps the rest', () => {
      const env: Record<string, string | undefined> = {
        ...base,
        REFIT_WEBHOOK_SECRET: 'w',
        REFIT_REGISTRY_WEBHOOK_SECRET: 'r',
        REFIT_KEY: 'k',
        AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountKey=x',
        PATH: '/bin',
      };
      forgetSecretSettings(env);
      expect(env).toEqual({ REFIT_REGISTRY: '127.0.0.1:5000', PATH: '/bin' });
    });
  });

  describe('config', () => {
    it('loads the settings once and leaves the secret ones in the config object only (Azure mode)', () => {
      const saved = { ...process.env };
      Object.assign(process.env, base, { REFIT_WEBHOOK_SECRET: 'hook-secret' });
      try {
        const loaded = config();
        expect(loaded.webhookSecret).toBe('hook-secret');
        expect(loaded.secretKey.toString('base64')).toBe(base.REFIT_SECRET_KEY);
        expect(process.env.REFIT_SECRET_KEY).toBeUndefined();
        expect(process.env.REFIT_WEBHOOK_SECRET).toBeUndefined();
        expect(process.env.REFIT_STORAGE).toBeUndefined();
        expect(process.env.REFIT_REGISTRY).toBe('127.0.0.1:5000');
        expect(config()).toBe(loaded);
      } finally {
        for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
        Object.assign(process.env, saved);
      }
    });
  });
});
