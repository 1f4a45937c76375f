// A task whose registry password is a Key Vault secret, in a Refit with REFIT_IDENTITY_CLIENT_ID: Refit resolves it
// through the real @azure/keyvault-secrets client (Key Vault itself faked as its HttpClient) when the run starts, and
// the build pulls its base from a real htpasswd registry with the value.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRefit, type Refit } from '../../src/refit';
import { KeyVaultSecretError } from '../../src/secrets/key-vault';
import { call, stackConfig, uploadContext, writeContext } from '../support/api';
import { watchCommandLines } from '../support/command-lines';
import { FakeKeyVault } from '../support/fake-key-vault';
import { copyBusybox, startRegistry, testPort, type RunningRegistry } from '../support/private-registry';

const USER = 'dora';
const PASSWORD = `kv-registry-pw-${randomUUID().slice(0, 8)}`;
const IDENTITY = '0f0e0d0c-0b0a-4908-8706-050403020100';
const VAULT = 'refit-test-kv.vault.azure.net';
const PASSWORD_URI = `https://${VAULT}/secrets/registry-password`;

describe('TaskService with Key Vault', () => {
  const root = mkdtempSync(join(tmpdir(), 'refit-kv-'));
  const vault = new FakeKeyVault();
  let priv: RunningRegistry;
  let r: Refit;
  let base: string;

  beforeAll(async () => {
    priv = await startRegistry(join(root, 'private'), 'keyvault', testPort(990), {
      htpasswd: { user: USER, password: PASSWORD },
    });
    base = `${priv.host}/private/kv-base:1`;
    await copyBusybox(root, [base], { username: USER, password: PASSWORD });
    vault.setSecret(VAULT, 'registry-password', PASSWORD);
    r = createRefit(stackConfig({ REFIT_IDENTITY_CLIENT_ID: IDENTITY }), {
      keyVault: { httpClient: vault, credential: vault.credential, maxRetries: 0 },
    });
  });
  afterAll(async () => {
    await priv.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function createTask(name: string): Promise<Record<string, unknown>> {
    const context = await uploadContext(
      writeContext({ Dockerfile: `FROM ${base}\nRUN sleep 1; echo built-from-the-private-base\n` }),
    );
    return r.tasks.create(name, {
      properties: {
        platform: { os: 'Linux', architecture: 'amd64' },
        step: { type: 'Docker', contextPath: context, imageNames: [], isPushEnabled: false },
        credentials: {
          customRegistries: {
            [priv.host]: {
              userName: { type: 'Opaque', value: USER },
              password: { type: 'Vaultsecret', value: PASSWORD_URI },
            },
          },
        },
      },
    });
  }

  it('runs a task whose registry password is a Key Vault secret: the build pulls its private base with the value, which is in no response, log or command line', async () => {
    vault.allow(IDENTITY, VAULT);
    const name = `kv-task-${randomUUID().slice(0, 8)}`;
    const created = await createTask(name);
    expect(JSON.stringify(created)).not.toContain(PASSWORD);
    // Nothing is read from Key Vault when the task is stored: only its URI is kept.
    expect(vault.requests).toEqual([]);

    const run = await r.tasks.runFromRequest({ type: 'TaskRunRequest', taskId: name });
    expect(JSON.stringify(run)).not.toContain(PASSWORD);
    expect(vault.tokenRequests.map((t) => [t.clientId, t.scopes])).toEqual([
      [IDENTITY, ['https://vault.azure.net/.default']],
    ]);

    // The test stack takes the run from the queue; every command line on the machine is read until it ends.
    const watched = await watchCommandLines(run.runId, PASSWORD, {
      bud: (line) => line.startsWith('buildah ') && line.includes(' bud ') && line.includes(`/${run.runId}-`),
      step: (line) => line.includes('sleep 1; echo built-from-the-private-base'),
    });
    expect(watched.run.status).toBe('Succeeded');
    expect(watched.seen).toEqual(['bud', 'step']);
    expect(watched.leaked).toEqual([]);
    const log = (await call('GET', `/runs/${run.runId}/log`)).text;
    expect(log).toContain('built-from-the-private-base');
    expect(log).not.toContain(PASSWORD);
    const shown = await call('GET', `/runs/${run.runId}`);
    expect(shown.text).not.toContain(PASSWORD);
    const task = await call('GET', `/tasks/${name}`);
    expect(task.text).not.toContain(PASSWORD);
    expect(task.body.properties.credentials.customRegistries[priv.host].password).toEqual({
      type: 'Vaultsecret',
    });
  }, 180000);

  it('refuses to start a run whose Key Vault secret the identity may not read, naming the field and the permission', async () => {
    const name = `kv-denied-${randomUUID().slice(0, 8)}`;
    await createTask(name);
    const denied = new FakeKeyVault();
    denied.setSecret(VAULT, 'registry-password', PASSWORD);
    const other = createRefit(stackConfig({ REFIT_IDENTITY_CLIENT_ID: IDENTITY }), {
      keyVault: { httpClient: denied, credential: denied.credential, maxRetries: 0 },
    });
    const err = await other.tasks.runFromRequest({ type: 'TaskRunRequest', taskId: name }).then(
      () => new Error('a run was started'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(KeyVaultSecretError);
    expect((err as KeyVaultSecretError).status).toBe(400);
    expect((err as KeyVaultSecretError).target).toBe(
      `properties.credentials.customRegistries['${priv.host}'].password`,
    );
    expect(err.message).toContain(`managed identity '${IDENTITY}' lacks the get permission on secrets`);
    // The watcher's lookups on the task's behalf go on without the login (anonymously) instead of failing.
    expect(await other.tasks.loginFor(priv.host, [name])).toBeUndefined();
  });
});
