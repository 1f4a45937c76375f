// Helpers for the watcher's tests: images pushed with buildah to a registry on loopback, and the watches as the API
// shows them.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, runsOf, until } from './api';
import { buildah } from './private-registry';

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The digest `host/repository:tag` points at, from the registry itself. */
export async function digestOf(
  host: string,
  repository: string,
  tag: string,
  basic?: { username: string; password: string },
): Promise<string> {
  const auth = basic
    ? { authorization: `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}` }
    : {};
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: ACCEPT, ...auth },
  });
  const digest = res.headers.get('docker-content-digest');
  if (!digest) throw new Error(`${host}/${repository}:${tag}: ${res.status}, no digest`);
  return digest;
}

/**
 * Builds an image FROM scratch holding one file (`marker`), for `platform`, with buildah in the test's storage
 * `root`, pushes it to `host/repository:tag` and returns its digest. No RUN: any platform builds here.
 */
export async function pushScratchImage(
  root: string,
  ref: { host: string; repository: string; tag: string },
  marker: string,
  platform = 'linux/amd64',
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'refit-watch-ctx-'));
  writeFileSync(join(dir, 'marker'), marker);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY marker /marker\n');
  const local = `localhost/watch-test:${marker.replace(/[^\w.-]/g, '-')}`;
  await buildah(root, ['bud', '-q', '--platform', platform, '-t', local, dir]);
  await buildah(root, [
    'push',
    '-q',
    '--tls-verify=false',
    local,
    `docker://${ref.host}/${ref.repository}:${ref.tag}`,
  ]);
  return digestOf(ref.host, ref.repository, ref.tag);
}

/** Pushes an index of the given manifests (by digest, already in the repository) as `tag`; returns its digest. */
export async function pushIndex(
  root: string,
  ref: { host: string; repository: string; tag: string },
  manifests: readonly string[],
): Promise<string> {
  const list = `watch-list-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  await buildah(root, ['manifest', 'create', list]);
  for (const digest of manifests)
    await buildah(root, [
      'manifest',
      'add',
      '--tls-verify=false',
      list,
      `docker://${ref.host}/${ref.repository}@${digest}`,
    ]);
  await buildah(root, [
    'manifest',
    'push',
    '--tls-verify=false',
    list,
    `docker://${ref.host}/${ref.repository}:${ref.tag}`,
  ]);
  await buildah(root, ['manifest', 'rm', list]);
  return digestOf(ref.host, ref.repository, ref.tag);
}

/** The watch of `image` as GET /watches shows it, or undefined when it is not watched. */
export async function watchOf(image: string): Promise<any> {
  const res = await call('GET', '/watches');
  if (res.status !== 200) throw new Error(`GET /watches answered ${res.status}: ${res.text}`);
  return (res.body.value as any[]).find((w) => w.image === image);
}

/** Waits until the watch of `image` satisfies `ok`, and returns it. */
export function watchUntil(
  what: string,
  image: string,
  ok: (w: any) => boolean,
  timeoutMs = 60000,
): Promise<any> {
  return until(
    what,
    async () => {
      const w = await watchOf(image);
      return w && ok(w) ? w : undefined;
    },
    timeoutMs,
  );
}

/** Waits until `image` has been checked `n` more times (its lastCheck moved on `n` times); returns the watch. */
export async function moreChecks(image: string, n: number): Promise<any> {
  const seen = new Set<string>();
  const first = await watchOf(image);
  const start = first?.health.lastCheck ?? '';
  return until(
    `${n} more checks of ${image}`,
    async () => {
      const w = await watchOf(image);
      const last = w?.health.lastCheck;
      if (last && last !== start) seen.add(last);
      return seen.size >= n ? w : undefined;
    },
    60000,
  );
}

/** The runs of `task` that an image update started. */
export async function imageUpdateRuns(task: string): Promise<any[]> {
  return (await runsOf(task)).filter((r) => r.imageUpdateTrigger);
}
