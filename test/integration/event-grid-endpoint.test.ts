// The local host's Event Grid webhook, in this process with storage faults injected, delivering real ACR events
// (test/fixtures/fuzz/event-grid); the test stack's own host takes the queued pushes and records its decisions.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { functions } from '../../functions/definitions';
import { LocalHost } from '../../src/local/host';
import { createRefit, setRefit } from '../../src/refit';
import { StorageFaults } from '../../src/storage/storage-faults';
import { call, registry, stackConfig } from '../support/api';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** ACR's ImagePushed in the Event Grid schema, as captured, pointed at the test registry under a new repository. */
function imagePushed(repository: string): Record<string, any> {
  const seed = JSON.parse(
    readFileSync(join(__dirname, '../fixtures/fuzz/event-grid/seed-event-grid-schema.json'), 'utf8'),
  ) as { input: Record<string, any> };
  const id = randomUUID();
  const event = seed.input;
  return {
    ...event,
    id,
    subject: `${repository}:1`,
    data: {
      ...event.data,
      id,
      target: { ...event.data.target, repository, tag: '1' },
      request: { ...event.data.request, host: registry() },
    },
  };
}

const IMAGE_PUSHES = /\/image-pushes\/messages/;

describe('local/event-grid-endpoint', () => {
  const key = 'event-grid-key';
  const faults = new StorageFaults();
  let host: LocalHost;
  let url = '';

  beforeAll(async () => {
    const r = createRefit(stackConfig(), { faults });
    setRefit(r);
    const port = await freePort();
    host = new LocalHost(
      functions.filter((f) => f.kind === 'eventGrid'),
      {
        host: '127.0.0.1',
        port,
        apiKey: key,
        maxBodyBytes: r.config.maxBodyBytes,
        allowedOrigins: [],
        publicHost: undefined,
        queue: (name) => r.storage.queue(name),
      },
    );
    await host.start();
    url = `http://127.0.0.1:${port}/runtime/webhooks/eventgrid?functionName=imageEventGrid&code=${key}`;
  });
  afterAll(() => host.stop());
  afterEach(() => faults.clear());

  const deliver = (events: unknown[], headers: Record<string, string>): Promise<Response> =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(events),
    });

  describe('serveEventGrid', () => {
    it('answers 400 naming aeg-event-type to a delivery without it, and calls no handler', async () => {
      faults.inject({ method: 'POST', path: IMAGE_PUSHES });
      const res = await deliver([imagePushed(`grid-endpoint/${randomUUID()}`)], {});
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
        'aeg-event-type',
      );
      expect(faults.injected).toBe(0);
    });

    it('answers 500 when one event of a batch fails, so Event Grid redelivers, and the redelivery takes both', async () => {
      const repository = `grid-endpoint/${randomUUID()}`;
      const batch = [imagePushed(repository), imagePushed(repository)];
      faults.inject({ method: 'POST', path: IMAGE_PUSHES, times: 1 });

      const first = await deliver(batch, { 'aeg-event-type': 'Notification' });
      expect(first.status).toBe(500);
      expect(await first.text()).not.toMatch(/injected|devstoreaccount1/);
      expect(faults.injected).toBe(1);

      const again = await deliver(batch, { 'aeg-event-type': 'Notification' });
      expect(again.status).toBe(202);
      const image = encodeURIComponent(`${registry()}/${repository}:1`);
      const recorded = await until('both events decided', async () => {
        const ids = new Set(
          ((await call('GET', `/imageUpdates?image=${image}`)).body.value as { eventId: string }[]).map(
            (u) => u.eventId,
          ),
        );
        return batch.every((e) => ids.has(e.id as string)) ? ids : undefined;
      });
      expect([...recorded].sort()).toEqual(batch.map((e) => e.id as string).sort());
    });
  });
});
