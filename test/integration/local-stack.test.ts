import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnStack, stopStack, waitHealthy, type TestStackPorts } from '../support/stack';

// Beside the shared test stack's ports (REFIT_TEST_PORT_OFFSET moves both, in steps of 100), never on them.
const offset = Number(process.env.REFIT_TEST_PORT_OFFSET ?? '0');
const ports: TestStackPorts = { api: 17121 + offset, registry: 15050 + offset, azurite: 20050 + offset };
const api = `http://127.0.0.1:${ports.api}/api`;
const dataDir = mkdtempSync(join(tmpdir(), 'refit-stack-'));
// The key npm start generated in the data folder (its CLI record goes to a config folder inside it too).
const key = (): Record<string, string> => ({
  'x-functions-key': readFileSync(join(dataDir, 'api.key'), 'utf8').trim(),
});
const start = (): ReturnType<typeof spawnStack> =>
  spawnStack(dataDir, ports, { XDG_CONFIG_HOME: join(dataDir, 'config') });

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Schedules a quick build (its source is missing, which does not matter here); returns the run ID. */
async function schedule(): Promise<string> {
  const response = await fetch(`${api}/scheduleRun`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...key() },
    body: JSON.stringify({
      type: 'DockerBuildRequest',
      dockerFilePath: 'Dockerfile',
      sourceLocation: 'source/20261123/00000000-0000-4000-8000-000000000001.tar.gz',
      platform: { os: 'Linux', architecture: 'amd64' },
    }),
  });
  return ((await response.json()) as { name: string }).name;
}

// `npm start`'s stack itself: state that survives a restart, a second start that says so, a clean stop.
describe('local stack', () => {
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps its state across a restart, refuses a second start, and stops every part on SIGTERM', async () => {
    let stack = start();
    await waitHealthy(ports.api, stack);
    const health = (await fetch(`${api}/health`).then((r) => r.json())) as { parts: Record<string, unknown> };
    expect(Object.keys(health.parts).sort()).toEqual(['blobs', 'executor', 'queues', 'registry', 'tables']);
    const first = await schedule();

    // A second start on the same data folder says so instead of failing on ports.
    const second = start();
    expect(await new Promise((resolve) => second.on('close', resolve))).toBe(1);
    expect(readFileSync(join(dataDir, 'stack.out'), 'utf8')).toContain('Refit is already running');

    expect(await stopStack(stack)).toBe(0);
    for (const port of [ports.api, ports.registry, ports.azurite, ports.azurite + 1, ports.azurite + 2]) {
      expect(await portOpen(port)).toBe(false);
    }
    expect(() => readFileSync(join(dataDir, 'refit.pid'))).toThrow();

    stack = start();
    await waitHealthy(ports.api, stack);
    const again = (await fetch(`${api}/runs/${first}`, { headers: key() }).then((r) => r.json())) as {
      name: string;
    };
    expect(again.name).toBe(first);
    expect(await schedule()).not.toBe(first);
    expect(await stopStack(stack)).toBe(0);
  });

  it('keeps its API key in the data folder and the user config folder, readable by its user only, and never prints it', () => {
    const key = readFileSync(join(dataDir, 'api.key'), 'utf8').trim();
    const recorded = join(dataDir, 'config', 'refit', 'stack-keys.json');
    expect(key).toMatch(/^[\w-]{43}$/);
    expect(statSync(join(dataDir, 'api.key')).mode & 0o777).toBe(0o600);
    expect(statSync(recorded).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(recorded, 'utf8'))[`http://127.0.0.1:${ports.api}`]).toBe(key);
    const output = readFileSync(join(dataDir, 'stack.out'), 'utf8');
    expect(output).toContain(`API key: in ${join(dataDir, 'api.key')}`);
    expect(output).not.toContain(key);
  });

  it('keeps its data folder to its user, secrets included, and prints no secret', () => {
    // The folder holds the keys, Azurite's files and the registry's config with the notification bearer.
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const output = readFileSync(join(dataDir, 'stack.out'), 'utf8');
    for (const file of [
      'secret.key',
      'storage.key',
      'webhook.secret',
      'registry-webhook.secret',
      'registry.yml',
    ]) {
      expect([file, statSync(join(dataDir, file)).mode & 0o777]).toEqual([file, 0o600]);
      if (file !== 'registry.yml')
        expect(output).not.toContain(readFileSync(join(dataDir, file), 'utf8').trim());
    }
  });
});
