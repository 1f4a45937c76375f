import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnStack, waitHealthy } from './stack';

// REFIT_TEST_PORT_OFFSET moves every port, so two test runs (two checkouts) can share a machine.
const offset = Number(process.env.REFIT_TEST_PORT_OFFSET ?? '0');

/** The ports of the shared test stack: apart from npm start's, so both can run at once. */
export const TEST_PORTS = { api: 17071 + offset, registry: 15000 + offset, azurite: 20000 + offset };

/** The stack's REFIT_MAX_SOURCE_BYTES: small, so that a test can go over it; far above any test's context. */
export const TEST_SOURCE_LIMIT = 8 * 1024 * 1024;

/** The stack's watcher settings: short, so that the watcher's tests wait seconds, not minutes. */
export const TEST_POLLING = {
  REFIT_POLL_INTERVAL_MIN: '1',
  REFIT_POLL_INTERVAL_MAX: '2',
  REFIT_POLL_SETTLE: '1',
};

// Starts one real local stack (Azurite, the CNCF registry, buildah) for the integration and e2e tests.
// There is no skipping: without buildah, docker-registry or git the stack fails to start and so do the tests.
export default async function globalSetup(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'refit-test-'));
  // The stack records its API key in the user's config folder, where the CLI finds it: for the tests that is a
  // folder of the test data, for the stack and for every CLI the tests start (they inherit process.env).
  process.env.XDG_CONFIG_HOME = join(dataDir, 'config');
  const child = spawnStack(dataDir, TEST_PORTS, {
    REFIT_MAX_SOURCE_BYTES: String(TEST_SOURCE_LIMIT),
    // The watcher checks each reference every 1-2 s and acts on a digest that stood 1 s: a test waits seconds.
    ...TEST_POLLING,
  });
  try {
    await waitHealthy(TEST_PORTS.api, child);
  } catch (err) {
    child.kill('SIGKILL');
    let output = '';
    try {
      output = readFileSync(join(dataDir, 'stack.out'), 'utf8');
    } catch {
      // nothing written
    }
    throw new Error(`The test stack did not start: ${(err as Error).message}\n${output}`);
  }
  process.env.REFIT_URL = `http://127.0.0.1:${TEST_PORTS.api}`;
  process.env.REFIT_TEST_REGISTRY = `127.0.0.1:${TEST_PORTS.registry}`;
  process.env.REFIT_TEST_AZURITE_PORT = String(TEST_PORTS.azurite);
  process.env.REFIT_TEST_DATA_DIR = dataDir;
  process.env.REFIT_TEST_KEY = readFileSync(join(dataDir, 'api.key'), 'utf8').trim();
  writeFileSync(join(dataDir, 'stack.pid'), String(child.pid));
  (globalThis as { __refitStack?: unknown }).__refitStack = child;
}
