import { randomUUID } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { DEFAULT_RUN_LOG_OPTIONS, RunLogs, type RunLogOptions } from '../../src/runs/run-log';
import { MASK } from '../../src/runs/secret-masker';
import { unhandledRejectionsDuring } from '../support/in-process';
import {
  busyboxBase,
  call,
  dockerBuild,
  uploadContext,
  waitForRun,
  writeContext,
  stackStorage,
} from '../support/api';

/** The test stack's Azurite, reached directly. */
function blobService(): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(stackStorage());
}

/** A container of its own for one test (created unless `create` is false). */
async function scratchContainer(create = true): Promise<ContainerClient> {
  const container = blobService().getContainerClient(`logs-${randomUUID()}`);
  if (create) await container.create();
  return container;
}

function logsIn(container: ContainerClient, options: Partial<RunLogOptions> = {}): RunLogs {
  return new RunLogs(container, { ...DEFAULT_RUN_LOG_OPTIONS, retryDelayMs: 50, ...options });
}

async function contentOf(logs: RunLogs, runId: string): Promise<string> {
  return (await logs.blob(runId).downloadToBuffer()).toString('utf8');
}

describe('run-log', () => {
  describe('RunLogWriter', () => {
    it('survives appends to a container that does not exist, says what was lost, and writes the rest once it does', async () => {
      const container = await scratchContainer(false);
      const logs = logsIn(container, { flushIntervalMs: 20 });
      const writer = logs.writer('run-a', []);

      const rejections = await unhandledRejectionsDuring(async () => {
        writer.line('first line');
        // Its retries run out while the container is missing: the line is lost, and the flush still resolves.
        await writer.flush();
        writer.line('second line');
        // A background append fails again while the container is missing, and one of its retries lands.
        await new Promise((resolve) => setTimeout(resolve, 100));
        await container.create();
        writer.line('third line');
        await writer.close('Succeeded');
      });

      expect(rejections).toEqual([]);
      const lines = (await contentOf(logs, 'run-a')).trimEnd().split('\n');
      expect(lines.map((l) => l.slice(20))).toEqual([
        `${Buffer.byteLength('2026/01/01 00:00:00 first line\n')} bytes of this log were lost: storage was unavailable`,
        'second line',
        'third line',
      ]);
      expect((await logs.blob('run-a').getProperties()).metadata).toEqual({ complete: 'successful' });
    });

    it('goes on into a new blob when its blob is deleted under it', async () => {
      const container = await scratchContainer();
      const logs = logsIn(container);
      await logs.create('run-b');
      const writer = logs.writer('run-b', []);

      const rejections = await unhandledRejectionsDuring(async () => {
        writer.line('before the delete');
        await writer.flush();
        await logs.blob('run-b').delete();
        writer.line('after the delete');
        await writer.close('Failed');
      });

      expect(rejections).toEqual([]);
      expect(await contentOf(logs, 'run-b')).toMatch(/^\S+ \S+ after the delete\n$/);
      expect((await logs.blob('run-b').getProperties()).metadata).toEqual({ complete: 'failed' });
    });

    it('keeps whole lines up to its cap, then one line says how much was dropped, and marks the log complete', async () => {
      const container = await scratchContainer();
      const logs = logsIn(container, { maxBytes: 1000 });
      await logs.create('run-c');
      const writer = logs.writer('run-c', []);
      const lines = Array.from(
        { length: 100 },
        (_, i) => `output line ${String(i).padStart(3, '0')} ${'x'.repeat(30)}\n`,
      );

      for (const line of lines) writer.write(line);
      await writer.close('Succeeded');

      const content = await contentOf(logs, 'run-c');
      const kept = lines.slice(0, Math.floor(1000 / lines[0]!.length));
      expect(content.startsWith(kept.join(''))).toBe(true);
      const rest = content.slice(kept.join('').length).split('\n').filter(Boolean);
      expect(rest).toHaveLength(1);
      const dropped = lines.join('').length - kept.join('').length;
      expect(rest[0]).toMatch(
        new RegExp(
          `The log reached its limit of 1000 bytes: the rest of the output \\(${dropped} bytes\\) was dropped$`,
        ),
      );
      expect((await logs.blob('run-c').getProperties()).metadata).toEqual({ complete: 'successful' });
    });

    it('batches many small writes into few blocks', async () => {
      const container = await scratchContainer();
      const logs = logsIn(container, { flushIntervalMs: 60000 });
      await logs.create('run-d');
      const writer = logs.writer('run-d', []);

      // Written over many turns of the event loop, as a build's output comes.
      for (let i = 0; i < 300; i++) {
        writer.write(`line ${i}\n`);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await writer.close('Succeeded');

      const props = await logs.blob('run-d').getProperties();
      expect(props.blobCommittedBlockCount).toBeLessThanOrEqual(2);
      const expected = Array.from({ length: 300 }, (_, i) => `line ${i}\n`).join('');
      expect(await contentOf(logs, 'run-d')).toBe(expected);
    });

    it('sends a large burst as blocks of at most 4 MiB', async () => {
      const container = await scratchContainer();
      const logs = logsIn(container, { flushIntervalMs: 60000 });
      await logs.create('run-e');
      const writer = logs.writer('run-e', []);
      const line = `${'y'.repeat(1023)}\n`;

      for (let i = 0; i < 9 * 1024; i++) writer.write(line);
      await writer.close('Succeeded');

      const props = await logs.blob('run-e').getProperties();
      expect(props.contentLength).toBe(9 * 1024 * 1024);
      expect(props.blobCommittedBlockCount).toBe(3);
    });
  });

  describe('GET /runs/{runId}/log', () => {
    it('never shows a secret build argument split across writes, in base64 or URL-encoded', async () => {
      const secret = 'Sp1it-s3cret/with+plus and=more';
      const [head, tail] = [secret.slice(0, 12), secret.slice(12)];
      // busybox has no URL encoder: a loop that keeps unreserved characters and encodes the rest as %XX.
      const leak = [
        `printf 'split: %s' '${head}'`,
        'sleep 1',
        `printf '%s\\n' "\${TOKEN#${head}}"`,
        `printf 'base64: %s\\n' "$(printf '%s' "$TOKEN" | base64 -w0)"`,
        `printf 'shifted base64: %s\\n' "$(printf 'ab%s' "$TOKEN" | base64 -w0)"`,
        's="$TOKEN"; out=""',
        'while [ -n "$s" ]; do c="${s%"${s#?}"}"; s="${s#?}"',
        '  case "$c" in [A-Za-z0-9._~-]) out="$out$c";; *) out="$out$(printf \'%%%02X\' "\'$c")";; esac',
        'done',
        'printf \'url: %s\\n\' "$out"',
      ].join('\n');
      const path = await uploadContext(
        writeContext({
          Dockerfile: `FROM ${busyboxBase()}\nARG TOKEN\nCOPY leak.sh /leak.sh\nRUN sh /leak.sh\n`,
          'leak.sh': `${leak}\n`,
        }),
      );
      const scheduled = await call(
        'POST',
        '/scheduleRun',
        dockerBuild(path, { arguments: [{ name: 'TOKEN', value: secret, isSecret: true }] }),
      );
      const runId = scheduled.body.name as string;

      const run = await waitForRun(runId);
      const log = (await call('GET', `/runs/${runId}/log`)).text;

      expect(run.status).toBe('Succeeded');
      expect(log).toContain(`split: ${MASK}`);
      expect(log).toContain(`url: ${MASK}`);
      expect(log).toMatch(/\nbase64: \*{13}/);
      expect(log).toMatch(/\nshifted base64: \S{0,3}\*{13}/);
      expect(log).not.toContain(head);
      expect(log).not.toContain(tail);
      expect(log).not.toContain(Buffer.from(secret).toString('base64').slice(0, 12));
      expect(log).not.toContain(encodeURIComponent(secret).slice(0, 15));
      // Whatever base64 is left in the log does not decode to the secret at any alignment.
      for (const word of log.match(/[A-Za-z0-9+/=]{8,}/g) ?? [])
        for (const at of [0, 1, 2, 3])
          expect(Buffer.from(word.slice(at), 'base64').toString('latin1')).not.toContain(secret.slice(0, 8));
    });

    it('never shows a secret value of a multi-step run split across writes or through b64enc', async () => {
      const secret = 'Mu1ti-s3cret/with+plus=more';
      const [head, tail] = [secret.slice(0, 12), secret.slice(12)];
      const task = [
        'steps:',
        '  - cmd: >-',
        `      ${busyboxBase()} sh -c 'printf "split: %s" \${TOKEN%${'?'.repeat(secret.length - 12)}};`,
        `      sleep 1; printf "%s\\n" \${TOKEN#${'?'.repeat(12)}}; echo b64: {{.Values.token | b64enc}}'`,
        '    env: ["TOKEN={{.Values.token}}"]',
        '',
      ].join('\n');
      const scheduled = await call('POST', '/scheduleRun', {
        type: 'EncodedTaskRunRequest',
        encodedTaskContent: Buffer.from(task).toString('base64'),
        values: [{ name: 'token', value: secret, isSecret: true }],
        platform: { os: 'Linux', architecture: 'amd64' },
      });
      expect(scheduled.status).toBe(200);
      const runId = scheduled.body.name as string;

      const run = await waitForRun(runId);
      const log = (await call('GET', `/runs/${runId}/log`)).text;

      expect(run.status).toBe('Succeeded');
      expect(log).toContain(`split: ${MASK}`);
      expect(log).toContain(`b64: ${MASK}`);
      expect(log).not.toContain(head);
      expect(log).not.toContain(tail);
      expect(log).not.toContain(Buffer.from(secret).toString('base64').slice(0, 12));
    });

    it('returns a log of several MiB whole and in order, plain and followed', async () => {
      const path = await uploadContext(writeContext({ Dockerfile: `FROM ${busyboxBase()}\nRUN true\n` }));
      const runId = (await call('POST', '/scheduleRun', dockerBuild(path))).body.name as string;
      expect((await waitForRun(runId)).status).toBe('Succeeded');
      // Several MiB more in the run's log blob, straight into storage (buildah itself may drop the tail of a RUN
      // step's output when the step prints this much).
      const blob = blobService().getContainerClient('logs').getAppendBlobClient(`${runId}/rawtext.log`);
      const numbers = Array.from({ length: 700000 }, (_, i) => `${i + 1}\n`).join('');
      for (let at = 0; at < numbers.length; at += 3 * 1024 * 1024) {
        const block = Buffer.from(numbers.slice(at, at + 3 * 1024 * 1024));
        await blob.appendBlock(block, block.length);
      }
      const stored = (await blob.downloadToBuffer()).toString('utf8');
      expect(stored.length).toBeGreaterThan(4 * 1024 * 1024);

      for (const query of ['', '?follow=true']) {
        const { status, text } = await call('GET', `/runs/${runId}/log${query}`);

        expect(status).toBe(200);
        expect(text).toBe(stored);
      }
    });
  });
});
