// Benchmarks of base-image updates, on a stack of their own:
//  - latency: a manifest pushed to the registry → the dependent task's run Queued (50 pushes; median, p99),
//    end to end and inside Refit (event received → run created);
//  - fan-out: one base with 1,000 dependent tasks → all 1,000 runs Queued;
//  - scale: the decision for a base with 10 dependents, with and without 10,000 unrelated tasks stored.
// Tasks are written straight to storage (their contexts are unreachable, so their runs fail at once and leave
// the machine to the measurement); the pushes go through the real registry and its notifications.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config';
import type { RecordedDependency } from '../src/dependencies/dependency-index';
import { apiKeyFor } from '../src/local/api-key';
import { spawnStack, stackStorageConnectionString, stopStack, waitHealthy } from '../src/local/child-stack';
import { percentile } from './util';
import { createRefit, type Refit } from '../src/refit';
import type { Task } from '../src/tasks/task';

const PORTS = { api: 17471, registry: 15400, azurite: 20400 };
const API = `http://127.0.0.1:${PORTS.api}/api`;
// The bench's stack records its key for its URL where the CLI looks (REFIT_KEY, when set, is the stack's key too).
const key = (): Record<string, string> => ({ 'x-functions-key': apiKeyFor(API) ?? '' });
const REGISTRY = `127.0.0.1:${PORTS.registry}`;

async function putBlob(repository: string, content: Buffer): Promise<string> {
  const digest = 'sha256:' + createHash('sha256').update(content).digest('hex');
  const start = await fetch(`http://${REGISTRY}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  const location = new URL(start.headers.get('location')!, `http://${REGISTRY}`);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: content,
  });
  if (put.status !== 201) throw new Error(`blob upload failed: ${put.status}`);
  return digest;
}

/** Pushes a new single-platform image (a unique config, no layers) to repository:tag; returns its digest. */
async function pushImage(
  repository: string,
  tag: string,
  n: string,
): Promise<{ digest: string; pushedAt: number }> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
      config: { Labels: { n } },
    }),
  );
  const configDigest = await putBlob(repository, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [],
    }),
  );
  const pushedAt = Date.now();
  const res = await fetch(`http://${REGISTRY}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push failed: ${res.status}`);
  return { digest: res.headers.get('docker-content-digest')!, pushedAt };
}

function task(name: string): Task {
  return {
    name,
    status: 'Enabled',
    platform: { os: 'Linux', architecture: 'amd64' },
    agentConfiguration: { cpu: 2 },
    timeout: 3600,
    step: {
      type: 'Docker',
      imageNames: [`bench/${name.toLowerCase()}:{{.Run.ID}}`],
      isPushEnabled: true,
      noCache: false,
      dockerFilePath: 'Dockerfile',
      arguments: [],
      contextPath: 'https://127.0.0.1:9/unreachable.git',
    },
    trigger: {
      sourceTriggers: [],
      timerTriggers: [],
      baseImageTrigger: { name: 'b', baseImageTriggerType: 'Runtime', status: 'Enabled' },
    },
    creationDate: new Date().toISOString(),
    timerSince: {},
  };
}

/** Stores `count` tasks built from `image`, `parallel` at a time, straight into storage. */
async function storeTasks(
  r: Refit,
  prefix: string,
  count: number,
  image: (i: number) => string,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const i = next++;
        const t = task(`${prefix}-${String(i).padStart(5, '0')}`);
        const [repository, tag] = image(i).split(':') as [string, string];
        const dep: RecordedDependency = {
          type: 'RunTime',
          registry: REGISTRY,
          repository,
          tag,
          digest: 'sha256:' + '0'.repeat(64),
          platformDigest: 'sha256:' + '0'.repeat(64),
        };
        await r.tasks.store.put({ ...t, baseImageDependencies: [dep] }, undefined, {}, undefined);
        await r.dependencyIndex.record(t.name, [dep], []);
      }
    }),
  );
}

async function waitForRecord(
  image: string,
  digest: string,
  timeoutMs = 120000,
): Promise<{ receivedAt: string; time: string; decisions: { decision: string; runId?: string }[] }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = (await fetch(`${API}/imageUpdates?image=${encodeURIComponent(image)}`, {
      headers: key(),
    }).then((x) => x.json())) as {
      value: {
        digest: string;
        receivedAt: string;
        time: string;
        decisions: { decision: string; runId?: string }[];
      }[];
    };
    const found = res.value.find((u) => u.digest === digest);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no decision recorded for ${image}@${digest}`);
}

export async function baseImageBench(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'refit-bench-'));
  const stack = spawnStack(dataDir, PORTS, { REFIT_LOCAL_CONCURRENCY: '4' });
  try {
    await waitHealthy(PORTS.api, stack);
    const r = createRefit(
      loadConfig({
        REFIT_STORAGE: stackStorageConnectionString(dataDir, PORTS.azurite),
        REFIT_REGISTRY: REGISTRY,
        REFIT_SECRET_KEY: readFileSync(join(dataDir, 'secret.key'), 'utf8').trim(),
      }),
    );

    const parts = (process.env.BENCH_PARTS ?? 'latency,fanout,scale').split(',');
    if (parts.includes('latency')) await latencyBench(r);
    if (parts.includes('fanout')) await fanoutBench(r);
    if (parts.includes('scale')) await scaleBench(r);
  } finally {
    await stopStack(stack);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Waits until no run is Queued or Started/Running: the stack is idle again. */
async function settled(timeoutMs = 600000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const filter = encodeURIComponent("status eq 'Queued' or status eq 'Started' or status eq 'Running'");
  while (Date.now() < deadline) {
    const res = (await fetch(`${API}/runs?$top=1&$filter=${filter}`, { headers: key() }).then((x) =>
      x.json(),
    )) as {
      value: unknown[];
    };
    if (res.value.length === 0) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error('runs still active');
}

async function latencyBench(r: Refit): Promise<void> {
  // Latency: 50 pushes of the base of one task; each push has a new digest, so each one triggers.
  await storeTasks(r, 'latency', 1, () => 'bench/latency-base:1');
  const endToEnd: number[] = [];
  const inRefit: number[] = [];
  for (let i = 0; i < Number(process.env.BENCH_PUSHES ?? 50); i++) {
    const { digest, pushedAt } = await pushImage('bench/latency-base', '1', `latency-${i}-${Date.now()}`);
    const image = `${REGISTRY}/bench/latency-base:1`;
    const record = await waitForRecord(image, digest);
    const runId = record.decisions[0]?.runId;
    if (!runId) throw new Error(`push ${i} did not trigger: ${JSON.stringify(record.decisions)}`);
    const run = (await fetch(`${API}/runs/${runId}`, { headers: key() }).then((x) => x.json())) as {
      properties: { createTime: string };
    };
    endToEnd.push(Date.parse(run.properties.createTime) - pushedAt);
    inRefit.push(Date.parse(run.properties.createTime) - Date.parse(record.receivedAt));
    await new Promise((res) => setTimeout(res, 150));
  }
  console.log(`base-image update latency: manifest push → dependent run Queued, ${endToEnd.length} pushes`);
  console.log(
    `  end to end (push → run record):      median ${percentile(endToEnd, 50)} ms, p99 ${percentile(endToEnd, 99)} ms  (goal: median ≤ 1000 ms)`,
  );
  console.log(
    `  in Refit (event received → run):      median ${percentile(inRefit, 50)} ms, p99 ${percentile(inRefit, 99)} ms  (goal: ≤ 100 ms)`,
  );

  await settled();
}

async function fanoutBench(r: Refit): Promise<void> {
  // Fan-out: one base, 1,000 dependents.
  const fanout = Number(process.env.BENCH_FANOUT ?? 1000);
  await storeTasks(r, 'fanout', fanout, () => 'bench/fanout-base:1');
  const pushed = await pushImage('bench/fanout-base', '1', `fanout-${Date.now()}`);
  const record = await waitForRecord(`${REGISTRY}/bench/fanout-base:1`, pushed.digest, 300000);
  const triggered = record.decisions.filter((d) => d.decision === 'triggered').length;
  console.log(
    `fan-out: one base with ${fanout} dependent tasks → ${triggered} runs Queued in ${Date.parse(record.time) - pushed.pushedAt} ms after the push (in Refit: ${Date.parse(record.time) - Date.parse(record.receivedAt)} ms; goal ≤ 5000 ms)`,
  );

  await settled();
}

async function scaleBench(r: Refit): Promise<void> {
  // Scale: 10 dependents, decided with few tasks stored, then with 10,000 unrelated ones more. Each sample is
  // taken on an idle stack (the runs of the previous sample have finished).
  const decide = async (label: string): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await pushImage('bench/scale-base', '1', `scale-${label}-${i}-${Date.now()}`);
      const rec = await waitForRecord(`${REGISTRY}/bench/scale-base:1`, p.digest);
      times.push(Date.parse(rec.time) - Date.parse(rec.receivedAt));
      await settled();
    }
    return percentile(times, 50);
  };
  await storeTasks(r, 'scale', 10, () => 'bench/scale-base:1');
  const before = await decide('before');
  const unrelated = Number(process.env.BENCH_UNRELATED ?? 10000);
  await storeTasks(r, 'unrelated', unrelated, (i) => `bench/unrelated-${i}:1`);
  const after = await decide('after');
  console.log(
    `scale: decision for a base with 10 dependents: median ${before} ms, then ${after} ms with ${unrelated} more unrelated tasks stored (ratio ${(after / before).toFixed(2)}; goal ≤ 1.2)`,
  );
}
