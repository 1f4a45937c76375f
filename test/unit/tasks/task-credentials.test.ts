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
} from '../../../src/tasks/task-credentials';
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

    it('refuses an identity for the home registry (sourceRegistry.identity): Azure mode only', () => {
      const err = errorOf(() =>
        splitCredentials(credentialsSchema.parse({ sourceRegistry: { identity: '[system]' } }), {}, names),
      );
      expect(err.target).toBe('properties.credentials.sourceRegistry.identity');
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

    it('unseals the login for the registry under any of its names', () => {
      expect(registryCredentials(stored, '127.0.0.1:5000', { secretKey: key, names })).toEqual({
        username: 'alice',
        password: 'pw-home',
      });
      expect(registryCredentials(stored, 'localhost:5000', { secretKey: key, names })).toBeDefined();
    });

    it('has none for another registry', () => {
      expect(registryCredentials(stored, '127.0.0.1:5002', { secretKey: key, names })).toBeUndefined();
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
