// Benchmark of the watcher (BENCH=watch): 500 watched references on two registries on loopback, each behind a
// proxy that counts the manifest requests. Reports, per cycle, the HEADs and GETs sent and the time the cycle took
// (goals: 500 HEADs and 0 GETs in steady state, one cycle within 5 s), and what one changed reference costs.
// Parts: its own Azurite (in memory) and two CNCF registries; no Refit host runs, so nothing else checks the watches.
// One small image is pushed once per registry and tagged 250 times there; the dependency rows are recorded through
// the DependencyIndex, whose change hook creates the watches, as after real builds.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { azuriteConnectionString, loadConfig } from '../src/config';
import type { RecordedDependency } from '../src/dependencies/dependency-index';
import { createRefit } from '../src/refit';
import { ensureStorage } from '../src/storage/storage';
import type { ImagePush } from '../src/triggers/image-update';
import { Watcher, type CycleReport } from '../src/watches/watcher';
import {
  pushImage,
  startFaultProxy,
  startRegistry,
  type FaultProxy,
  type RunningRegistry,
} from '../test/support/private-registry';

const AZURITE = { blob: 20900, queue: 20901, table: 20902 };
const REGISTRY_PORTS = [15900, 15901];
const PROXY_PORTS = [15902, 15903];
const TAGS_PER_REGISTRY = 250;
const REPOSITORIES = 10; // 25 tags each per registry
const STEADY_CYCLES = 3;
const NO_CREDENTIALS = { user: '', password: '' };
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

async function startAzurite(dir: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      require.resolve('azurite/dist/src/azurite.js'),
      '--inMemoryPersistence',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--loose',
      '--blobPort',
      String(AZURITE.blob),
      '--queuePort',
      String(AZURITE.queue),
      '--tablePort',
      String(AZURITE.table),
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  const end = Date.now() + 30000;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${AZURITE.table}/`).then(
      () => true,
      () => false,
    );
    if (up) return child;
    if (Date.now() > end || child.exitCode !== null) throw new Error('Azurite did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Pushes one image to `host` and tags its manifest `count` times over `REPOSITORIES` repositories. */
async function seed(
  host: string,
  count: number,
): Promise<{ repository: string; tag: string; digest: string }[]> {
  const first = await pushImage(host, 'bench/r0', 't0', NO_CREDENTIALS, ['linux/amd64'], host);
  const manifest = Buffer.from(
    await (
      await fetch(`http://${host}/v2/bench/r0/manifests/t0`, { headers: { accept: ACCEPT } })
    ).arrayBuffer(),
  );
  const refs = [];
  for (let i = 0; i < count; i++) {
    const repository = `bench/r${i % REPOSITORIES}`;
    const tag = `t${i}`;
    if (i > 0) {
      // Another repository needs the config blob too: mount it from the first (no upload).
      if (i < REPOSITORIES) await pushImage(host, repository, 'base', NO_CREDENTIALS, ['linux/amd64'], host);
      const put = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
        method: 'PUT',
        headers: { 'content-type': ACCEPT },
        body: manifest,
      });
      if (put.status !== 201) throw new Error(`tagging ${repository}:${tag} answered ${put.status}`);
    }
    refs.push({ repository, tag, digest: first.digest });
  }
  return refs;
}

function split(proxy: FaultProxy[], from: number[]): { heads: number; gets: number } {
  let heads = 0;
  let gets = 0;
  proxy.forEach((p, i) => {
    for (const r of p.manifestRequests.slice(from[i])) {
      if (r.method === 'HEAD') heads++;
      else if (r.method === 'GET') gets++;
    }
  });
  return { heads, gets };
}

/** BENCH=watch. */
export async function watchBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'refit-bench-watch-'));
  const registries: RunningRegistry[] = [];
  const proxies: FaultProxy[] = [];
  let azurite: ChildProcess | undefined;
  try {
    azurite = await startAzurite(dir);
    for (const [i, port] of REGISTRY_PORTS.entries()) {
      const registry = await startRegistry(join(dir, `r${i}`), `r${i}`, port, null);
      registries.push(registry);
      proxies.push(await startFaultProxy(PROXY_PORTS[i]!, registry.host));
    }
    const r = createRefit(
      loadConfig({
        REFIT_STORAGE: azuriteConnectionString('127.0.0.1', AZURITE.blob, AZURITE.queue, AZURITE.table),
        REFIT_REGISTRY: '127.0.0.1:15999', // the home registry: not one of the two watched
        REFIT_SECRET_KEY: randomBytes(32).toString('base64'),
      }),
    );
    await ensureStorage(r.storage);

    const started = Date.now();
    const refs = (
      await Promise.all(
        registries.map(async (reg, i) =>
          (await seed(reg.host, TAGS_PER_REGISTRY)).map((ref) => ({ ...ref, host: proxies[i]!.host })),
        ),
      )
    ).flat();
    // One task per reference, recorded as a build would record it (the digest it was built from).
    for (const [i, ref] of refs.entries()) {
      const dep: RecordedDependency = {
        type: 'RunTime',
        registry: ref.host,
        repository: ref.repository,
        tag: ref.tag,
        digest: ref.digest,
        platformDigest: ref.digest,
      };
      await r.dependencyIndex.record(`bench-task-${i}`, [dep], []);
    }
    const watched = (await r.watches.all()).length;
    console.log(
      `watch: ${watched} references watched on 2 registries (set up in ${Date.now() - started} ms)`,
    );

    // A clock an hour ahead per cycle: every watch is due at every cycle, with no waiting between them.
    let clock = Date.now();
    const pushes: ImagePush[] = [];
    const watcher = new Watcher({
      watches: r.watches,
      budgets: r.budgets,
      index: r.dependencyIndex,
      registry: r.registry,
      claims: r.dedupe,
      settings: r.config.polling,
      queuePush: (push) => {
        pushes.push(push);
        return Promise.resolve();
      },
      credentialsFor: () => Promise.resolve(undefined),
      // The bench's tasks exist only as dependency rows: every one counts as enabled.
      enabledTasks: () => Promise.resolve(() => true),
      now: () => clock,
    });
    const cycle = async (label: string): Promise<CycleReport> => {
      clock += 3600_000;
      const from = proxies.map((p) => p.manifestRequests.length);
      const t0 = process.hrtime.bigint();
      const report = await watcher.cycle();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const { heads, gets } = split(proxies, from);
      console.log(
        `watch: ${label}: ${report.checked} checked, ${heads} HEAD, ${gets} GET, ${report.queued} queued, ${report.failed} failed, ${ms.toFixed(0)} ms`,
      );
      return report;
    };
    await cycle('first cycle (baseline)');
    for (let i = 1; i <= STEADY_CYCLES; i++) await cycle(`steady cycle ${i}`);

    // One reference changes: seen (settling), then acted on with one GET and one push.
    const changed = refs[0]!;
    const reg = registries[0]!;
    await pushImage(reg.host, changed.repository, changed.tag, NO_CREDENTIALS, ['linux/amd64'], 'changed');
    await cycle('a reference changed (settling)');
    await cycle('the change stood (index read, push queued)');
    await cycle('steady again');
    console.log(
      `watch: pushes queued: ${pushes.map((p) => `${p.repository}:${p.tag} (${p.source})`).join(', ')}`,
    );
  } finally {
    await Promise.all(proxies.map((p) => p.stop()));
    await Promise.all(registries.map((reg) => reg.stop()));
    azurite?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
