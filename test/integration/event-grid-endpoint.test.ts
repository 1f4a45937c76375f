// The local host's Event Grid webhook, in this process with storage faults injected, delivering real ACR events
// (test/fixtures/fuzz/event-grid); the test stack's own host takes the queued pushes and records its decisions.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalHost } from '../../src/local/host';
import { createRefit } from '../../src/refit';
import { StorageFaults } from '../../src/storage/storage-faults';
import { call, registry, stackConfig, until } from '../support/api';
import { serveInProcess } from '../support/in-process';

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
    let base: string;
    ({ host, url: base } = await serveInProcess(createRefit(stackConfig(), { faults }), ['eventGrid'], key));
    url = `${base}/runtime/webhooks/eventgrid?functionName=imageEventGrid&code=${key}`;
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
