import { randomBytes } from 'node:crypto';
import { readFileSync, mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { QueueServiceClient } from '@azure/storage-queue';
import { functions, type HttpFunction } from '../../functions/definitions';
import { scheduleRun } from '../../functions/runs';
import { azuriteConnectionString, loadConfig } from '../../src/config';
import { LocalHost } from '../../src/local/host';
import { createRefit } from '../../src/refit';
import { serveInProcess } from '../support/in-process';
import { signGitHubBody } from '../../src/triggers/github';
import { baseUrl, call, keyHeader, registry, stackStorage } from '../support/api';
import { refit } from '../support/cli';

const pushFixture = JSON.parse(
  readFileSync(join(__dirname, '../fixtures/github/push-new-branch.json'), 'utf8'),
) as unknown;
const adoFixture = JSON.parse(
  readFileSync(join(__dirname, '../fixtures/azure-devops/git-push.json'), 'utf8'),
) as unknown;

/** A raw HTTP exchange, for what fetch will not send: a Host header of our choice, a chunked body cut short. */
interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * Sends a request with node:http: a string body as it is, or `chunked.bytes` bytes chunked (no Content-Length),
 * 64 KiB at a time; should the server answer before the end, it gets no more.
 */
function raw(
  method: string,
  url: string,
  headers: Record<string, string>,
  chunked?: string | { readonly bytes: number; readonly fill?: string },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        req.destroy(); // a body cut short by the refusal is never finished
        resolve({ status: res.statusCode!, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    let answered = false;
    // Once answered, the server may close while we still write: that is the refusal working, not an error.
    req.on('error', (err) => (answered ? undefined : reject(err)));
    if (chunked === undefined || typeof chunked === 'string') return void req.end(chunked);
    const piece = Buffer.alloc(64 * 1024, chunked.fill ?? ' ');
    let sent = 0;
    const pump = (): void => {
      while (!answered && sent < chunked.bytes) {
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

const stackPort = (): number => Number(new URL(baseUrl()).port);

describe('api trust', () => {
  describe('what a web page can send', () => {
    const probeTask = `trust-probe-${randomBytes(3).toString('hex')}`;
    const runRequest = JSON.stringify({ type: 'TaskRunRequest', taskId: probeTask });
    const probeRuns = async (): Promise<number> =>
      (await call('GET', `/runs?$filter=${encodeURIComponent(`taskName eq '${probeTask}'`)}`)).body.value
        .length as number;

    beforeAll(async () => {
      const created = await call('PUT', `/tasks/${probeTask}`, {
        properties: {
          step: {
            type: 'Docker',
            contextPath: 'https://127.0.0.1:9/unreachable.git',
            imageNames: ['probe:1'],
          },
        },
      });
      expect(created.status).toBe(201);
    });

    it('refuses a no-cors POST to scheduleRun (no Content-Type, Origin: https://evil.example) with 403, and runs nothing', async () => {
      // What fetch(url, { mode: 'no-cors', method: 'POST', body: blob }) sends: bytes with no type. The key is
      // sent too, so it is the Origin that refuses.
      const res = await fetch(`${baseUrl()}/api/scheduleRun`, {
        method: 'POST',
        headers: { ...keyHeader(), origin: 'https://evil.example' },
        body: Buffer.from(runRequest),
      });

      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
        "origin 'https://evil.example' are not allowed",
      );
      expect(await probeRuns()).toBe(0);
    });

    it('refuses a JSON POST from a foreign Origin with 403', async () => {
      const res = await call('POST', '/scheduleRun', runRequest, { origin: 'https://evil.example' });

      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('Forbidden');
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(await probeRuns()).toBe(0);
    });

    it.each(['evil.example', 'evil.example:PORT', 'attacker.127.0.0.1.nip.io:PORT', '127.0.0.1:1'])(
      'refuses Host: %s (DNS rebinding) with 403',
      async (host) => {
        const res = await raw(
          'POST',
          `${baseUrl()}/api/scheduleRun`,
          {
            ...keyHeader(),
            host: host.replace('PORT', String(stackPort())),
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(runRequest)),
          },
          runRequest,
        );

        expect(res.status).toBe(403);
        expect(JSON.parse(res.body).error.message).toContain('is not a name of this host');
        expect(await probeRuns()).toBe(0);
      },
    );

    it.each(['localhost', '127.0.0.1', '[::1]'])('serves Host: %s with the port', async (name) => {
      const res = await raw('GET', `${baseUrl()}/api/health`, { host: `${name}:${stackPort()}` });
      expect(res.status).toBe(200);
    });

    it('refuses a text/plain body with 415 naming the type', async () => {
      const res = await fetch(`${baseUrl()}/api/scheduleRun`, {
        method: 'POST',
        headers: { ...keyHeader() },
        body: runRequest, // a string body goes as text/plain;charset=UTF-8
      });

      expect(res.status).toBe(415);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
        "Content-Type must be application/json, got 'text/plain;charset=UTF-8'",
      );
      expect(await probeRuns()).toBe(0);
    });

    it('refuses a body with no Content-Type with 415, and takes a bodyless POST without one', async () => {
      const untyped = await fetch(`${baseUrl()}/api/scheduleRun`, {
        method: 'POST',
        headers: keyHeader(),
        body: Buffer.from(runRequest),
      });
      expect(untyped.status).toBe(415);
      expect(((await untyped.json()) as { error: { message: string } }).error.message).toContain('got none');

      // ARM clients send bodyless POSTs with no Content-Type.
      const slot = await fetch(`${baseUrl()}/api/listBuildSourceUploadUrl`, {
        method: 'POST',
        headers: keyHeader(),
      });
      expect(slot.status).toBe(200);
    });

    it('runs the same request sent as JSON with the key and no Origin (what the CLI sends)', async () => {
      const res = await call('POST', '/scheduleRun', runRequest);

      expect(res.status).toBe(200);
      expect(await probeRuns()).toBe(1);
    });
  });

  describe('the API key', () => {
    const routes = functions.filter(
      (f): f is HttpFunction => f.kind === 'http' && f.authLevel === 'function',
    );
    const cases = routes.flatMap((f) =>
      f.methods.map((method) => [method, `/api/${f.route.replace(/\{\w+\}/g, 'aa1')}`] as const),
    );

    it.each(cases)('%s %s without a key is 401', async (method, path) => {
      const res = await fetch(`${baseUrl()}${path}`, {
        method,
        ...(['POST', 'PUT', 'PATCH'].includes(method)
          ? { headers: { 'content-type': 'application/json' }, body: '{}' }
          : {}),
      });

      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('Unauthorized');
    });

    it('refuses a wrong key with 401, in the header and in ?code=', async () => {
      expect((await fetch(`${baseUrl()}/api/runs`, { headers: { 'x-functions-key': 'guess' } })).status).toBe(
        401,
      );
      expect((await fetch(`${baseUrl()}/api/runs?code=guess`)).status).toBe(401);
    });

    it('refuses the Event Grid endpoint without ?code=', async () => {
      const res = await fetch(`${baseUrl()}/runtime/webhooks/eventgrid?functionName=imageEventGrid`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '[]',
      });
      expect(res.status).toBe(401);
    });

    it('serves GET /api/health without a key', async () => {
      expect((await fetch(`${baseUrl()}/api/health`)).status).toBe(200);
    });

    it('serves a route with the key in x-functions-key, or in ?code= as Azure Functions does', async () => {
      expect((await fetch(`${baseUrl()}/api/runs`, { headers: keyHeader() })).status).toBe(200);
      const code = encodeURIComponent(process.env.REFIT_TEST_KEY!);
      expect((await fetch(`${baseUrl()}/api/runs?code=${code}`)).status).toBe(200);
    });

    it('sends no CORS headers when no origin is configured', async () => {
      const res = await fetch(`${baseUrl()}/api/runs`, { headers: keyHeader() });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    });
  });

  describe("the stack's storage", () => {
    it('refuses the well-known Azurite development key and anonymous requests, and takes its own', async () => {
      const port = Number(process.env.REFIT_TEST_AZURITE_PORT);
      const withDevKey = QueueServiceClient.fromConnectionString(
        azuriteConnectionString('127.0.0.1', port, port + 1, port + 2),
      );
      await expect(withDevKey.getQueueClient('runs').peekMessages()).rejects.toMatchObject({
        statusCode: 403,
      });
      const anonymous = await fetch(
        `http://127.0.0.1:${port + 1}/devstoreaccount1/runs/messages?peekonly=true`,
      );
      expect(anonymous.status).toBe(403);
      const own = QueueServiceClient.fromConnectionString(stackStorage());
      await expect(own.getQueueClient('runs').peekMessages()).resolves.toBeDefined();
    });
  });

  describe('the refit CLI', () => {
    it('finds the key by itself from another folder (REFIT_KEY unset)', async () => {
      const elsewhere = mkdtempSync(join(tmpdir(), 'refit-cwd-'));
      expect((await fetch(`${baseUrl()}/api/runs`)).status).toBe(401); // so the CLI did send one

      const result = await refit(['task', 'list-runs', '--top', '1'], { REFIT_KEY: '' }, elsewhere);

      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(Array.isArray(JSON.parse(result.stdout))).toBe(true);
    });

    it('says the key in REFIT_KEY was refused, exit 1, when it is wrong', async () => {
      const result = await refit(['task', 'list-runs'], { REFIT_KEY: 'wrong' });

      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`Refit at ${baseUrl()} refused the key in REFIT_KEY`);
    });

    it('says where it looked when it finds no key', async () => {
      const empty = mkdtempSync(join(tmpdir(), 'refit-xdg-'));

      const result = await refit(['task', 'list-runs'], { REFIT_KEY: '', XDG_CONFIG_HOME: empty });

      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`it needs an API key, and none was found`);
      expect(result.stderr).toContain(join(empty, 'refit', 'stack-keys.json'));
    });
  });

  describe('request bodies', () => {
    const scheduleUrl = (): string => `${baseUrl()}/api/scheduleRun`;
    const json = { 'content-type': 'application/json' };

    it('answers a chunked body over the limit (no Content-Length) with 413, and stays up', async () => {
      const res = await raw('POST', scheduleUrl(), { ...keyHeader(), ...json }, { bytes: 8 * 1024 * 1024 });

      expect(res.status).toBe(413);
      expect(JSON.parse(res.body).error.message).toBe(
        'the body is larger than the limit of scheduleRun, 1048576 bytes',
      );
      expect((await fetch(`${baseUrl()}/api/health`)).status).toBe(200);
    });

    it('answers a declared Content-Length over the limit with 413 naming both sizes', async () => {
      const res = await fetch(scheduleUrl(), {
        method: 'POST',
        headers: { ...keyHeader(), ...json },
        body: Buffer.alloc(2 * 1024 * 1024, ' '),
      });

      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
        'the body is 2097152 bytes; the limit of scheduleRun is 1048576 bytes',
      );
    });

    it('reads webhooks up to their own larger limit (25 MiB): a 2 MiB delivery reaches the signature check', async () => {
      const headers = {
        ...json,
        'x-github-event': 'push',
        'x-github-delivery': 'big',
        'x-hub-signature-256': signGitHubBody('not-the-secret', 'x'),
      };

      const big = await raw('POST', `${baseUrl()}/api/hooks/github`, headers, { bytes: 2 * 1024 * 1024 });
      const huge = await raw('POST', `${baseUrl()}/api/hooks/github`, headers, { bytes: 26 * 1024 * 1024 });

      expect(big.status).toBe(401);
      expect(huge.status).toBe(413);
      expect(JSON.parse(huge.body).error.message).toBe(
        'the body is larger than the limit of githubHook, 26214400 bytes',
      );
    });

    it('answers a malformed %-escape in the path with 400', async () => {
      const res = await fetch(`${baseUrl()}/api/runs/%E0%A4%A`, { headers: keyHeader() });

      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
        "the path segment '%E0%A4%A' has a malformed %-escape '%A': a % must start two hex digits that decode to UTF-8",
      );
    });
  });

  // A host of Refit's own HTTP functions in this process, on a configuration without webhook secrets and with
  // one allowed browser origin (the queue and timer functions stay with the test stack).
  describe('a host configured without webhook secrets, with REFIT_ALLOWED_ORIGINS', () => {
    const key = 'in-process-key';
    let host: LocalHost;
    let url = '';

    beforeAll(async () => {
      const config = loadConfig({
        REFIT_STORAGE: stackStorage(),
        REFIT_REGISTRY: registry(),
        REFIT_SECRET_KEY: randomBytes(32).toString('base64'),
        REFIT_ALLOWED_ORIGINS: 'https://app.example',
      });
      ({ host, url } = await serveInProcess(createRefit(config), ['http'], key));
    });
    afterAll(() => host.stop());

    const distribution = {
      events: [
        {
          id: 'e1',
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: `sha256:${'a'.repeat(64)}`,
            repository: 'trust/base',
            tag: '1',
          },
          request: { host: registry() },
        },
      ],
    };
    const dockerHub = {
      push_data: { tag: 'latest', pusher: 'someone' },
      repository: { repo_name: 'library/trust', namespace: 'library', name: 'trust' },
      callback_url: 'https://registry.hub.docker.com/u/library/trust/hook/x/',
    };
    const harbor = {
      type: 'PUSH_ARTIFACT',
      occur_at: 1586922308,
      operator: 'admin',
      event_data: {
        resources: [
          { digest: `sha256:${'b'.repeat(64)}`, tag: 'v1', resource_url: 'harbor.example/p/trust:v1' },
        ],
        repository: { name: 'trust', namespace: 'p', repo_full_name: 'p/trust', repo_type: 'private' },
      },
    };
    const hooks: [string, string, Record<string, string>, unknown][] = [
      [
        'GitHub',
        '/api/hooks/github',
        {
          'x-github-event': 'push',
          'x-github-delivery': 'd1',
          'x-hub-signature-256': signGitHubBody('', '{}'),
        },
        pushFixture,
      ],
      ['Azure DevOps', '/api/hooks/azuredevops', { authorization: 'Basic OmFueXRoaW5n' }, adoFixture],
      ['distribution (no credentials)', '/api/hooks/registry', {}, distribution],
      [
        'distribution (a bearer token)',
        '/api/hooks/registry',
        { authorization: 'Bearer guess' },
        distribution,
      ],
      ['Docker Hub', '/api/hooks/registry?secret=guess', {}, dockerHub],
      ['Harbor', '/api/hooks/registry', { authorization: 'Bearer guess' }, harbor],
    ];

    it.each(hooks)(
      'refuses a %s delivery with 401 when no secret is configured',
      async (_name, path, headers, payload) => {
        const res = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(payload),
        });

        expect(res.status).toBe(401);
        expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
          /no (registry )?webhook secret is configured/,
        );
      },
    );

    it('answers the CORS preflight of a listed origin, and only of it', async () => {
      const preflight = (origin: string): Promise<Response> =>
        fetch(`${url}/api/scheduleRun`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type',
          },
        });

      const listed = await preflight('https://app.example');
      const foreign = await preflight('https://evil.example');

      expect(listed.status).toBe(204);
      expect(listed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(listed.headers.get('access-control-allow-headers')).toContain('x-functions-key');
      expect(foreign.status).toBe(403);
      expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('serves a listed origin with the key, with its CORS header', async () => {
      const res = await fetch(`${url}/api/runs?$top=1`, {
        headers: { origin: 'https://app.example', 'x-functions-key': key },
      });

      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    });

    // The same checks where Azure's own host calls the function (functions/http.ts api()).
    it.each([
      [{ origin: 'https://evil.example', 'content-type': 'application/json' }, 403],
      [{ 'content-type': 'text/plain' }, 415],
      [{}, 415],
    ])('refuses scheduleRun called as Azure calls it with headers %j: %i', async (headers, status) => {
      const body = JSON.stringify({ type: 'TaskRunRequest', taskId: 'x' });
      const request = new HttpRequest({
        method: 'POST',
        url: 'https://refit.example/api/scheduleRun',
        headers: { ...headers, 'content-length': String(body.length) },
        body: { bytes: Buffer.from(body) }, // bytes: a string would be typed text/plain
      });

      const response = await scheduleRun(request, new InvocationContext({ functionName: 'scheduleRun' }));

      expect(response.status).toBe(status);
    });
  });
});
