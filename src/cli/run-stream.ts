import { print } from './args';
import type { RefitClient } from './client';
import { CliError } from './client';
import type { RunResource } from './format';
import { packContext, type ExtraFile } from './source-archive';

const FINISHED = new Set(['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout']);

/**
 * Packs a local folder (honouring .dockerignore, always keeping `keep`, adding `extra`) and uploads it; returns its
 * location.
 */
export async function uploadSource(
  client: RefitClient,
  dir: string,
  keep: string,
  extra?: ExtraFile,
): Promise<string> {
  const archive = await packContext(dir, keep, extra);
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

// What colorama (behind az's log streaming) strips from a log that does not go to a terminal: CSI and OSC sequences.
// eslint-disable-next-line no-control-regex -- the escape and bell characters are what is matched
const ANSI = /\x1b\[[\d;]*[A-Za-z]|\x1b\][^\x07]*\x07/g;

/**
 * Streams a run's log to stdout until it ends; returns the finished run. As az does, escape sequences (colours) are
 * stripped when stdout is not a terminal, unless `raw` (`--no-format`), which writes the log byte for byte.
 */
export async function streamRun(client: RefitClient, runId: string, raw = false): Promise<RunResource> {
  const response = await client.request('GET', `/runs/${encodeURIComponent(runId)}/log?follow=true`);
  const strip = !raw && !process.stdout.isTTY;
  if (response.body) {
    // Whole lines only when stripping, so that a sequence split between two chunks is still recognised.
    let pending = '';
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!strip) {
        process.stdout.write(chunk);
        continue;
      }
      pending += decoder.decode(chunk, { stream: true });
      const end = pending.lastIndexOf('\n') + 1;
      if (end > 0) {
        process.stdout.write(pending.slice(0, end).replace(ANSI, ''));
        pending = pending.slice(end);
      }
    }
    if (strip) process.stdout.write((pending + decoder.decode()).replace(ANSI, ''));
  }
  return waitFinished(client, runId);
}

/** Polls a run until it ends (from 0.5 s apart up to 5 s); returns the finished run. */
async function waitFinished(client: RefitClient, runId: string): Promise<RunResource> {
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    const run = await client.json<RunResource>('GET', `/runs/${encodeURIComponent(runId)}`);
    if (FINISHED.has(run.properties.status)) return run;
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** `--no-wait`, `--no-logs`, `--no-format` as az acr build, run and task run take them. */
export interface WaitOptions {
  /** false with --no-wait: print the queued run and return. */
  readonly wait: boolean;
  /** false with --no-logs: wait for the run without its log. */
  readonly logs: boolean;
  /** false with --no-format: the log as it is. */
  readonly format: boolean;
}

/**
 * What az does once a run is queued: with --no-wait, print it and succeed; with --no-logs, wait for it and print
 * it, failing (exit 1, the status on stderr) when it does not succeed; otherwise stream its log to the end.
 */
export async function followQueued(
  client: RefitClient,
  queued: RunResource,
  opts: WaitOptions,
): Promise<number> {
  const runId = queued.properties.runId;
  if (!opts.wait) {
    print(queued);
    return 0;
  }
  process.stderr.write('Waiting for an agent...\n');
  if (opts.logs) return finishedCode(await streamRun(client, runId, !opts.format));
  const run = await waitFinished(client, runId);
  if (run.properties.status === 'Succeeded') {
    print(run);
    return 0;
  }
  const why = run.properties.runErrorMessage ? ` (${run.properties.runErrorMessage})` : '';
  process.stderr.write(
    `The run with ID '${runId}' finished with unsuccessful status '${run.properties.status}'${why}. ` +
      `Show run details by 'refit task show-run --run-id ${runId}'. Show run logs by 'refit task logs --run-id ${runId}'.\n`,
  );
  return 1;
}

export function finishedCode(run: RunResource): number {
  const p = run.properties;
  if (p.status === 'Succeeded') return 0;
  const what =
    p.status === 'Timeout' ? 'Run timed out' : p.status === 'Canceled' ? 'Run was canceled' : 'Run failed';
  process.stderr.write(`${what}${p.runErrorMessage ? `: ${p.runErrorMessage}` : ''}\n`);
  return 1;
}
