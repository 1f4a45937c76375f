import { ValidationError } from '../../../src/errors';
import { RegistryNames } from '../../../src/registry/registry-names';
import { credentialsSchema } from '../../../src/tasks/credentials-schema';
import { taskResource, type Task } from '../../../src/tasks/task';
import {
  checkLoginServer,
  mergeCredentials,
  registryCredentials,
  requestLogins,
  splitCredentials,
  taskLogins,
} from '../../../src/tasks/task-credentials';
import { KeyVaultSecretError, KeyVaultSecrets } from '../../../src/secrets/key-vault';
import { FakeKeyVault } from '../../support/fake-key-vault';
import { openTaskSecrets, sealTaskSecrets } from '../../../src/tasks/task-secrets';
import type { StoredTask } from '../../../src/tasks/task-store';

const names = new RegistryNames('127.0.0.1:5000', ['localhost:5000']);
const key = Buffer.alloc(32, 7);

const body = (customRegistries: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  credentialsSchema.parse({ customRegistries, ...extra });

const login = (user: string, password: string) => ({
  userName: { type: 'Opaque', value: user },
  password: { type: 'Opaque', value: password },
});

function errorOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('task-credentials', () => {
  describe('splitCredentials', () => {
    it('keeps the login server, the user name and the types, and puts the password apart', () => {
      const split = splitCredentials(
        body({ '127.0.0.1:5002': login('alice', 's3cret-pw') }, { sourceRegistry: { loginMode: 'Default' } }),
        {},
        names,
      );
      expect(split.credentials).toEqual({
        sourceRegistry: { loginMode: 'Default' },
        customRegistries: {
          '127.0.0.1:5002': { userName: { type: 'Opaque', value: 'alice' }, password: { type: 'Opaque' } },
        },
      });
      expect(JSON.stringify(split.credentials)).not.toContain('s3cret-pw');
      expect(split.passwords).toEqual({ '127.0.0.1:5002': 's3cret-pw' });
    });

    it('keeps the stored password when a password is given without a value (a task read and written back)', () => {
      const first = splitCredentials(body({ 'reg.example.com': login('alice', 'pw-1') }), {}, names);
      const again = splitCredentials(
        body({
          'reg.example.com': { userName: { type: 'Opaque', value: 'alice' }, password: { type: 'Opaque' } },
        }),
        { credentials: first.credentials, passwords: first.passwords },
        names,
      );
      expect(again.passwords).toEqual({ 'reg.example.com': 'pw-1' });
    });

    it.each([
      [
        'a Key Vault password',
        {
          'reg.example.com': { ...login('a', 'b'), password: { type: 'Vaultsecret', value: 'https://kv/x' } },
        },
        "properties.credentials.customRegistries['reg.example.com'].password.type",
        /Azure mode/,
      ],
      [
        'a managed identity',
        { 'reg.example.com': { identity: '[system]' } },
        "properties.credentials.customRegistries['reg.example.com'].identity",
        /Azure mode/,
      ],
      [
        'a user name without a password',
        { 'reg.example.com': { userName: { type: 'Opaque', value: 'alice' } } },
        "properties.credentials.customRegistries['reg.example.com'].password",
        /needs a password/,
      ],
      [
        'no user name',
        { 'reg.example.com': { password: { type: 'Opaque', value: 'pw' } } },
        "properties.credentials.customRegistries['reg.example.com'].userName",
        /needs a userName/,
      ],
      [
        'a login server with a scheme',
        { 'https://reg.example.com': login('a', 'b') },
        'properties.credentials.customRegistries',
        /not a registry login server/,
      ],
      [
        'two names of one registry',
        { 'localhost:5000': login('a', 'b'), '127.0.0.1:5000': login('c', 'd') },
        "properties.credentials.customRegistries['127.0.0.1:5000']",
        /are the same registry/,
      ],
    ])('refuses %s with a 400 naming the field', (_what, registries, target, message) => {
      const err = errorOf(() => splitCredentials(body(registries), {}, names));
      expect(err.status).toBe(400);
      expect(err.target).toBe(target);
      expect(err.message).toMatch(message);
    });

    it("parses ACR's own example (Key Vault user name and password, a system identity), then refuses it here: Azure mode only", () => {
      // TasksUpdate_WithKeyVaultCustomCredentials.json's credentials.
      const acrExample = credentialsSchema.parse({
        customRegistries: {
          'myregistry.azurecr.io': {
            identity: '[system]',
            password: { type: 'Vaultsecret', value: 'https://myacbvault.vault.azure.net/secrets/password' },
            userName: { type: 'Vaultsecret', value: 'https://myacbvault.vault.azure.net/secrets/username' },
          },
        },
      });
      const err = errorOf(() => splitCredentials(acrExample, {}, names));
      expect(err.message).toMatch(/resolved in Azure mode only/);
    });

    it("accepts [system] as the home registry identity (sourceRegistry.identity): the deployment's own access", () => {
      const split = splitCredentials(
        credentialsSchema.parse({ sourceRegistry: { identity: '[System]' } }),
        {},
        names,
      );
      expect(split.credentials).toEqual({ sourceRegistry: { identity: '[system]' }, customRegistries: {} });
    });

    it('refuses another home registry identity, naming the field', () => {
      const err = errorOf(() =>
        splitCredentials(
          credentialsSchema.parse({ sourceRegistry: { identity: 'e35621a5-f615-4a20-940e-de8a84b15abc' } }),
          {},
          names,
        ),
      );
      expect(err.target).toBe('properties.credentials.sourceRegistry.identity');
      expect(err.message).toMatch(/deployment's own access.*\[system\]/);
    });
  });

  describe('mergeCredentials', () => {
    const current = splitCredentials(
      body({ 'a.example.com': login('alice', 'pw-a'), 'b.example.com': login('bob', 'pw-b') }),
      {},
      names,
    );

    it('removes a login server set to null, keeps the others, and adds a new one (ARM merge)', () => {
      const merged = mergeCredentials(
        current.credentials,
        body({ 'a.example.com': null, 'c.example.com': login('carol', 'pw-c') }),
      );
      const split = splitCredentials(merged, current, names);
      expect(Object.keys(split.credentials!.customRegistries).sort()).toEqual([
        'b.example.com',
        'c.example.com',
      ]);
      expect(split.passwords).toEqual({ 'b.example.com': 'pw-b', 'c.example.com': 'pw-c' });
    });

    it('replaces the password of a login server given again, keeping its user name', () => {
      const merged = mergeCredentials(
        current.credentials,
        body({ 'b.example.com': { password: { type: 'Opaque', value: 'pw-b2' } } }),
      );
      const split = splitCredentials(merged, current, names);
      expect(split.credentials!.customRegistries['b.example.com']!.userName.value).toBe('bob');
      expect(split.passwords['b.example.com']).toBe('pw-b2');
    });

    it('leaves the credentials as they are when the update names none', () => {
      const split = splitCredentials(mergeCredentials(current.credentials, undefined), current, names);
      expect(split).toEqual(current);
    });
  });

  describe('registryCredentials', () => {
    const split = splitCredentials(body({ 'localhost:5000': login('alice', 'pw-home') }), {}, names);
    const stored = {
      task: { name: 'with-creds', credentials: split.credentials } as unknown as Task,
      sealedSecrets: sealTaskSecrets(key, {
        arguments: {},
        sourceTokens: {},
        registryPasswords: split.passwords,
      }),
    } as StoredTask;

    it('unseals the login for the registry under any of its names', async () => {
      expect(await registryCredentials(stored, '127.0.0.1:5000', { secretKey: key, names })).toEqual({
        username: 'alice',
        password: 'pw-home',
      });
      expect(await registryCredentials(stored, 'localhost:5000', { secretKey: key, names })).toBeDefined();
    });

    it('has none for another registry', async () => {
      expect(await registryCredentials(stored, '127.0.0.1:5002', { secretKey: key, names })).toBeUndefined();
    });

    it('keeps the password sealed in the stored secrets', () => {
      expect(stored.sealedSecrets).not.toContain('pw-home');
      expect(openTaskSecrets(key, stored.sealedSecrets).registryPasswords).toEqual(split.passwords);
    });
  });

  describe('requestLogins', () => {
    it("gives a run request's logins by login server, checked as a task's are", () => {
      expect(requestLogins(body({ 'reg.example.com': login('u', 'p') }), names)).toEqual({
        'reg.example.com': { username: 'u', password: 'p' },
      });
      expect(errorOf(() => requestLogins(body({ 'reg.example.com': { identity: 'x' } }), names)).target).toBe(
        "credentials.customRegistries['reg.example.com'].identity",
      );
    });
  });

  describe('checkLoginServer', () => {
    it.each(['reg.example.com', '127.0.0.1:5002', 'localhost:5000', '[::1]:5000'])('accepts %s', (s) => {
      expect(() => checkLoginServer(s, 'f')).not.toThrow();
    });
    it.each(['myregistry', 'reg.example.com/path', 'http://reg.example.com', ''])('refuses %s', (s) => {
      expect(() => checkLoginServer(s, 'f')).toThrow(ValidationError);
    });
  });

  describe('taskResource', () => {
    it('shows the login servers, user names and types, never a password', () => {
      const split = splitCredentials(
        body({ 'reg.example.com': login('alice', 'never-shown-pw') }),
        {},
        names,
      );
      const shown = taskResource({
        name: 'creds-task',
        status: 'Enabled',
        platform: { os: 'Linux', architecture: 'amd64' },
        agentConfiguration: { cpu: 2 },
        timeout: 3600,
        step: {
          type: 'Docker',
          imageNames: [],
          isPushEnabled: true,
          noCache: false,
          dockerFilePath: 'Dockerfile',
          arguments: [],
          contextPath: 'https://git.example.com/r.git',
        },
        trigger: { sourceTriggers: [], timerTriggers: [] },
        creationDate: '2026-11-29T00:00:00Z',
        timerSince: {},
        credentials: split.credentials!,
      });
      expect((shown.properties as Record<string, unknown>).credentials).toEqual({
        customRegistries: {
          'reg.example.com': { userName: { type: 'Opaque', value: 'alice' }, password: { type: 'Opaque' } },
        },
      });
      expect(JSON.stringify(shown)).not.toContain('never-shown-pw');
    });
  });
});

describe('task-credentials with Key Vault (REFIT_IDENTITY_CLIENT_ID set)', () => {
  const IDENTITY = '11111111-2222-3333-4444-555555555555';
  const OTHER = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
  const VAULT = 'myacbvault.vault.azure.net';
  const USER_URI = `https://${VAULT}/secrets/username`;
  const PASSWORD_URI = `https://${VAULT}/secrets/password`;
  const vaultLogin = (extra: Record<string, unknown> = {}) => ({
    userName: { type: 'Vaultsecret', value: USER_URI },
    password: { type: 'Vaultsecret', value: PASSWORD_URI },
    ...extra,
  });

  function keyVault() {
    const fake = new FakeKeyVault();
    fake.setSecret(VAULT, 'username', 'kv-user');
    fake.setSecret(VAULT, 'password', 'kv-password-value');
    return {
      fake,
      resolver: new KeyVaultSecrets({
        clientId: IDENTITY,
        credential: fake.credential,
        httpClient: fake,
        maxRetries: 0,
      }),
    };
  }

  describe('splitCredentials', () => {
    it("accepts ACR's own example, keeping the secret URIs (the password's sealed), resolving nothing", () => {
      // TasksUpdate_WithKeyVaultCustomCredentials.json's credentials.
      const acrExample = credentialsSchema.parse({
        customRegistries: {
          'myregistry.azurecr.io': {
            identity: '[system]',
            password: { type: 'Vaultsecret', value: PASSWORD_URI },
            userName: { type: 'Vaultsecret', value: USER_URI },
          },
        },
      });
      const split = splitCredentials(acrExample, {}, names, 'properties.credentials', true);
      expect(split.credentials!.customRegistries['myregistry.azurecr.io']).toEqual({
        identity: '[system]',
        userName: { type: 'Vaultsecret', value: USER_URI },
        password: { type: 'Vaultsecret' },
      });
      expect(split.passwords).toEqual({ 'myregistry.azurecr.io': PASSWORD_URI });
    });

    it.each([
      [
        'a password that is not a Key Vault secret URI',
        { password: { type: 'Vaultsecret', value: 'https://kv/x' } },
        'password.value',
        /not a Key Vault secret URI/,
      ],
      [
        'a user name URI on another host',
        { userName: { type: 'Vaultsecret', value: 'https://evil.example/secrets/u' } },
        'userName.value',
        /host 'evil.example'/,
      ],
      ['an identity that is not a client ID', { identity: 'my-identity' }, 'identity', /not an identity/],
    ])('refuses %s, naming the field', (_what, override, part, message) => {
      const err = errorOf(() =>
        splitCredentials(
          body({ 'reg.example.com': vaultLogin(override) }),
          {},
          names,
          'properties.credentials',
          true,
        ),
      );
      expect(err.target).toBe(`properties.credentials.customRegistries['reg.example.com'].${part}`);
      expect(err.message).toMatch(message);
    });

    it('refuses an identity that would log in to the registry itself (no Key Vault secret to read)', () => {
      const err = errorOf(() =>
        splitCredentials(
          body({ 'reg.example.com': { identity: IDENTITY } }),
          {},
          names,
          'properties.credentials',
          true,
        ),
      );
      expect(err.target).toBe("properties.credentials.customRegistries['reg.example.com'].identity");
      expect(err.message).toMatch(/token exchange/);
    });

    it('keeps a stored password only when its type is unchanged: an Opaque password never becomes a secret URI', () => {
      const first = splitCredentials(
        body({ 'reg.example.com': login('alice', 'pw-1') }),
        {},
        names,
        'c',
        true,
      );
      const err = errorOf(() =>
        splitCredentials(
          body({
            'reg.example.com': {
              userName: { type: 'Opaque', value: 'alice' },
              password: { type: 'Vaultsecret' },
            },
          }),
          { credentials: first.credentials, passwords: first.passwords },
          names,
          'c',
          true,
        ),
      );
      expect(err.target).toBe("c.customRegistries['reg.example.com'].password");
      const vault = splitCredentials(body({ 'reg.example.com': vaultLogin() }), {}, names, 'c', true);
      const readBack = splitCredentials(
        body({
          'reg.example.com': {
            userName: { type: 'Vaultsecret', value: USER_URI },
            password: { type: 'Vaultsecret' },
          },
        }),
        { credentials: vault.credentials, passwords: vault.passwords },
        names,
        'c',
        true,
      );
      expect(readBack).toEqual(vault);
    });
  });

  describe('taskLogins', () => {
    it('resolves Vaultsecret user names and passwords through Key Vault with the deployment identity', async () => {
      const { fake, resolver } = keyVault();
      fake.allow(IDENTITY, VAULT);
      const split = splitCredentials(
        body({
          'reg.example.com': vaultLogin({ identity: '[system]' }),
          'b.example.com': login('bob', 'pw-b'),
        }),
        {},
        names,
        'properties.credentials',
        true,
      );
      const logins = await taskLogins(
        split.credentials,
        { arguments: {}, sourceTokens: {}, registryPasswords: split.passwords },
        resolver,
      );
      expect(logins).toEqual({
        'reg.example.com': { username: 'kv-user', password: 'kv-password-value' },
        'b.example.com': { username: 'bob', password: 'pw-b' },
      });
      expect(new Set(fake.tokenRequests.map((t) => t.clientId))).toEqual(new Set([IDENTITY]));
    });

    it("reads with the login's own identity when it names a client ID", async () => {
      const { fake, resolver } = keyVault();
      fake.allow(OTHER, VAULT);
      const split = splitCredentials(
        body({ 'reg.example.com': vaultLogin({ identity: OTHER }) }),
        {},
        names,
        'properties.credentials',
        true,
      );
      const logins = await taskLogins(
        split.credentials,
        { arguments: {}, sourceTokens: {}, registryPasswords: split.passwords },
        resolver,
      );
      expect(logins['reg.example.com']!.password).toBe('kv-password-value');
      expect(new Set(fake.tokenRequests.map((t) => t.clientId))).toEqual(new Set([OTHER]));
    });

    it('names the field and the missing permission when Key Vault refuses', async () => {
      const { resolver } = keyVault();
      const split = splitCredentials(
        body({ 'reg.example.com': vaultLogin() }),
        {},
        names,
        'properties.credentials',
        true,
      );
      const err = await taskLogins(
        split.credentials,
        { arguments: {}, sourceTokens: {}, registryPasswords: split.passwords },
        resolver,
      ).catch((e: unknown) => e as KeyVaultSecretError);
      expect(err).toBeInstanceOf(KeyVaultSecretError);
      expect((err as KeyVaultSecretError).target).toMatch(
        /^properties\.credentials\.customRegistries\['reg\.example\.com'\]\.(userName|password)$/,
      );
      expect((err as KeyVaultSecretError).message).toMatch(/lacks the get permission on secrets/);
    });

    it('refuses a stored Key Vault reference when this deployment has no identity to read it', async () => {
      const split = splitCredentials(
        body({ 'reg.example.com': vaultLogin() }),
        {},
        names,
        'properties.credentials',
        true,
      );
      await expect(
        taskLogins(
          split.credentials,
          { arguments: {}, sourceTokens: {}, registryPasswords: split.passwords },
          undefined,
        ),
      ).rejects.toThrow(/REFIT_IDENTITY_CLIENT_ID/);
    });
  });

  describe('registryCredentials', () => {
    it("resolves the task's Key Vault login for the registry looked up, and reads no other", async () => {
      const { fake, resolver } = keyVault();
      fake.allow(IDENTITY, VAULT);
      fake.setSecret(VAULT, 'other', 'other-password');
      const split = splitCredentials(
        body({
          'reg.example.com': vaultLogin(),
          'b.example.com': {
            userName: { type: 'Opaque', value: 'bob' },
            password: { type: 'Vaultsecret', value: `https://${VAULT}/secrets/other` },
          },
        }),
        {},
        names,
        'properties.credentials',
        true,
      );
      const stored = {
        task: { name: 'kv', credentials: split.credentials } as unknown as Task,
        sealedSecrets: sealTaskSecrets(key, {
          arguments: {},
          sourceTokens: {},
          registryPasswords: split.passwords,
        }),
      } as StoredTask;
      expect(
        await registryCredentials(stored, 'reg.example.com', { secretKey: key, names, keyVault: resolver }),
      ).toEqual({
        username: 'kv-user',
        password: 'kv-password-value',
      });
      expect(fake.requests.some((r) => r.url.includes('/secrets/other'))).toBe(false);
    });
  });

  describe('requestLogins', () => {
    it("refuses a run request's Key Vault secret, naming the field", () => {
      const err = errorOf(() => requestLogins(body({ 'reg.example.com': vaultLogin() }), names));
      expect(err.target).toBe("credentials.customRegistries['reg.example.com'].userName.type");
    });
  });
});
