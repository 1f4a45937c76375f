import { randomUUID } from 'node:crypto';
import { MASK } from '../../src/runs/secret-masker';
import { names } from '../../src/storage/storage';
import { StorageFaults } from '../../src/storage/storage-faults';
import { busyboxBase } from '../support/api';
import {
  inProcessRefit,
  isFinished,
  startQuickBuild,
  unhandledRejectionsDuring,
  waitForRecorded,
} from '../support/in-process';

/** Short retries, so that an outage outlasts them within a test. */
const RETRIES = 2;

/** The append requests of one run's log blob. */
function appendsOf(runId: string): RegExp {
  return new RegExp(`/${names.containers.logs}/${runId}/rawtext\\.log\\?.*comp=appendblock`);
}

describe('run-log', () => {
  const faults = new StorageFaults();
  const r = inProcessRefit({ faults, runLog: { retries: RETRIES, retryDelayMs: 50, maxRetryDelayMs: 200 } });
  afterEach(() => faults.clear());
  afterAll(() => r.executor.close());

  describe('RunLogWriter', () => {
    it('retries a failed append and loses nothing when storage comes back within the retries', async () => {
      const runId = `faults-${randomUUID()}`;
      await r.logs.create(runId);
      const writer = r.logs.writer(runId, []);
      faults.inject({ path: appendsOf(runId), times: RETRIES });

      writer.line('first line');
      await writer.flush();
      writer.line('second line');
      await writer.close('Succeeded');

      const text = (await r.logs.blob(runId).downloadToBuffer()).toString('utf8');
      expect(text.split('\n').map((l) => l.slice(20))).toEqual(['first line', 'second line', '']);
      expect(faults.injected).toBe(RETRIES);
    });

    it('gives up on a part storage never takes, goes on, and says in the log how many bytes were lost', async () => {
      const runId = `faults-${randomUUID()}`;
      await r.logs.create(runId);
      const writer = r.logs.writer(runId, ['hunter2-secret']);
      faults.inject({ path: appendsOf(runId), times: RETRIES + 1 });

      const rejections = await unhandledRejectionsDuring(async () => {
        writer.line('lost line with hunter2-secret');
        await writer.flush();
        writer.line('kept line with hunter2-secret');
        await writer.close('Succeeded');
      });

      expect(rejections).toEqual([]);
      const lost = Buffer.byteLength(`2026/01/01 00:00:00 lost line with ${MASK}\n`);
      const text = (await r.logs.blob(runId).downloadToBuffer()).toString('utf8');
      expect(text.split('\n').map((l) => l.slice(20))).toEqual([
        `${lost} bytes of this log were lost: storage was unavailable`,
        `kept line with ${MASK}`,
        '',
      ]);
      expect((await r.logs.blob(runId).getProperties()).metadata).toEqual({ complete: 'successful' });
    });

    it('writes the note about lost bytes at close when the last append was lost too', async () => {
      const runId = `faults-${randomUUID()}`;
      await r.logs.create(runId);
      const writer = r.logs.writer(runId, []);
      writer.line('kept line');
      await writer.flush();
      faults.inject({ path: appendsOf(runId), times: RETRIES + 1 });

      writer.write('a partial line');
      await writer.close('Failed');

      const text = (await r.logs.blob(runId).downloadToBuffer()).toString('utf8');
      expect(text.split('\n').map((l) => l.slice(20))).toEqual([
        'kept line',
        '14 bytes of this log were lost: storage was unavailable',
        '',
      ]);
      expect((await r.logs.blob(runId).getProperties()).metadata).toEqual({ complete: 'failed' });
    });
  });

  describe('a build whose log appends fail for a while', () => {
    it('still succeeds, with its secrets masked, and its log says which part was lost', async () => {
      const secret = `s3cret-${randomUUID()}`;
      let runId = '';
      const rejections = await unhandledRejectionsDuring(async () => {
        runId = await startQuickBuild(
          r,
          {
            Dockerfile: [
              `FROM ${busyboxBase()}`,
              'ARG TOKEN',
              // Output for several seconds: the appends that fail are those of the middle of the build.
              'RUN for i in 1 2 3 4 5 6; do echo "step $i of the build with $TOKEN"; sleep 1; done',
              '',
            ].join('\n'),
          },
          { arguments: [{ name: 'TOKEN', value: secret, isSecret: true }] },
        );
        // The first append landed (the log has content): from now on, storage refuses this log's appends.
        const blob = r.logs.blob(runId);
        for (let deadline = Date.now() + 60000; ;) {
          const size = (await blob.getProperties()).contentLength ?? 0;
          if (size > 0) break;
          if (Date.now() > deadline) throw new Error('the build wrote nothing');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        faults.inject({ path: appendsOf(runId), times: RETRIES + 1 });
        await waitForRecorded(r, runId, isFinished);
      });

      const run = await r.runs.get(runId);
      const blob = r.logs.blob(runId);
      const text = (await blob.downloadToBuffer()).toString('utf8');
      expect(rejections).toEqual([]);
      expect(faults.injected).toBe(RETRIES + 1);
      expect(run.status).toBe('Succeeded');
      expect(text).toMatch(/\n\S+ \S+ \d+ bytes of this log were lost: storage was unavailable\n/);
      expect(text).toContain(`Run ID: ${runId} was successful`);
      expect(text).not.toContain(secret);
      expect(text).toContain(`with ${MASK}`);
      expect((await blob.getProperties()).metadata).toEqual({ complete: 'successful' });
    });
  });
});
