import { Readable } from 'node:stream';
import { ValidationError } from '../src/errors';
import { runResource } from '../src/runs/run';
import { FINISHED } from '../src/runs/run';
import { withRunRequestType } from '../src/runs/schedule-run';
import { createSourceUploadUrl, readOnlyUrl } from '../src/sources/source-upload';
import { names } from '../src/storage/storage';
import { api, json, topParam, param, readJson } from './http';

/** POST /listBuildSourceUploadUrl (Registries_GetBuildSourceUploadUrl). */
export const listBuildSourceUploadUrl = api(async (_request, r) =>
  json(200, await createSourceUploadUrl(r.storage)),
);

/** POST /scheduleRun (Registries_ScheduleRun): the run, Queued. A TaskRunRequest runs a task. */
export const scheduleRun = api(async (request, r) => {
  // ACR's own 2019 examples leave `type` out: the request's own required property tells which it is.
  const body = withRunRequestType(await readJson(request, r.config.maxBodyBytes));
  const isTaskRun = (body as { type?: unknown } | null)?.type === 'TaskRunRequest';
  const run = isTaskRun ? await r.tasks.runFromRequest(body) : await r.runs.schedule(body);
  return json(200, runResource(run));
});

/** GET /runs (Runs_List): newest first, `$filter`, `$top`, `nextLink`. */
export const listRuns = api(async (request, r) => {
  const filter = request.query.get('$filter') ?? undefined;
  const skipToken = request.query.get('$skipToken') ?? undefined;
  const n = topParam(request.query);
  const page = await r.runs.list({
    top: n,
    ...(filter ? { filter } : {}),
    ...(skipToken ? { continuationToken: skipToken } : {}),
  });
  let nextLink: string | undefined;
  if (page.continuationToken) {
    const next = new URL(request.url);
    next.searchParams.set('$skipToken', page.continuationToken);
    nextLink = next.toString();
  }
  return json(200, { value: page.runs.map(runResource), ...(nextLink ? { nextLink } : {}) });
});

/** GET /runs/{runId} (Runs_Get). */
export const getRun = api(async (request, r) =>
  json(200, runResource(await r.runs.get(param(request, 'runId')))),
);

/** PATCH /runs/{runId} (Runs_Update): `{ isArchiveEnabled }`. */
export const updateRun = api(async (request, r) => {
  const runId = param(request, 'runId');
  await r.runs.get(runId);
  return json(200, runResource(await r.runs.update(runId, await readJson(request, r.config.maxBodyBytes))));
});

/** POST /runs/{runId}/cancel (Runs_Cancel). */
export const cancelRun = api(async (request, r) =>
  json(200, runResource(await r.runs.cancel(param(request, 'runId')))),
);

/** POST /runs/{runId}/listLogSasUrl (Runs_GetLogSasUrl): `{ logLink }`, read-only. */
export const listLogSasUrl = api(async (request, r) => {
  const run = await r.runs.get(param(request, 'runId'));
  // A Queued run's log is created when the run is dispatched; the link must work before that.
  await r.logs.create(run.runId);
  const blob = r.logs.blob(run.runId);
  return json(200, { logLink: await readOnlyUrl(r.storage, names.containers.logs, blob.name) });
});

/** How long a follow of a finished run's log waits for its executor to mark it complete. */
const FINISHED_LOG_WAIT_MS = 15000;

/** GET /runs/{runId}/log: the log as text; `?follow=true` streams it until it is complete. */
export const runLog = api(async (request, r) => {
  const run = await r.runs.get(param(request, 'runId'));
  const headers = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };
  const follow = request.query.get('follow');
  if (follow !== null && follow !== 'true' && follow !== 'false') {
    throw new ValidationError(`follow must be true or false, got '${follow}'`, 'follow');
  }
  if (follow !== 'true') {
    // Streamed from storage as it is read: a log of many MiB is never held whole in memory.
    const body = Readable.toWeb(await r.logs.open(run.runId)) as unknown as ReadableStream<Uint8Array>;
    return { status: 200, headers, body };
  }
  // A run whose status is final (a cancel records it at once) may still have its executor writing the last lines:
  // follow until the log is marked complete, a few seconds at most.
  const signal = FINISHED.has(run.status) ? AbortSignal.timeout(FINISHED_LOG_WAIT_MS) : undefined;
  const stream = Readable.toWeb(
    Readable.from(r.logs.follow(run.runId, signal)),
  ) as unknown as ReadableStream<Uint8Array>;
  return { status: 200, headers, body: stream };
});
