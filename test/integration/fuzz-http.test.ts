// Property-based tests against the real local host: arbitrary bodies, content types, paths and queries to every
// HTTP route of functions/definitions.ts, and signed deliveries to every webhook so that parsing is reached. The
// status is never 5xx, no request hangs, and the host answers GET /api/health after every batch.
// Nothing sent starts builds endlessly: an accepted run is cancelled at once, an accepted task deleted at once.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { functions, type HttpFunction } from '../../functions/definitions';
import { signGitHubBody } from '../../src/triggers/github';
import { call, type ApiResponse } from '../support/api';
import {
  corpus,
  countReplay,
  fixture,
  mutated,
  nastyString,
  nastyValue,
  params,
  printCounts,
} from '../support/fuzz';

afterAll(() => printCounts('fuzz-http'));

/** A request that takes longer than this counts as a hang. */
const REQUEST_TIMEOUT_MS = 20000;
/** The health of the host is checked after every batch of this many requests. */
const BATCH = 25;

const seedsOf = (name: string): unknown[] => corpus(name).map((c) => c.input);
const secret = (name: string): string =>
  readFileSync(join(process.env.REFIT_TEST_DATA_DIR!, name), 'utf8').trim();

const routes = functions.filter((f): f is HttpFunction => f.kind === 'http');

let sent = 0;
const accepted = { runs: 0, tasks: 0 };

/** Sends one request; fails on a 5xx or when it does not answer in time. Cleans up what it created. */
async function send(
  method: string,
  path: string,
  body: string | undefined,
  headers: Record<string, string>,
): Promise<ApiResponse> {
  sent++;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms: ${method} ${path.slice(0, 200)}`)),
      REQUEST_TIMEOUT_MS,
    );
  });
  let response: ApiResponse;
  try {
    response = await Promise.race([call(method, path, body, headers), timeout]);
  } finally {
    clearTimeout(timer);
  }
  if (response.status >= 500)
    throw new Error(
      `${method} ${path.slice(0, 300)} answered ${response.status}: ${response.text.slice(0, 300)}\nheaders: ${JSON.stringify(headers)}\nbody: ${(body ?? '').slice(0, 1000)}`,
    );
  await cleanUp(method, path, response);
  if (sent % BATCH === 0) await expectHealthy();
  return response;
}

async function cleanUp(method: string, path: string, response: ApiResponse): Promise<void> {
  if (response.status >= 300) return;
  const runId = (response.body as { properties?: { runId?: unknown } } | null)?.properties?.runId;
  if (method === 'POST' && path.startsWith('/scheduleRun') && typeof runId === 'string') {
    accepted.runs++;
    await call('POST', `/runs/${runId}/cancel`);
  }
  if (method === 'PUT' && path.startsWith('/tasks/')) {
    accepted.tasks++;
    await call('DELETE', path.split('?')[0]!);
  }
}

async function expectHealthy(): Promise<void> {
  const health = await call('GET', '/health');
  expect(health.status).toBe(200);
}

/** A path segment: ordinary names, encoded nasty strings, and raw malformed percent-encoding. */
const segment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    'aa1',
    'zz999999',
    'fuzz-task-1',
    'x',
    '..',
    '%2e%2e',
    '%E0%A4%A',
    '%',
    '%00',
    '%ff',
    'a%2Fb',
  ),
  nastyString.map((s) => {
    try {
      return encodeURIComponent(s.slice(0, 200)) || 'x';
    } catch {
      // A lone surrogate cannot be encoded: send its UTF-8 bytes as they would arrive.
      return '%ED%A0%80';
    }
  }),
);

/** Query parameters the API reads, with arbitrary and near-valid values. */
const query: fc.Arbitrary<string> = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        '$filter',
        '$top',
        '$skipToken',
        'follow',
        'image',
        'source',
        'secret',
        'api-version',
        '$x',
      ),
      fc.oneof(
        nastyString.map((s) => s.slice(0, 2000)),
        fc.constantFrom(
          "status eq 'Failed'",
          "(runId eq 'aa1') or taskName eq 'x'",
          '0',
          '1001',
          '1.5',
          '-1',
          'true',
          'node:20',
          'github',
          'timer',
        ),
        // Continuation tokens that look like the real ones (base64 JSON), and ones that do not.
        fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v)).toString('base64')),
        fc
          .record({ nextPartitionKey: nastyString, nextRowKey: nastyString })
          .map((v) => Buffer.from(JSON.stringify(v)).toString('base64')),
      ),
    ),
    { maxLength: 3 },
  )
  .map((pairs) => (pairs.length ? `?${new URLSearchParams(pairs).toString()}` : ''));

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/merge-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  'json',
);

/** Bodies: valid-looking requests of every kind, mutated, arbitrary JSON, and text that is not JSON. */
const body: fc.Arbitrary<string | undefined> = fc.oneof(
  { arbitrary: mutated(seedsOf('schedule-run')).map((v) => JSON.stringify(v)), weight: 2 },
  { arbitrary: mutated(seedsOf('task-file-run')).map((v) => JSON.stringify(v)), weight: 2 },
  { arbitrary: mutated(seedsOf('task-schema')).map((v) => JSON.stringify(v)), weight: 2 },
  {
    arbitrary: mutated([{ type: 'TaskRunRequest', taskId: 'fuzz-task-1' }, { isArchiveEnabled: true }]).map(
      (v) => JSON.stringify(v),
    ),
    weight: 1,
  },
  { arbitrary: nastyValue.map((v) => JSON.stringify(v) ?? 'null'), weight: 2 },
  { arbitrary: nastyString.map((s) => s.slice(0, 100_000)), weight: 1 },
  { arbitrary: fc.constant(undefined), weight: 1 },
);

function pathOf(route: HttpFunction, segments: readonly string[]): string {
  let i = 0;
  return `/${route.route.replace(/\{\w+\}/g, () => segments[i++] ?? 'x')}`;
}

describe('the local host (fuzzed over HTTP)', () => {
  afterAll(() => {
    process.stdout.write(
      `fuzz-http: ${sent} requests; ${accepted.runs} runs accepted (each cancelled), ${accepted.tasks} tasks accepted (each deleted)\n`,
    );
  });

  describe('the corpus', () => {
    const cases = corpus('http');
    it.each(cases.map((c) => [c.file, c] as const))('replays %s below 500', async (_file, c) => {
      const r = c.input as {
        method: string;
        path: string;
        body?: unknown;
        github?: string;
        registry?: boolean;
      };
      const text = r.body === undefined ? undefined : JSON.stringify(r.body);
      const headers: Record<string, string> =
        text === undefined ? {} : { 'content-type': 'application/json' };
      if (r.github && text !== undefined) {
        headers['x-github-event'] = r.github;
        headers['x-github-delivery'] = `corpus-${c.file}`;
        headers['x-hub-signature-256'] = signGitHubBody(secret('webhook.secret'), text);
      }
      if (r.registry) {
        headers['content-type'] = 'application/vnd.docker.distribution.events.v1+json';
        headers.authorization = `Bearer ${secret('registry-webhook.secret')}`;
      }
      countReplay('http', 1);
      await send(r.method, r.path, text, headers);
      await expectHealthy();
    });
  });

  describe('every API route', () => {
    it('answers below 500 and in time for any body, content type, path segment and query, and stays healthy', async () => {
      const request = fc.record({
        route: fc.constantFrom(...routes.filter((r) => r.authLevel === 'function')),
        method: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'), { freq: 5 }),
        segments: fc.array(segment, { minLength: 2, maxLength: 2 }),
        query,
        contentType,
        body,
      });
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          // Task names the fuzzer creates get a prefix of their own, so nothing of another test is replaced.
          const segments = r.route.route.startsWith('tasks/{') ? [`fuzz${r.segments[0]}`] : r.segments;
          const method = r.method ?? r.route.methods[0]!;
          // fetch sends no body with a GET.
          const text = method === 'GET' ? undefined : r.body;
          const headers = text === undefined ? {} : { 'content-type': r.contentType };
          await send(method, `${pathOf(r.route, segments)}${r.query}`, text, headers);
        }),
        params('API routes', 150),
      );
      await expectHealthy();
    });
  });

  describe('the webhooks, with valid signatures', () => {
    const githubSeeds = [
      'ping',
      'push-new-branch',
      'push-tag',
      'push-branch-deleted',
      'pull-request-opened',
    ].map((f) => fixture(`github/${f}.json`));
    const registrySeeds = [...seedsOf('distribution'), ...seedsOf('docker-hub'), ...seedsOf('harbor')];

    it('answers below 500 and in time for any signed GitHub, Azure DevOps and registry delivery', async () => {
      const webhookSecret = secret('webhook.secret');
      const registrySecret = secret('registry-webhook.secret');
      const delivery = fc.oneof(
        fc.record({
          kind: fc.constant('github' as const),
          event: fc.constantFrom('push', 'pull_request', 'ping', 'issues', '', 'push\u0000'),
          payload: fc.oneof(mutated(githubSeeds), mutated(githubSeeds), nastyValue),
          contentType,
        }),
        fc.record({
          kind: fc.constant('azuredevops' as const),
          payload: fc.oneof(mutated([fixture('azure-devops/git-push.json')]), nastyValue),
          contentType,
        }),
        fc.record({
          kind: fc.constant('registry' as const),
          payload: fc.oneof(mutated(registrySeeds), mutated(registrySeeds), nastyValue),
          contentType: fc.constantFrom(
            'application/json',
            'application/vnd.docker.distribution.events.v1+json',
            'text/plain',
          ),
        }),
      );
      await fc.assert(
        fc.asyncProperty(delivery, fc.boolean(), async (d, rawText) => {
          const text =
            rawText && typeof d.payload === 'string' ? d.payload : (JSON.stringify(d.payload) ?? 'null');
          if (d.kind === 'github') {
            await send('POST', '/hooks/github', text, {
              'content-type': d.contentType,
              'x-github-event': d.event.replace(/\0/g, ''),
              'x-github-delivery': `fuzz-${sent}`,
              'x-hub-signature-256': signGitHubBody(webhookSecret, text),
            });
          } else if (d.kind === 'azuredevops') {
            await send('POST', '/hooks/azuredevops', text, {
              'content-type': d.contentType,
              'x-refit-webhook-secret': webhookSecret,
            });
          } else {
            await send('POST', '/hooks/registry', text, {
              'content-type': d.contentType,
              authorization: `Bearer ${registrySecret}`,
            });
          }
        }),
        params('signed webhook deliveries', 100),
      );
      await expectHealthy();
    });

    it('answers below 500 and in time for any Event Grid delivery, in either schema, batched or not', async () => {
      const seeds = seedsOf('event-grid');
      const events = fc.oneof(
        mutated(seeds),
        fc.array(mutated(seeds), { maxLength: 3 }),
        nastyValue,
        fc.constant([
          { eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: { validationCode: 'x' } },
        ]),
      );
      const kind = fc.constantFrom(
        undefined,
        'Notification',
        'SubscriptionValidation',
        'Unsubscribe',
        'Other',
      );
      await fc.assert(
        fc.asyncProperty(events, kind, async (e, k) => {
          // The Functions host's Event Grid webhook lives outside /api, where call() does not reach; it takes the
          // key as ?code=, as the Functions host's system key.
          const code = encodeURIComponent(process.env.REFIT_TEST_KEY ?? '');
          const response = await fetch(
            `${process.env.REFIT_URL}/runtime/webhooks/eventgrid?functionName=imageEventGrid&code=${code}`,
            {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...(k ? { 'aeg-event-type': k } : {}) },
              body: JSON.stringify(e) ?? 'null',
              signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
            },
          );
          sent++;
          expect(response.status).toBeLessThan(500);
          expect(response.status).not.toBe(401); // the delivery reached parsing
          if (sent % BATCH === 0) await expectHealthy();
        }),
        params('Event Grid deliveries', 40),
      );
      await expectHealthy();
    });
  });
});
