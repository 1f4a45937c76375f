import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TEST_SOURCE_LIMIT } from '../support/global-setup';
import {
  busyboxBase,
  call,
  dockerBuild,
  uploadBytes,
  waitForRun,
  writeContext,
  stackStorage,
} from '../support/api';
import { QueueServiceClient } from '@azure/storage-queue';
import { packContext } from '../../src/cli/source-archive';
import { LOCAL_POLICY } from '../../src/net/address-policy';
import { GuardedFetch } from '../../src/net/guarded-fetch';
import { UpdateNotifier } from '../../src/triggers/update-notification';

const FIELD = 'properties.trigger.baseImageTrigger.updateTriggerEndpoint';

function taskWithEndpoint(endpoint: string): Record<string, unknown> {
  return {
    properties: {
      step: { type: 'Docker', contextPath: 'http://127.0.0.1:9/ctx.tar.gz', imageNames: ['guard/app:v'] },
      trigger: {
        baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime', updateTriggerEndpoint: endpoint },
      },
    },
  };
}

// What Refit fetches because a request told it to: refused where it must not go, bounded in size.
describe('outbound guard', () => {
  describe('updateTriggerEndpoint', () => {
    it.each(['http://169.254.169.254/x', 'http://[fe80::1]/x', 'http://0.0.0.0/x'])(
      'refuses %s at task create with a 400 naming the field, and stores nothing',
      async (endpoint) => {
        const res = await call('PUT', '/tasks/guard-create', taskWithEndpoint(endpoint));

        expect(res.status).toBe(400);
        expect(res.body.error.target).toBe(FIELD);
        expect(res.body.error.message).toContain('updateTriggerEndpoint is refused');
        expect((await call('GET', '/tasks/guard-create')).status).toBe(404);
      },
    );

    it('refuses the metadata address at task update with a 400 naming the field, and keeps the task as it was', async () => {
      const created = await call('PUT', '/tasks/guard-update', taskWithEndpoint('http://127.0.0.1:9/notify'));
      expect(created.status).toBe(201);

      const res = await call('PATCH', '/tasks/guard-update', {
        properties: {
          trigger: { baseImageTrigger: { name: 'b', updateTriggerEndpoint: 'http://169.254.169.254/x' } },
        },
      });

      expect(res.status).toBe(400);
      expect(res.body.error.target).toBe(FIELD);
      expect(res.body.error.message).toContain('169.254.169.254 is a cloud metadata address');
      const kept = await call('GET', '/tasks/guard-update');
      expect(kept.body.properties.trigger.baseImageTrigger.updateTriggerEndpoint).toBe(
        'http://127.0.0.1:9/notify',
      );
    });
  });

  describe('UpdateNotifier.deliver', () => {
    it('delivers to an allowed endpoint, and drops (never retries) one whose name now resolves to the metadata address', async () => {
      const received: string[] = [];
      const server = createServer((req, res) => {
        received.push(req.headers['x-refit-delivery'] as string);
        res.end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      const queue =
        QueueServiceClient.fromConnectionString(stackStorage()).getQueueClient('update-notifications');
      // The name was fine at task create; by delivery it resolves to the metadata address (DNS rebinding).
      const http = new GuardedFetch(LOCAL_POLICY, {
        resolve: (name) =>
          Promise.resolve([
            { address: name === 'rebound.test' ? '169.254.169.254' : '127.0.0.1', family: 4 },
          ]),
      });
      const notifier = new UpdateNotifier(queue, () => Promise.resolve(undefined), http);
      const message = (endpoint: string, runId: string): string =>
        JSON.stringify({
          endpoint,
          payloadType: 'Token',
          taskName: 'notified',
          runId,
          registry: 'r',
          imageUpdateTrigger: { id: 'e', timestamp: '2026-11-29T00:00:00Z', images: [] },
        });
      try {
        await notifier.deliver(message(`http://fine.test:${port}/notify`, 'run-ok'));
        await notifier.deliver(message(`http://rebound.test:${port}/notify`, 'run-refused'));
      } finally {
        await http.close();
        await new Promise((resolve) => server.close(resolve));
      }

      expect(received).toEqual(['run-ok']);
    });
  });

  describe('tarball contexts', () => {
    it('fails a quick build from the metadata address at once, saying it was refused and why', async () => {
      const scheduled = await call('POST', '/scheduleRun', dockerBuild('http://169.254.169.254/ctx.tar.gz'));

      const run = await waitForRun(scheduled.body.name as string);

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toBe(
        'the source http://169.254.169.254/ctx.tar.gz could not be downloaded: the destination is refused: 169.254.169.254 is a cloud metadata address',
      );
      // The reason is the guard's, given before any connection: a connect attempt to that address would have ended
      // in a connection error or a timeout (the test's bound), never in this message.
    });

    describe('from a server on loopback', () => {
      let server: Server;
      let base = '';

      beforeAll(async () => {
        const small = await packContext(
          writeContext({ Dockerfile: `FROM ${busyboxBase()}\n` }),
          'Dockerfile',
        );
        server = createServer((req, res) => {
          if (req.url === '/redirect')
            return res.writeHead(302, { location: 'http://169.254.169.254/ctx.tar.gz' }).end();
          if (req.url === '/huge.tar.gz') {
            // No Content-Length: the size is only known by counting.
            res.writeHead(200, { 'content-type': 'application/gzip' });
            const chunk = Buffer.concat([small, randomBytes(1024 * 1024)]);
            let sent = 0;
            const more = (): void => {
              while (sent <= TEST_SOURCE_LIMIT) {
                sent += chunk.length;
                if (!res.write(chunk)) return void res.once('drain', more);
              }
              res.end();
            };
            return more();
          }
          res.writeHead(404).end();
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      });

      afterAll(() => new Promise((resolve) => server.close(resolve)));

      it('refuses a redirect to the metadata address', async () => {
        const run = await waitForRun(
          (await call('POST', '/scheduleRun', dockerBuild(`${base}/redirect`))).body.name,
        );

        expect(run.status).toBe('Failed');
        expect(run.runErrorMessage).toContain(
          'the destination is refused: 169.254.169.254 is a cloud metadata address',
        );
      });

      it('stops a download larger than the limit, naming the setting', async () => {
        const run = await waitForRun(
          (await call('POST', '/scheduleRun', dockerBuild(`${base}/huge.tar.gz`))).body.name,
        );

        expect(run.status).toBe('Failed');
        expect(run.runErrorMessage).toBe(
          `the source ${base}/huge.tar.gz could not be downloaded: the answer of ${base.slice(7)} is larger than the limit of ${TEST_SOURCE_LIMIT} bytes (REFIT_MAX_SOURCE_BYTES)`,
        );
      });
    });
  });

  describe('alias files', () => {
    let server: Server;
    let base = '';

    beforeAll(async () => {
      server = createServer((req, res) => {
        if (req.url === '/big.yaml') return res.end(`greeting: ${'x'.repeat(2 * 1024 * 1024)}\n`);
        res.end('greeting: echo hello-from-alias\n');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(() => new Promise((resolve) => server.close(resolve)));

    const quickRun = async (src: string): Promise<any> => {
      const task = [
        'version: v1.1.0',
        'alias:',
        '  src:',
        `    - ${src}`,
        'steps:',
        `  - cmd: ${busyboxBase()} $greeting`,
      ];
      const scheduled = await call('POST', '/scheduleRun', {
        type: 'EncodedTaskRunRequest',
        encodedTaskContent: Buffer.from(task.join('\n') + '\n').toString('base64'),
        platform: { os: 'Linux', architecture: 'amd64' },
      });
      expect(scheduled.status).toBe(200);
      return waitForRun(scheduled.body.name as string);
    };

    it('reads an alias file from a server on loopback', async () => {
      const run = await quickRun(`${base}/aliases.yaml`);

      expect(run.status).toBe('Succeeded');
      expect((await call('GET', `/runs/${run.runId}/log`)).text).toContain('hello-from-alias');
    });

    it('refuses an alias file on the metadata address, saying why', async () => {
      const run = await quickRun('http://169.254.169.254/aliases.yaml');

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain(
        "alias file 'http://169.254.169.254/aliases.yaml' could not be read: the destination is refused: 169.254.169.254 is a cloud metadata address",
      );
    });

    it('refuses an alias file larger than the limit, naming the setting', async () => {
      const run = await quickRun(`${base}/big.yaml`);

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain('larger than the limit of 1048576 bytes (REFIT_MAX_ALIAS_BYTES)');
    });
  });

  describe('uploaded sources', () => {
    it('fails a run whose upload is larger than the limit, naming the setting, and keeps the upload', async () => {
      const path = await uploadBytes(randomBytes(TEST_SOURCE_LIMIT + 1));

      const run = await waitForRun((await call('POST', '/scheduleRun', dockerBuild(path))).body.name);

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toBe(
        `the uploaded source is ${TEST_SOURCE_LIMIT + 1} bytes, larger than the limit of ${TEST_SOURCE_LIMIT} bytes (REFIT_MAX_SOURCE_BYTES)`,
      );
      // Nothing stored is lost: a second run reads the same upload and fails the same way.
      const again = await waitForRun((await call('POST', '/scheduleRun', dockerBuild(path))).body.name);
      expect(again.runErrorMessage).toBe(run.runErrorMessage);
    });
  });
});
