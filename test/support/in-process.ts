import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { functions, type FunctionDefinition } from '../../functions/definitions';
import { LocalHost } from '../../src/local/host';
import { createRefit, setRefit, type Refit, type RefitOptions } from '../../src/refit';
import { FINISHED, type Run, type RunStatus } from '../../src/runs/run';
import { RunStore } from '../../src/runs/run-store';
import { newQuickBuildRun, parseRunRequest } from '../../src/runs/schedule-run';
import { newTaskFileRun, parseTaskFileRunRequest } from '../../src/runs/task-file-run';
import { dockerBuild, stackConfig, until, uploadContext, writeContext } from './api';

/**
 * A Refit in the test process on the test stack's Azurite, registry and buildah settings (its registries.conf, a
 * work folder of its own), whose executor runs builds here: for tests that inject storage faults into a build, or
 * give Refit what the test stack does not have (`env`: settings of its own, such as REFIT_IDENTITY_CLIENT_ID).
 */
export function inProcessRefit(options: RefitOptions = {}, env: Record<string, string> = {}): Refit {
  return createRefit(
    stackConfig({
      REFIT_CONTAINERS_REGISTRIES_CONF: join(process.env.REFIT_TEST_DATA_DIR!, 'registries.conf'),
      REFIT_WORK_DIR: mkdtempSync(join(tmpdir(), 'refit-work-')),
      ...env,
    }),
    options,
  );
}

/**
 * Stores a quick build of `files` (uploaded to the test stack's storage) in `status` (Queued by default; a later status
 * as if an executor had it, with a start time), without dispatching it. Returns the run ID.
 */
export async function storeQuickBuild(
  r: Refit,
  files: Record<string, string>,
  overrides: Record<string, unknown> = {},
  status: RunStatus = 'Queued',
): Promise<string> {
  const request = parseRunRequest(dockerBuild(await uploadContext(writeContext(files)), overrides));
  const runId = await r.runs.nextRunId();
  const run = newQuickBuildRun(request, {
    runId,
    now: new Date(),
    homeRegistry: r.config.homeRegistry,
    secretKey: r.config.secretKey,
  });
  await new RunStore(r.storage, r.config.runIdPrefix).create(
    status === 'Queued' ? run : { ...run, status, startTime: new Date().toISOString() },
  );
  return runId;
}

/**
 * Stores a Queued quick build of `files` and dispatches it to `r`'s own executor, without the runs queue (the test
 * stack polls that queue, and would take the run). Returns the run ID.
 */
export async function startQuickBuild(
  r: Refit,
  files: Record<string, string>,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const runId = await storeQuickBuild(r, files, overrides);
  await r.runs.dispatch({ runId });
  return runId;
}

/**
 * Stores a Queued run of the acb task file `task` (an EncodedTaskRunRequest, no source) and dispatches it to `r`'s own
 * executor, as {@link startQuickBuild} does. Returns the run ID.
 */
export async function startTaskFileRun(
  r: Refit,
  task: string,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const request = parseTaskFileRunRequest(
    {
      type: 'EncodedTaskRunRequest',
      encodedTaskContent: Buffer.from(task).toString('base64'),
      platform: { os: 'Linux', architecture: 'amd64' },
      ...overrides,
    },
    'EncodedTaskRunRequest',
  );
  const runId = await r.runs.nextRunId();
  const run = newTaskFileRun(request, {
    runId,
    now: new Date(),
    secretKey: r.config.secretKey,
    runType: 'QuickRun',
  });
  await new RunStore(r.storage, r.config.runIdPrefix).create(run);
  await r.runs.dispatch({ runId });
  return runId;
}

/** The log of a run as it is now, read whole. */
export async function runLogText(r: Refit, runId: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await r.logs.open(runId)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads the run until `done` holds (the recorded state, not a clock); fails after `timeoutMs`. */
export async function waitForRecorded(
  r: Refit,
  runId: string,
  done: (run: Run) => boolean,
  timeoutMs = 120000,
): Promise<Run> {
  return until(
    `run ${runId} to reach the awaited state`,
    async () => {
      const run = await r.runs.get(runId);
      return done(run) ? run : undefined;
    },
    timeoutMs,
  );
}

/** Whether a run reached a final status. */
export function isFinished(run: Run): boolean {
  return FINISHED.has(run.status);
}

/** A port nobody listens on at the moment of asking. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Serves Refit's functions of the given kinds on `r` in this process, with `apiKey`, on a free port: for tests of the
 * host itself (storage faults, a configuration of its own). Returns the host and its base URL; stop the host after.
 */
export async function serveInProcess(
  r: Refit,
  kinds: readonly FunctionDefinition['kind'][],
  apiKey: string,
): Promise<{ host: LocalHost; url: string }> {
  setRefit(r);
  const port = await freePort();
  const host = new LocalHost(
    functions.filter((f) => kinds.includes(f.kind)),
    {
      host: '127.0.0.1',
      port,
      apiKey,
      maxBodyBytes: r.config.maxBodyBytes,
      allowedOrigins: r.config.allowedOrigins,
      publicHost: r.config.publicHost,
      queue: (name) => r.storage.queue(name),
    },
  );
  await host.start();
  return { host, url: `http://127.0.0.1:${port}` };
}

/** The rejections nobody handled while `body` ran (they are reported after the microtasks of the turn that left them). */
export async function unhandledRejectionsDuring(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const record = (reason: unknown): void => void seen.push(reason);
  process.on('unhandledRejection', record);
  try {
    await body();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('unhandledRejection', record);
  }
  return seen;
}
