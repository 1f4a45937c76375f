import type { RefitClient } from './client';
import { CliError } from './client';
import type { RunResource } from './format';
import { packContext } from './source-archive';

const FINISHED = new Set(['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout']);

/** Packs a local folder (honouring .dockerignore, always keeping `keep`) and uploads it; returns its location. */
export async function uploadSource(client: RefitClient, dir: string, keep: string): Promise<string> {
  const archive = await packContext(dir, keep);
  process.stderr.write(
    `Packing source code into tar to upload (${(archive.length / 1024).toFixed(1)} KiB)...\n`,
  );
  const upload = await client.json<{ uploadUrl: string; relativePath: string }>(
    'POST',
    '/listBuildSourceUploadUrl',
  );
  const put = await fetch(upload.uploadUrl, {
    method: 'PUT',
    headers: { 'x-ms-blob-type': 'BlockBlob', 'content-type': 'application/gzip' },
    body: archive,
  });
  if (!put.ok) throw new CliError(`the upload of the source failed: HTTP ${put.status}`);
  return upload.relativePath;
}

export function isRemoteSource(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || source.startsWith('git@');
}

/** Streams a run's log to stdout until it ends; returns the finished run. */
export async function streamRun(client: RefitClient, runId: string): Promise<RunResource> {
  const response = await client.request('GET', `/runs/${encodeURIComponent(runId)}/log?follow=true`);
  if (response.body) {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
      process.stdout.write(chunk);
  }
  for (;;) {
    const run = await client.json<RunResource>('GET', `/runs/${encodeURIComponent(runId)}`);
    if (FINISHED.has(run.properties.status)) return run;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function finishedCode(run: RunResource): number {
  const p = run.properties;
  if (p.status === 'Succeeded') return 0;
  const what =
    p.status === 'Timeout' ? 'Run timed out' : p.status === 'Canceled' ? 'Run was canceled' : 'Run failed';
  process.stderr.write(`${what}${p.runErrorMessage ? `: ${p.runErrorMessage}` : ''}\n`);
  return 1;
}
