// A task file's `secrets:` read from Key Vault by the local executor (REFIT_IDENTITY_CLIENT_ID; Key Vault itself
// faked as the real @azure/keyvault-secrets client's HttpClient): the steps get the value, the log never shows it,
// and a step variable that holds it reaches buildah by name, not on its command line.
import { randomUUID } from 'node:crypto';
import type { Refit } from '../../src/refit';
import { busyboxBase } from '../support/api';
import { FakeKeyVault } from '../support/fake-key-vault';
import {
  inProcessRefit,
  isFinished,
  runLogText,
  startTaskFileRun,
  waitForRecorded,
} from '../support/in-process';

const IDENTITY = '0f0e0d0c-0b0a-4908-8706-050403020100';
const VAULT = 'refit-task-kv.vault.azure.net';

describe('MultiStepRun', () => {
  describe('secrets from Key Vault', () => {
    const vault = new FakeKeyVault();
    const value = `kv-task-secret-${randomUUID().slice(0, 8)}`;
    let r: Refit;

    beforeAll(() => {
      vault.setSecret(VAULT, 's', value);
      vault.allow(IDENTITY, VAULT);
      r = inProcessRefit(
        { keyVault: { httpClient: vault, credential: vault.credential, maxRetries: 0 } },
        { REFIT_IDENTITY_CLIENT_ID: IDENTITY },
      );
    });
    afterAll(async () => {
      await r.executor.close();
    });

    it('runs a task file whose secret is a Key Vault reference: the steps get the value, masked in the log and off buildah command lines', async () => {
      const task = [
        'secrets:',
        '  - id: s',
        `    keyvault: https://${VAULT}/secrets/s`,
        'steps:',
        '  - id: echo',
        `    cmd: ${busyboxBase()} echo the secret is {{.Secrets.s}} end`,
        '  - id: env',
        `    cmd: ${busyboxBase()} sh -c 'echo token=$TOKEN end'`,
        '    env: ["TOKEN={{.Secrets.s}}"]',
        '',
      ].join('\n');
      const runId = await startTaskFileRun(r, task);
      const run = await waitForRecorded(r, runId, isFinished, 180000);
      const log = await runLogText(r, runId);
      expect({ status: run.status, error: run.runErrorMessage }).toEqual({
        status: 'Succeeded',
        error: undefined,
      });
      expect(vault.requests.map((q) => new URL(q.url).host)).toContain(VAULT);
      expect(log).toContain('[echo] the secret is ************* end');
      expect(log).toContain('[env] token=************* end');
      expect(log).not.toContain(value);
      // The variable is set on the container by name (buildah config reads its value from its environment).
      expect(log).toMatch(/Running command buildah config --env TOKEN /);
      expect(log).not.toMatch(/--env TOKEN=/);
    }, 240000);
  });
});
