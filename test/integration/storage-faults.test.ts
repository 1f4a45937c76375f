import { randomUUID } from 'node:crypto';
import { createRefit } from '../../src/refit';
import { names } from '../../src/storage/storage';
import { StorageFaults } from '../../src/storage/storage-faults';
import { stackConfig } from '../support/api';

describe('StorageFaults', () => {
  const faults = new StorageFaults();
  const refit = createRefit(stackConfig(), { faults });
  afterEach(() => faults.clear());

  describe('inject', () => {
    it('fails the matching table requests until cleared, and lets the others through to Azurite', async () => {
      const table = refit.storage.table(names.tables.dedupe);
      const row = { partitionKey: 'faults-test', rowKey: randomUUID() };
      faults.inject({ method: 'POST', path: /\/dedupe(\?|$)/ });
      await expect(table.createEntity(row)).rejects.toThrow(/injected storage fault: POST/);
      await expect(table.getEntity(row.partitionKey, row.rowKey)).rejects.toMatchObject({ statusCode: 404 });
      faults.clear();
      await table.createEntity(row);
      await expect(table.getEntity(row.partitionKey, row.rowKey)).resolves.toMatchObject(row);
    });

    it('fails queue sends and blob writes, the given number of times', async () => {
      // A queue of the test's own: the stack's host would take a message from one of Refit's.
      const queue = refit.storage.queue('storage-faults-test');
      await queue.createIfNotExists();
      const blob = refit.storage
        .container(names.containers.logs)
        .getAppendBlobClient(`faults-${randomUUID()}`);
      faults.inject({ path: /\/storage-faults-test\/messages/, times: 1 });
      faults.inject({ path: /\/logs\/faults-/, times: 2 });
      await expect(queue.sendMessage(JSON.stringify({ runIds: [] }))).rejects.toThrow(/injected/);
      await expect(blob.create()).rejects.toThrow(/injected/);
      await expect(blob.create()).rejects.toThrow(/injected/);
      await blob.create();
      const sent = await queue.sendMessage(JSON.stringify({ runIds: [] }));
      await queue.deleteMessage(sent.messageId, sent.popReceipt);
      expect(faults.injected).toBe(3);
    });
  });
});
