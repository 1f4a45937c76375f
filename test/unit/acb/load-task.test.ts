import { loadRunTask, type LoadRunTaskOptions } from '../../../src/acb/load-task';
import { AcbError } from '../../../src/acb/errors';
import { GuardedFetch } from '../../../src/net/guarded-fetch';
import type { Run } from '../../../src/runs/run';
import type { TaskFileSpec } from '../../../src/runs/task-file-run';
import { KeyVaultSecrets } from '../../../src/secrets/key-vault';
import { FakeKeyVault } from '../../support/fake-key-vault';

const IDENTITY = '11111111-2222-3333-4444-555555555555';
const OTHER = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const VAULT = 'myvault.vault.azure.net';

const TASK = `version: v1.1.0
secrets:
  - id: dbPassword
    keyvault: https://${VAULT}/secrets/db-password
  - id: apiKey
    keyvault: https://${VAULT}/secrets/api-key
    clientID: ${OTHER}
steps:
  - cmd: alpine sh -c 'test -n "$PW"'
    env:
      - PW={{.Secrets.dbPassword}}
      - KEY={{.Secrets.apiKey}}
`;

function options(text: string, extra: Partial<LoadRunTaskOptions> = {}): LoadRunTaskOptions {
  const run = {
    runId: 'aa1',
    runType: 'QuickRun',
    createTime: '2026-11-29T00:00:00Z',
    platform: { os: 'Linux', architecture: 'amd64' },
    spec: {
      kind: 'TaskFile',
      sourceLocation: undefined,
      encodedTaskContent: Buffer.from(text).toString('base64'),
      values: [],
    } satisfies TaskFileSpec,
  } as unknown as Run & { spec: TaskFileSpec };
  return {
    run,
    secrets: { arguments: {} },
    registry: '127.0.0.1:5000',
    sharedVolume: '/workspace',
    commit: undefined,
    branch: undefined,
    readSourceFile: () => Promise.reject(new AcbError('no source')),
    http: new GuardedFetch({ privateAllowed: true, allowedHosts: [] }),
    maxAliasBytes: 1024,
    ...extra,
  };
}

function keyVault() {
  const fake = new FakeKeyVault();
  fake.setSecret(VAULT, 'db-password', 'db-pa55-from-vault');
  fake.setSecret(VAULT, 'api-key', 'api-key-from-vault');
  const resolver = new KeyVaultSecrets({
    clientId: IDENTITY,
    credential: fake.credential,
    httpClient: fake,
    maxRetries: 0,
  });
  return { fake, resolver };
}

describe('acb/load-task', () => {
  describe('loadRunTask', () => {
    it("renders {{.Secrets.<id>}} with the values Key Vault gives, each read with the secret's identity, and returns them to be masked", async () => {
      const { fake, resolver } = keyVault();
      fake.allow(IDENTITY, VAULT);
      fake.allow(OTHER, VAULT);
      const task = await loadRunTask(options(TASK, { keyVault: resolver }));
      expect(task.steps[0]!.env).toEqual(['PW=db-pa55-from-vault', 'KEY=api-key-from-vault']);
      expect(task.keyVaultSecrets).toEqual({
        dbPassword: 'db-pa55-from-vault',
        apiKey: 'api-key-from-vault',
      });
      const readers = fake.requests
        .filter((r) => r.authorization)
        .map((r) => [new URL(r.url).pathname, r.authorization]);
      expect(readers).toEqual(
        expect.arrayContaining([
          ['/secrets/db-password/', `Bearer fake-token-for-${IDENTITY}`],
          ['/secrets/api-key/', `Bearer fake-token-for-${OTHER}`],
        ]),
      );
    });

    it('fails the run naming the file, the secret and the missing permission when Key Vault refuses', async () => {
      const { fake, resolver } = keyVault();
      fake.allow(IDENTITY, VAULT);
      const err = await loadRunTask(options(TASK, { keyVault: resolver })).then(
        () => new Error('loaded'),
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(AcbError);
      expect(err.message).toMatch(
        new RegExp(
          `^the encoded task: secret 'apiKey': Key Vault refused the secret 'api-key' of vault 'myvault': the managed identity '${OTHER}' lacks the get permission`,
        ),
      );
    });

    it('fails the run naming the secret when its keyvault is not a Key Vault secret URI, before any request', async () => {
      const { fake, resolver } = keyVault();
      const text = TASK.replace(`https://${VAULT}/secrets/db-password`, 'https://metadata.example/secrets/x');
      const err = await loadRunTask(options(text, { keyVault: resolver })).then(
        () => new Error('loaded'),
        (e: unknown) => e as Error,
      );
      expect(err.message).toMatch(
        /secret 'dbPassword': 'https:\/\/metadata\.example\/secrets\/x' is not a Key Vault secret URI/,
      );
      expect(fake.requests.filter((r) => r.url.includes('metadata.example'))).toEqual([]);
    });

    it('without Key Vault, takes a secret value of the same ID, and refuses a reference without one', async () => {
      const given = options(TASK, {
        secrets: { arguments: {}, values: { dbPassword: 'local-db', apiKey: 'local-key' } },
      });
      const task = await loadRunTask(given);
      expect(task.steps[0]!.env).toEqual(['PW=local-db', 'KEY=local-key']);
      expect(task.keyVaultSecrets).toEqual({});
      await expect(loadRunTask(options(TASK))).rejects.toThrow(
        /on this machine give the value as a secret value named 'dbPassword'/,
      );
    });
  });
});
