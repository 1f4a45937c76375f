import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnStack, stopStack, waitHealthy, type TestStackPorts } from '../support/stack';

// Beside the shared test stack's ports (REFIT_TEST_PORT_OFFSET moves both, in steps of 100), never on them.
const offset = Number(process.env.REFIT_TEST_PORT_OFFSET ?? '0');
const ports: TestStackPorts = { api: 17121 + offset, registry: 15050 + offset, azurite: 20050 + offset };
const api = `http://127.0.0.1:${ports.api}/api`;

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
    headers: { 'content-type': 'application/json' },
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
  const dataDir = mkdtempSync(join(tmpdir(), 'refit-stack-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps its state across a restart, refuses a second start, and stops every part on SIGTERM', async () => {
    let stack = spawnStack(dataDir, ports);
    await waitHealthy(ports.api, stack);
    const health = (await fetch(`${api}/health`).then((r) => r.json())) as { parts: Record<string, unknown> };
    expect(Object.keys(health.parts).sort()).toEqual(['blobs', 'executor', 'queues', 'registry', 'tables']);
    const first = await schedule();

    // A second start on the same data folder says so instead of failing on ports.
    const second = spawnStack(dataDir, ports);
    expect(await new Promise((resolve) => second.on('close', resolve))).toBe(1);
    expect(readFileSync(join(dataDir, 'stack.out'), 'utf8')).toContain('Refit is already running');

    expect(await stopStack(stack)).toBe(0);
    for (const port of [ports.api, ports.registry, ports.azurite, ports.azurite + 1, ports.azurite + 2]) {
      expect(await portOpen(port)).toBe(false);
    }
    expect(() => readFileSync(join(dataDir, 'refit.pid'))).toThrow();

    stack = spawnStack(dataDir, ports);
    await waitHealthy(ports.api, stack);
    const again = (await fetch(`${api}/runs/${first}`).then((r) => r.json())) as { name: string };
    expect(again.name).toBe(first);
    expect(await schedule()).not.toBe(first);
    expect(await stopStack(stack)).toBe(0);
  });
});
