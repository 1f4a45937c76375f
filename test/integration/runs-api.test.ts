import {
  busyboxBase,
  call,
  dockerBuild,
  keyHeader,
  uploadBytes,
  uploadContext,
  waitForRun,
  writeContext,
} from '../support/api';

// The HTTP API of runs against the real local stack: precise 4xx for bad input, nothing lost.
describe('runs API', () => {
  describe('POST /scheduleRun', () => {
    it.each([
      ['malformed JSON', '{"type": "DockerBuildRequest",', 400, 'not valid JSON'],
      ['an empty body', '', 400, 'no body'],
      [
        'a missing dockerFilePath',
        {
          ...dockerBuild('source/20261123/0b9f7a5e-8a61-4f6f-9d6a-1f0e2b3c4d5e.tar.gz'),
          dockerFilePath: undefined,
        },
        400,
        'dockerFilePath is required',
      ],
      ['an unknown request type', { type: 'MagicRequest' }, 400, "type 'MagicRequest' is not one of"],
      [
        'an invalid image name',
        dockerBuild('source/20261123/0b9f7a5e-8a61-4f6f-9d6a-1f0e2b3c4d5e.tar.gz', {
          imageNames: ['Not/Valid:tag'],
        }),
        400,
        'not a valid image reference',
      ],
    ])('answers %s with a 4xx naming the problem', async (_what, body, status, message) => {
      const res = await call('POST', '/scheduleRun', body);
      expect(res.status).toBe(status);
      expect(res.body.error.message).toContain(message);
      expect(res.body.error.code).toBe('InvalidRequest');
    });

    it('answers an oversize body with 413', async () => {
      const res = await call(
        'POST',
        '/scheduleRun',
        JSON.stringify({ type: 'DockerBuildRequest', pad: 'x'.repeat(2 * 1024 * 1024) }),
      );
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe('PayloadTooLarge');
    });

    it('answers another media type with 415', async () => {
      const res = await call('POST', '/scheduleRun', 'type=DockerBuildRequest', {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(res.status).toBe(415);
    });

    it('answers an unknown path with 404 and a wrong method with 405', async () => {
      expect((await call('GET', '/nothing-here')).status).toBe(404);
      const wrong = await call('DELETE', '/scheduleRun');
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get('allow')).toBe('POST');
    });

    it('gives unique run IDs to concurrent requests', async () => {
      const body = dockerBuild('source/20261123/00000000-0000-4000-8000-000000000000.tar.gz');
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => call('POST', '/scheduleRun', body)),
      );
      const ids = responses.map((r) => r.body.name as string);
      expect(responses.every((r) => r.status === 200)).toBe(true);
      expect(new Set(ids).size).toBe(20);
      expect(ids.every((id) => /^aa[0-9a-hjkmnp-y]+$/.test(id))).toBe(true);
      // None of them has a source: each fails on its own, with the reason.
      const run = await waitForRun(ids[0]!);
      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain('was not found');
    });
  });

  describe('an uploaded source that is not a tar.gz', () => {
    it('fails the run with a clear runErrorMessage and the host keeps serving', async () => {
      const path = await uploadBytes(Buffer.from('PK\u0003\u0004 this is a zip, not a tar.gz'));
      const scheduled = await call('POST', '/scheduleRun', dockerBuild(path));
      expect(scheduled.status).toBe(200);
      expect(scheduled.body.properties.status).toBe('Queued');

      const run = await waitForRun(scheduled.body.name);

      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toBe('the uploaded source is not a gzip-compressed tar archive (tar.gz)');
      expect((await call('GET', '/health')).status).toBe(200);
      const log = await call('GET', `/runs/${scheduled.body.name}/log`);
      expect(log.text).toContain('not a gzip-compressed tar archive');
    });
  });

  describe('GET /runs', () => {
    it('lists newest first, pages with $top and nextLink, and filters', async () => {
      const ctx = writeContext({ Dockerfile: `FROM ${busyboxBase()}\nRUN true\n` });
      const path = await uploadContext(ctx);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await call('POST', '/scheduleRun', dockerBuild(path))).body.name);

      // Other test files schedule runs at the same time: look only at these three.
      const mine = encodeURIComponent(ids.map((id) => `runId eq '${id}'`).join(' or '));
      const first = await call('GET', `/runs?$top=2&$filter=${mine}`);
      expect(first.status).toBe(200);
      expect(first.body.value.map((r: any) => r.name)).toEqual([ids[2], ids[1]]);
      expect(new URL(first.body.nextLink as string).searchParams.get('$skipToken')).toBeTruthy();
      const next = await fetch(first.body.nextLink, { headers: keyHeader() }).then(
        (r) => r.json() as Promise<any>,
      );
      expect(next.value[0].name).toBe(ids[0]);

      const byId = await call(
        'GET',
        `/runs?$filter=${encodeURIComponent(`runId eq '${ids[1]}' or runId eq '${ids[0]}'`)}`,
      );
      expect(byId.body.value.map((r: any) => r.name)).toEqual([ids[1], ids[0]]);

      await Promise.all(ids.map((id) => waitForRun(id)));
      const succeeded = await call(
        'GET',
        `/runs?$filter=${encodeURIComponent("Status eq 'Succeeded' and runType eq 'QuickBuild'")}&$top=50`,
      );
      expect(succeeded.body.value.every((r: any) => r.properties.status === 'Succeeded')).toBe(true);
      expect(succeeded.body.value.map((r: any) => r.name)).toEqual(expect.arrayContaining(ids));
    });

    it.each([
      ["$filter=image eq 'x'", "cannot filter on 'image'"],
      ['$top=0', '$top must be'],
      ['$top=abc', '$top must be'],
    ])('answers a bad query (%s) with 400', async (query, message) => {
      const res = await call('GET', `/runs?${query.replace(/ /g, '%20')}`);
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain(message);
    });
  });

  describe('GET, PATCH, cancel and logs of one run', () => {
    let runId: string;
    beforeAll(async () => {
      const path = await uploadContext(
        writeContext({ Dockerfile: `FROM ${busyboxBase()}\nRUN echo done\n` }),
      );
      runId = (await call('POST', '/scheduleRun', dockerBuild(path))).body.name;
      await waitForRun(runId);
    });

    it('answers an unknown run with 404 everywhere', async () => {
      for (const [method, path] of [
        ['GET', '/runs/aa999999'],
        ['GET', '/runs/zz1'],
        ['POST', '/runs/aa999999/cancel'],
        ['POST', '/runs/aa999999/listLogSasUrl'],
        ['GET', '/runs/aa999999/log'],
      ] as const) {
        const res = await call(method, path);
        expect(res.status).toBe(404);
        expect(res.body.error.code).toBe('ResourceNotFound');
      }
      expect((await call('PATCH', '/runs/aa999999', { isArchiveEnabled: true })).status).toBe(404);
    });

    it('updates isArchiveEnabled and nothing else', async () => {
      const res = await call('PATCH', `/runs/${runId}`, { isArchiveEnabled: true });
      expect(res.status).toBe(200);
      expect(res.body.properties.isArchiveEnabled).toBe(true);
      const bad = await call('PATCH', `/runs/${runId}`, { status: 'Succeeded' });
      expect(bad.status).toBe(400);
      expect(bad.body.error.target).toBe('status');
      const notBool = await call('PATCH', `/runs/${runId}`, { isArchiveEnabled: 'yes' });
      expect(notBool.status).toBe(400);
      expect((await call('GET', `/runs/${runId}`)).body.properties.isArchiveEnabled).toBe(true);
    });

    it('refuses to cancel a finished run with 409', async () => {
      const res = await call('POST', `/runs/${runId}/cancel`);
      expect(res.status).toBe(409);
      expect(res.body.error.message).toContain('already finished (Succeeded)');
    });

    it('hands out a read-only log link that serves the log', async () => {
      const res = await call('POST', `/runs/${runId}/listLogSasUrl`);
      expect(res.status).toBe(200);
      const log = await fetch(res.body.logLink as string);
      expect(log.status).toBe(200);
      expect(await log.text()).toContain(`Run ID: ${runId} was successful`);
      const write = await fetch(res.body.logLink as string, {
        method: 'PUT',
        headers: { 'x-ms-blob-type': 'BlockBlob' },
        body: 'overwrite',
      });
      expect(write.status).toBe(403);
    });
  });
});
