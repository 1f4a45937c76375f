import { createRefit } from '../../src/refit';
import { call, stackConfig } from '../support/api';

const PASSWORD = 'api-level-pw-5521';
const login = (user: string, password?: string) => ({
  userName: { type: 'Opaque', value: user },
  password: { type: 'Opaque', ...(password ? { value: password } : {}) },
});
const task = (credentials: unknown) => ({
  properties: {
    platform: { os: 'Linux', architecture: 'amd64' },
    step: {
      type: 'Docker',
      contextPath: 'https://git.example.invalid/app.git',
      dockerFilePath: 'Dockerfile',
      imageNames: [],
    },
    credentials,
  },
});

// Tasks_Create, Tasks_Update and Tasks_Get with credentials, through the stack's HTTP API and its storage.
describe('TaskService', () => {
  describe('credentials', () => {
    it('stores logins sealed, shows user names and types only, and merges an update as ARM does', async () => {
      const created = await call(
        'PUT',
        '/tasks/creds-api',
        task({
          sourceRegistry: { loginMode: 'Default' },
          customRegistries: {
            'a.example.com': login('alice', PASSWORD),
            'b.example.com': login('bob', `${PASSWORD}-b`),
          },
        }),
      );
      expect(created.status).toBe(201);
      expect(created.body.properties.credentials).toEqual({
        sourceRegistry: { loginMode: 'Default' },
        customRegistries: {
          'a.example.com': { userName: { type: 'Opaque', value: 'alice' }, password: { type: 'Opaque' } },
          'b.example.com': { userName: { type: 'Opaque', value: 'bob' }, password: { type: 'Opaque' } },
        },
      });

      // A task read and written back whole (as `refit task timer remove` does) keeps its passwords.
      const read = await call('GET', '/tasks/creds-api');
      const { id: _id, type: _type, ...body } = read.body;
      delete body.properties.provisioningState;
      delete body.properties.creationDate;
      expect((await call('PUT', '/tasks/creds-api', body)).status).toBe(200);

      const patched = await call('PATCH', '/tasks/creds-api', {
        properties: {
          credentials: {
            customRegistries: { 'b.example.com': null, 'c.example.com': login('carol', 'pw-c') },
          },
        },
      });
      expect(patched.status).toBe(200);
      expect(Object.keys(patched.body.properties.credentials.customRegistries).sort()).toEqual([
        'a.example.com',
        'c.example.com',
      ]);
      expect(patched.body.properties.credentials.sourceRegistry).toEqual({ loginMode: 'Default' });

      for (const res of [created, read, patched, await call('GET', '/tasks?$top=100')])
        expect(JSON.stringify(res.body)).not.toContain(PASSWORD);

      // The passwords are sealed in storage, and unsealed for the registry they belong to.
      const refit = createRefit(stackConfig());
      const stored = await refit.tasks.store.get('creds-api');
      expect(JSON.stringify(stored.task)).not.toContain(PASSWORD);
      expect(stored.sealedSecrets).not.toContain(PASSWORD);
      expect(await refit.tasks.registryCredentials(stored, 'a.example.com')).toEqual({
        username: 'alice',
        password: PASSWORD,
      });
      expect(await refit.tasks.registryCredentials(stored, 'b.example.com')).toBeUndefined();
    });

    it.each([
      [
        'a Key Vault secret',
        {
          customRegistries: {
            'a.example.com': { ...login('a', 'b'), password: { type: 'Vaultsecret', value: 'x' } },
          },
        },
        "properties.credentials.customRegistries['a.example.com'].password.type",
      ],
      [
        'an identity',
        { customRegistries: { 'a.example.com': { identity: '[system]' } } },
        "properties.credentials.customRegistries['a.example.com'].identity",
      ],
      [
        'a user name without a password',
        { customRegistries: { 'a.example.com': { userName: { type: 'Opaque', value: 'a' } } } },
        "properties.credentials.customRegistries['a.example.com'].password",
      ],
      [
        'an unknown login mode',
        { sourceRegistry: { loginMode: 'Sometimes' } },
        'properties.credentials.sourceRegistry.loginMode',
      ],
    ])('refuses %s with a 400 naming the field', async (_what, credentials, target) => {
      const res = await call('PUT', '/tasks/creds-bad', task(credentials));
      expect(res.status).toBe(400);
      expect(res.body.error.target).toBe(target);
    });

    it("refuses a scheduleRun's identity with a 400 naming the field", async () => {
      const res = await call('POST', '/scheduleRun', {
        type: 'EncodedTaskRunRequest',
        encodedTaskContent: Buffer.from('version: v1.1.0\nsteps:\n  - cmd: x\n').toString('base64'),
        platform: { os: 'Linux', architecture: 'amd64' },
        credentials: { customRegistries: { 'a.example.com': { identity: '[system]' } } },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.target).toBe("credentials.customRegistries['a.example.com'].identity");
    });
  });
});
