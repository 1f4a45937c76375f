// A Refit with REFIT_EXECUTOR=aci in the test's process, against the fake ARM surface: shared by the aci tests.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import type { LocalHost } from '../../src/local/host';
import { createRefit, type Refit } from '../../src/refit';
import { createSourceUploadUrl } from '../../src/sources/source-upload';
import { ensureStorage } from '../../src/storage/storage';
import { packContext } from '../../src/cli/source-archive';
import { registry, until, writeContext } from './api';
import { startAzurite, type RunningAzurite } from './azurite';
import type { FakeAci } from './fake-aci';
import { GitServer } from './git';
import { serveInProcess } from './in-process';

export const SUB = '00000000-0000-0000-0000-0000000000a1';
export const RG = 'rg-refit-builds';
export const API_KEY = 'aci-test-key';
/** kaniko, played by buildah (kaniko cannot run here). */
export const STAND_IN = join(__dirname, 'kaniko-stand-in.sh');
/** A token credential for the fake ARM (it checks none). */
export const credential = {
  getToken: async () => ({ token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3600e3 }),
};

/**
 * A Refit in this process with REFIT_EXECUTOR=aci: its storage an Azurite of its own (the test stack's host must not
 * take its queues), its ARM the fake (which also plays each group: the real fetch and report scripts run here, kaniko
 * played by a buildah stand-in), its API and queue triggers served by a local host in this process.
 */
export async function aciRefit(
  root: string,
  azurite: RunningAzurite,
  fake: FakeAci,
  env: Record<string, string> = {},
): Promise<{ r: Refit; host: LocalHost; url: string }> {
  const config = loadConfig({
    REFIT_EXECUTOR: 'aci',
    REFIT_STORAGE: azurite.connectionString,
    REFIT_REGISTRY: registry(),
    REFIT_SECRET_KEY: readFileSync(join(process.env.REFIT_TEST_DATA_DIR!, 'secret.key'), 'utf8').trim(),
    REFIT_WORK_DIR: join(root, 'work'),
    // Its registry and git server are on loopback, which an Azure deployment refuses unless allowed.
    REFIT_ALLOWED_HOSTS: '127.0.0.1',
    REFIT_ACI_SUBSCRIPTION_ID: SUB,
    REFIT_ACI_RESOURCE_GROUP: RG,
    REFIT_ACI_LOCATION: 'westeurope',
    REFIT_ACI_IDENTITY_ID: `/subscriptions/${SUB}/resourceGroups/rg-refit/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-builder`,
    REFIT_ACI_IDENTITY_CLIENT_ID: '00000000-0000-0000-0000-0000000000c1',
    REFIT_ACI_MEMORY_GB: '2',
    ...env,
  });
  const r = createRefit(config, { azure: { httpClient: fake, credential } });
  await ensureStorage(r.storage);
  const { host, url } = await serveInProcess(r, ['http', 'queue'], API_KEY);
  return { r, host, url };
}

/** A call to the in-process API, with its key. */
export async function api(
  url: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/api${path}`, {
    method,
    headers: { 'x-functions-key': API_KEY, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Uploads a context to `r`'s storage, as `az acr build` does through listBuildSourceUploadUrl. */
export async function upload(r: Refit, files: Record<string, string>): Promise<string> {
  const slot = await createSourceUploadUrl(r.storage);
  const put = await fetch(slot.uploadUrl, {
    method: 'PUT',
    headers: { 'x-ms-blob-type': 'BlockBlob' },
    body: await packContext(writeContext(files), 'Dockerfile'),
  });
  expect(put.status).toBe(201);
  return slot.relativePath;
}

/**
 * A run's log once it is marked complete: the run's record is written before its log's last line ("Run ID: … was
 * successful"), so a test that reads that line waits for the mark.
 */
export async function completeLogOf(r: Refit, runId: string): Promise<string> {
  await until('the run log to be marked complete', async () =>
    (await r.logs.blob(runId).getProperties()).metadata?.complete ? true : undefined,
  );
  return logOf(r, runId);
}

/** A run's log blob as it is now. */
export async function logOf(r: Refit, runId: string): Promise<string> {
  return (await r.logs.blob(runId).downloadToBuffer()).toString('utf8');
}

/** What {@link aciSuite} sets up for a describe block: read its fields inside tests (they are set in beforeAll). */
export interface AciSuite {
  readonly fake: FakeAci;
  readonly git: GitServer;
  readonly r: Refit;
  readonly url: string;
}

/**
 * Sets up, for the enclosing describe block, an aci Refit served in-process on an Azurite of its own (at `port`), a
 * git server and `fake` (which plays the groups); all torn down after the block.
 */
export function aciSuite(fake: FakeAci, port: number): AciSuite {
  const root = mkdtempSync(join(tmpdir(), 'refit-aci-'));
  const git = new GitServer();
  let azurite: RunningAzurite;
  let host: LocalHost;
  const suite = { fake, git } as { fake: FakeAci; git: GitServer; r: Refit; url: string };
  beforeAll(async () => {
    azurite = await startAzurite(join(root, 'azurite'), port);
    await git.start();
    const served = await aciRefit(root, azurite, fake);
    host = served.host;
    suite.r = served.r;
    suite.url = served.url;
  });
  afterAll(async () => {
    await host.stop();
    await fake.stop();
    await azurite.stop();
    git.stop();
    rmSync(root, { recursive: true, force: true });
  });
  return suite;
}
