// How the API answers when what it stands on fails, or when a request cannot be read: a host of Refit's own
// functions in this process, on the test stack's Azurite with storage faults injected (the queue and timer
// functions stay with the test stack).
import { randomUUID } from 'node:crypto';
import { LocalHost } from '../../src/local/host';
import { azuriteConnectionString } from '../../src/config';
import { createRefit, setRefit } from '../../src/refit';
import { health } from '../../src/health';
import { StorageFaults } from '../../src/storage/storage-faults';
import { dockerBuild, stackConfig } from '../support/api';
import { freePort, serveInProcess } from '../support/in-process';

// Every request to the runs table (list, point reads, inserts) and to table transactions; not the runs queue.
const RUNS_TABLE = /^\/devstoreaccount1\/(runs(\(|\?|$)|\$batch)/;

const key = 'error-mapping-key';

describe('functions/http', () => {
  const faults = new StorageFaults();
  let host: LocalHost;
  let url = '';

  const refit = createRefit(stackConfig(), { faults });

  beforeAll(async () => {
    ({ host, url } = await serveInProcess(refit, ['http'], key));
  });
  afterAll(() => host.stop());
  afterEach(() => faults.clear());

  const api = async (
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: any; text: string; headers: Headers }> => {
    const res = await fetch(`${url}/api${path}`, {
      method,
      headers: {
        'x-functions-key': key,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  };

  describe('errorResponse', () => {
    it('answers 503 with Retry-After and an ARM error, no SDK text, when the runs table fails; nothing stored is lost', async () => {
      const stored = await api('POST', '/scheduleRun', dockerBuild(`source/20261129/${randomUUID()}.tar.gz`));
      expect(stored.status).toBe(200);
      const runId = stored.body.name as string;

      faults.inject({ path: RUNS_TABLE });
      const listed = await api('GET', '/runs?$top=5');
      const scheduled = await api(
        'POST',
        '/scheduleRun',
        dockerBuild(`source/20261129/${randomUUID()}.tar.gz`),
      );
      const read = await api('GET', `/runs/${runId}`);

      for (const res of [listed, scheduled, read]) {
        expect(res.status).toBe(503);
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(res.body).toEqual({
          error: { code: 'ServiceUnavailable', message: expect.stringMatching(/retry after \d+ seconds/) },
        });
        expect(res.text).not.toMatch(/injected|devstoreaccount1|RestError|ECONN|REQUEST_SEND_ERROR/);
      }
      expect(faults.injected).toBeGreaterThanOrEqual(3);

      faults.clear();
      const after = await api('GET', `/runs/${runId}`);
      expect(after.status).toBe(200);
      expect(after.body.name).toBe(runId);
      const page = await api('GET', `/runs?$filter=${encodeURIComponent(`runId eq '${runId}'`)}`);
      expect(page.body.value.map((run: { name: string }) => run.name)).toEqual([runId]);
    });

    describe('with storage that refuses connections (Azurite stopped)', () => {
      let down: { host: LocalHost; url: string };
      let saved = '';
      beforeAll(async () => {
        const closed = await freePort();
        const config = stackConfig({
          REFIT_STORAGE: azuriteConnectionString('127.0.0.1', closed, closed, closed),
        });
        // No fault is injected: the StorageFaults only turn the SDKs' own retries off, so the answer is prompt.
        down = await serveInProcess(createRefit(config, { faults: new StorageFaults() }), ['http'], key);
        saved = url;
        url = down.url;
      });
      afterAll(async () => {
        url = saved;
        setRefit(refit);
        await down.host.stop();
      });

      it.each([
        ['GET', '/runs'],
        ['POST', '/scheduleRun'],
      ])('answers %s %s with 503 and Retry-After', async (method, path) => {
        const res = await api(
          method,
          path,
          method === 'POST' ? dockerBuild(`source/20261129/${randomUUID()}.tar.gz`) : undefined,
        );
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('5');
        expect(res.body.error.code).toBe('ServiceUnavailable');
        expect(res.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|RestError/);
      });
    });

    it('still answers a 4xx for what the request did wrong while storage is down', async () => {
      faults.inject({ path: RUNS_TABLE });
      const res = await api('GET', '/runs?$top=0');
      expect(res.status).toBe(400);
      expect(res.body.error.target).toBe('$top');
    });
  });

  describe('checkRequest', () => {
    it.each([
      ['a path segment', '/runs/aa%zz', "the path segment 'aa%zz' has a malformed %-escape '%zz'"],
      [
        'a path segment that is not UTF-8',
        '/runs/aa%ff',
        "the path segment 'aa%ff' has a malformed %-escape '%ff'",
      ],
      [
        '$filter',
        `/runs?$filter=${encodeURIComponent("status eq '")}%zz'`,
        "the query parameter '$filter' has a malformed %-escape '%zz'",
      ],
      ['a parameter name', '/runs?%zz=1', "the query parameter '%zz' has a malformed %-escape '%zz'"],
    ])('answers 400 naming a malformed %%-escape in %s', async (_where, path, message) => {
      const res = await api('GET', path);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('InvalidRequest');
      expect(res.body.error.message).toContain(message);
    });

    it('answers 400 naming the depth for a $filter nested 200 parentheses deep', async () => {
      const filter = `${'('.repeat(200)}status eq 'Queued'${')'.repeat(200)}`;
      const res = await api('GET', `/runs?$filter=${encodeURIComponent(filter)}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toEqual({
        code: 'InvalidRequest',
        message: expect.stringContaining('nests parentheses more than 32 deep'),
        target: '$filter',
      });
    });
  });

  describe('GET /health', () => {
    it('answers 503 with a fixed status per part and no error text when storage fails', async () => {
      faults.inject({ path: /^\/devstoreaccount1\// });
      const res = await fetch(`${url}/api/health`);
      const text = await res.text();
      expect(res.status).toBe(503);
      const body = JSON.parse(text) as { status: string; parts: Record<string, unknown> };
      expect(body.status).toBe('degraded');
      expect(body.parts.tables).toEqual({ status: 'down' });
      expect(body.parts.queues).toEqual({ status: 'down' });
      expect(body.parts.blobs).toEqual({ status: 'down' });
      expect(text).not.toMatch(/injected|devstoreaccount1|RestError|http:|buildah version/i);
      expect(faults.injected).toBeGreaterThanOrEqual(3);
    });

    it("reports the executor down when buildah cannot open the deployment's storage with its settings", async () => {
      const broken = createRefit(stackConfig({ REFIT_BUILDAH_ARGS: '--storage-driver no-such-driver' }));

      const report = await health(broken);

      expect(report.parts.executor).toEqual({ status: 'down' });
      expect(report.parts.tables).toEqual({ status: 'ok' });
      expect(report.status).toBe('degraded');
    });
  });
});
