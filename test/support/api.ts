import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packContext } from '../../src/cli/source-archive';
import { stackStorageConnectionString } from '../../src/local/child-stack';
import { loadConfig, type Config } from '../../src/config';

/** The base URL of the test stack, set by the global setup. */
export function baseUrl(): string {
  const url = process.env.REFIT_URL;
  if (!url)
    throw new Error('REFIT_URL is not set: the integration tests run under the global setup (npm test)');
  return url;
}

/** The test stack's API key (the one npm start generated in its data folder), as a request header. */
export function keyHeader(): Record<string, string> {
  const key = process.env.REFIT_TEST_KEY;
  if (!key) throw new Error('REFIT_TEST_KEY is not set: the integration tests run under the global setup');
  return { 'x-functions-key': key };
}

/** The connection string of the test stack's Azurite (its own account key), for tests that reach storage directly. */
export function stackStorage(): string {
  return stackStorageConnectionString(
    process.env.REFIT_TEST_DATA_DIR!,
    Number(process.env.REFIT_TEST_AZURITE_PORT),
  );
}

/**
 * The configuration of a Refit in the test process on the test stack's Azurite and registry (with the stack's
 * secret key, so it reads the stack's sealed secrets), for tests that drive the core directly: with storage faults,
 * a fake clock, or two instances at once. `env` adds or overrides settings.
 */
export function stackConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    REFIT_STORAGE: stackStorage(),
    REFIT_REGISTRY: registry(),
    REFIT_SECRET_KEY: readFileSync(join(process.env.REFIT_TEST_DATA_DIR!, 'secret.key'), 'utf8').trim(),
    ...env,
  });
}

/** The test stack's registry (host:port). */
export function registry(): string {
  return process.env.REFIT_TEST_REGISTRY!;
}

/** A response with its parsed JSON body (or text). */
export interface ApiResponse {
  readonly status: number;
  readonly body: any;
  readonly text: string;
  readonly headers: Headers;
}

/** Calls the API with the key; `body` is sent as JSON unless it is a string. */
export async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  const response = await fetch(`${baseUrl()}/api${path}`, {
    method,
    headers: {
      ...keyHeader(),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // text
  }
  return { status: response.status, body: parsed, text, headers: response.headers };
}

/** Uploads raw bytes as a build source; returns the relativePath for sourceLocation. */
export async function uploadBytes(bytes: Buffer): Promise<string> {
  const slot = await call('POST', '/listBuildSourceUploadUrl');
  const put = await fetch(slot.body.uploadUrl as string, {
    method: 'PUT',
    headers: { 'x-ms-blob-type': 'BlockBlob' },
    body: bytes,
  });
  if (!put.ok) throw new Error(`upload failed: ${put.status}`);
  return slot.body.relativePath as string;
}

/** Writes files into a fresh folder: `{ 'Dockerfile': '...', 'sub/a.txt': '...' }`. */
export function writeContext(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'refit-ctx-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

/** Packs and uploads a context folder. */
export async function uploadContext(dir: string, dockerfile = 'Dockerfile'): Promise<string> {
  return uploadBytes(await packContext(dir, dockerfile));
}

/** The busybox base every test image is built on (seeded into the test registry by the stack). */
export function busyboxBase(): string {
  return `${registry()}/refit/busybox:stable`;
}

/** A DockerBuildRequest with the test defaults. */
export function dockerBuild(
  sourceLocation: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    type: 'DockerBuildRequest',
    imageNames: [],
    sourceLocation,
    dockerFilePath: 'Dockerfile',
    platform: { os: 'Linux', architecture: 'amd64' },
    ...overrides,
  };
}

/** Polls `probe` until it returns a value (not undefined), within a bound: the way to wait on recorded state. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** {@link until} for a yes/no check: polls until `check` holds. */
export async function untilTrue(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 30000,
): Promise<void> {
  await until(what, async () => ((await check()) ? true : undefined), timeoutMs);
}

/** The runs of a task, as Runs_List gives them (newest first, up to 100). */
export async function runsOf(task: string): Promise<any[]> {
  const res = await call('GET', `/runs?$top=100&$filter=${encodeURIComponent(`taskName eq '${task}'`)}`);
  return res.body.value.map((r: any) => r.properties);
}

const FINISHED = ['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout'];

/** Polls a run until it finishes; returns its properties. */
export async function waitForRun(runId: string, timeoutMs = 90000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const run = await call('GET', `/runs/${runId}`);
    if (FINISHED.includes(run.body.properties.status)) return run.body.properties;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`run ${runId} did not finish in time`);
}

/** Polls a run until it reaches `status`. */
export async function waitForStatus(runId: string, status: string, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const run = await call('GET', `/runs/${runId}`);
    if (run.body.properties.status === status) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${runId} did not reach ${status}`);
}

/** The digest the registry holds for repository:tag. */
export async function registryDigest(repository: string, tag: string): Promise<string | null> {
  const response = await fetch(`http://${registry()}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      accept:
        'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
    },
  });
  return response.ok ? response.headers.get('docker-content-digest') : null;
}

/** Pushes the very same manifest bytes of repository:tag again: the registry notifies a push of the same digest. */
export async function pushManifestAgain(repository: string, tag: string): Promise<number> {
  const manifestUrl = `http://${registry()}/v2/${repository}/manifests/${tag}`;
  const manifest = await fetch(manifestUrl, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  const put = await fetch(manifestUrl, {
    method: 'PUT',
    headers: { 'content-type': manifest.headers.get('content-type')! },
    body: Buffer.from(await manifest.arrayBuffer()),
  });
  return put.status;
}
