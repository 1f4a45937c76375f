// Benchmark: reliability under chaos (issue 10, "nothing lost, nothing stuck"). Four scenarios, each run once:
//   a. 1,000 signed GitHub push deliveries within 60 s, 30% of them repeating an earlier delivery id;
//   b. 200 concurrent scheduleRun calls;
//   c. Azurite stopped and restarted during a burst of 100 scheduleRun calls;
//   d. `kill -9` of the host with 10 builds running, then a restart on the same data folder.
// It reports (runs lost, duplicates, 5xx, stuck, processes and containers left, timings); it asserts nothing and
// exits non-zero only when it could not run.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { z } from 'zod';
import { functions } from '../functions/definitions';
import { azuriteConnectionString, loadConfig } from '../src/config';
import { apiKeyFor } from '../src/local/api-key';
import { AZURITE_ACCOUNT, spawnStack, stopStack, waitHealthy } from '../src/local/child-stack';
import { LocalHost } from '../src/local/host';
import { childEnv } from '../src/process/child-env';
import { createRefit, setRefit } from '../src/refit';
import { ensureStorage } from '../src/storage/storage';
import { signGitHubBody } from '../src/triggers/github';
import { GitServer } from '../test/support/git';

// The stack of scenarios a, b and d; scenario c runs its own Azurite and an in-process host beside it.
const PORTS = { api: 17671, registry: 15650, azurite: 20650 };
const C_PORTS = { api: 17672, registry: 15651, azurite: 20660 };
const FINAL = ['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout'];
/** A source nothing listens on: runs from it fail at once, so a scenario measures scheduling, not builds. */
const NOWHERE_TARBALL = 'http://127.0.0.1:9/context.tar.gz';

/** A quick build whose source cannot be fetched: it is scheduled, run and ends Failed without building anything. */
function scheduleNowhere(api: Api): Promise<Answer> {
  return call(api, 'POST', '/scheduleRun', {
    type: 'DockerBuildRequest',
    imageNames: [],
    sourceLocation: NOWHERE_TARBALL,
    dockerFilePath: 'Dockerfile',
    platform: { os: 'Linux', architecture: 'amd64' },
  });
}
const NOWHERE_GIT = 'git://127.0.0.1:9/bench-deliveries.git';
/** Builds at once (the default is 2): scenario d needs its 10 builds running together, a-c drain their runs sooner. */
const CONCURRENCY = { REFIT_LOCAL_CONCURRENCY: '16' };

interface Api {
  readonly base: string;
  readonly key: string;
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

// The few fields of the API's answers the figures need (permissive: the rest is ignored).
const runProperties = z.object({
  status: z.string(),
  runErrorMessage: z.string().optional(),
  sourceTrigger: z.object({ commitId: z.string().optional() }).optional(),
});
type RunProperties = z.infer<typeof runProperties>;
const runResource = z.object({ name: z.string(), properties: runProperties });
const runPage = z.object({ value: z.array(runResource), nextLink: z.string().optional() });

/** The run IDs of the accepted (2xx) answers among `answers`. */
function acceptedRunIds(answers: Answer[]): string[] {
  return answers.filter((a) => a.status >= 200 && a.status < 300).map((a) => runResource.parse(a.body).name);
}

/** One API call; a call that gets no answer (refused, reset, 30 s without a reply) has status 0. */
async function call(api: Api, method: string, path: string, body?: unknown): Promise<Answer> {
  try {
    const res = await fetch(path.startsWith('http') ? path : `${api.base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-functions-key': api.key },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body: parsed };
  } catch {
    return { status: 0, body: undefined };
  }
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Counts of each status, e.g. `202×198 503×2`. */
function histogram(statuses: number[]): string {
  const counts = new Map<number, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts.entries()]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s === 0 ? 'no answer' : s}×${n}`)
    .join(' ');
}

/** Counts of each value, e.g. `Failed×198 Error×2`. */
function tally(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].map(([v, n]) => `${v}×${n}`).join(' ') || 'none';
}

/**
 * Polls runs until every one is final or `boundMs` passes: each run's last status, 'missing' for a run the API
 * does not know (404), and how long it took for all to be final (or undefined).
 */
async function waitFinal(
  api: Api,
  runIds: string[],
  boundMs: number,
): Promise<{ statuses: Map<string, string>; allFinalMs: number | undefined }> {
  const started = Date.now();
  const statuses = new Map<string, string>();
  const limit = pLimit(16);
  for (;;) {
    const open = runIds.filter((id) => !FINAL.includes(statuses.get(id) ?? ''));
    await Promise.all(
      open.map((id) =>
        limit(async () => {
          const res = await call(api, 'GET', `/runs/${id}`);
          statuses.set(
            id,
            res.status === 200
              ? runResource.parse(res.body).properties.status
              : res.status === 404
                ? 'missing'
                : 'unknown',
          );
        }),
      ),
    );
    if (runIds.every((id) => FINAL.includes(statuses.get(id) ?? ''))) {
      return { statuses, allFinalMs: Date.now() - started };
    }
    if (Date.now() - started > boundMs) return { statuses, allFinalMs: undefined };
    await pause(500);
  }
}

/** Every run of a task (all pages). */
async function runsOfTask(api: Api, task: string): Promise<RunProperties[]> {
  const out: RunProperties[] = [];
  let next: string | undefined = `/runs?$top=1000&$filter=${encodeURIComponent(`taskName eq '${task}'`)}`;
  while (next) {
    const page = await call(api, 'GET', next);
    if (page.status !== 200) throw new Error(`listing the runs of ${task} answered ${page.status}`);
    const parsed = runPage.parse(page.body);
    out.push(...parsed.value.map((r) => r.properties));
    next = parsed.nextLink;
  }
  return out;
}

const seconds = (ms: number | undefined): string =>
  ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`;

function report(title: string, rows: [string, string | number][]): void {
  console.log(`\n${title}`);
  for (const [what, value] of rows) console.log(`  ${what.padEnd(46)} ${value}`);
}

// ---------------------------------------------------------------------------------------------------------------
// a. GitHub deliveries with repeated ids.

async function githubDeliveries(api: Api, dataDir: string): Promise<void> {
  const TOTAL = Number(process.env.BENCH_DELIVERIES ?? 1000);
  const REPEATS = Math.round(TOTAL * 0.3);
  const SPREAD_MS = Number(process.env.BENCH_DELIVERY_SPREAD_MS ?? 55000);
  const secret = readFileSync(join(dataDir, 'webhook.secret'), 'utf8').trim();
  const task = 'bench-deliveries';
  // The task's source is unreachable: each run fails at its clone, so the scenario counts runs, not builds.
  const created = await call(api, 'PUT', `/tasks/${task}`, {
    properties: {
      step: {
        type: 'Docker',
        contextPath: `${NOWHERE_GIT}#main`,
        imageNames: ['bench/deliveries:{{.Run.ID}}'],
      },
      trigger: {
        sourceTriggers: [
          {
            name: 'src',
            sourceRepository: { sourceControlType: 'Github', repositoryUrl: NOWHERE_GIT, branch: 'main' },
            sourceTriggerEvents: ['commit'],
          },
        ],
      },
    },
  });
  if (created.status >= 300) throw new Error(`creating ${task} answered ${created.status}`);

  // 700 distinct deliveries (each its own commit) and 300 redeliveries of earlier ones, in a shuffled order.
  const distinct = Array.from({ length: TOTAL - REPEATS }, (_, i) => ({
    id: `bench-delivery-${i}-${randomBytes(4).toString('hex')}`,
    sha: randomBytes(20).toString('hex'),
  }));
  const kinds = [...Array<string>(TOTAL - REPEATS).fill('new'), ...Array<string>(REPEATS).fill('repeat')];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const first = kinds.indexOf('new');
  [kinds[0], kinds[first]] = [kinds[first]!, kinds[0]!];
  let sentNew = 0;
  const sequence = kinds.map((k) =>
    k === 'new' ? distinct[sentNew++]! : distinct[Math.floor(Math.random() * sentNew)]!,
  );

  const statuses: number[] = [];
  const answeredMs: number[] = [];
  /** Deliveries that got a 2xx at least once (GitHub counts the others as failed, to be redelivered by hand). */
  const acknowledged = new Set<string>();
  const t0 = Date.now();
  await Promise.all(
    sequence.map(async (d, i) => {
      await pause(t0 + (i * SPREAD_MS) / TOTAL - Date.now());
      const body = JSON.stringify({
        ref: 'refs/heads/main',
        after: d.sha,
        repository: { clone_url: NOWHERE_GIT },
      });
      const sent = Date.now();
      let status = 0;
      try {
        const res = await fetch(`${api.base}/hooks/github`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-github-event': 'push',
            'x-github-delivery': d.id,
            'x-hub-signature-256': signGitHubBody(secret, body),
          },
          body,
          // GitHub waits 10 s for an answer, then records the delivery as failed.
          signal: AbortSignal.timeout(10000),
        });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 0;
      }
      statuses.push(status);
      if (status >= 200 && status < 300) acknowledged.add(d.id);
      answeredMs.push(Date.now() - sent);
    }),
  );
  const sendMs = Date.now() - t0;

  // Wait for the run count to reach the distinct deliveries and every run to be final (bounded).
  const waitStarted = Date.now();
  let runs: RunProperties[] = [];
  const counts: { at: number; runs: number }[] = [];
  for (;;) {
    runs = await runsOfTask(api, task);
    counts.push({ at: Date.now(), runs: runs.length });
    const open = runs.filter((r) => !FINAL.includes(r.status)).length;
    if ((runs.length >= distinct.length && open === 0) || Date.now() - waitStarted > 240000) break;
    await pause(1000);
  }
  const settledMs = Date.now() - waitStarted;
  // Runs still appearing at the end: deliveries still being handled (late), not yet lost.
  const tenSecondsAgo = counts.find((c) => c.at >= Date.now() - 10000) ?? counts.at(-1)!;
  const stillComing = runs.length - tenSecondsAgo.runs;
  const perCommit = new Map<string, number>();
  for (const r of runs) {
    const sha = r.sourceTrigger?.commitId;
    if (sha) perCommit.set(sha, (perCommit.get(sha) ?? 0) + 1);
  }
  const lostDeliveries = distinct.filter((d) => !perCommit.has(d.sha));
  const lost = lostDeliveries.length;
  const lostAcknowledged = lostDeliveries.filter((d) => acknowledged.has(d.id)).length;
  const duplicates = [...perCommit.values()].reduce((n, c) => n + Math.max(0, c - 1), 0);
  const stuck = runs.filter((r) => !FINAL.includes(r.status)).length;
  const sorted = [...answeredMs].sort((x, y) => x - y);
  report(`a. ${TOTAL} signed GitHub push deliveries in ${seconds(sendMs)}, ${REPEATS} of them repeated ids`, [
    ['distinct deliveries (expected runs)', distinct.length],
    ['runs created', runs.length],
    ['runs lost (a distinct delivery without a run)', lost],
    ['  of them acknowledged with a 2xx', lostAcknowledged],
    ['  of them never answered within 10 s', lost - lostAcknowledged],
    ['runs created in the last 10 s of waiting (still coming)', stillComing],
    ['duplicate runs (a delivery with more than one)', duplicates],
    ['5xx answers', statuses.filter((s) => s >= 500).length],
    ["answers (no answer: none within GitHub's 10 s)", histogram(statuses)],
    ['runs not final 240 s after the last delivery', stuck],
    [
      'webhook answer time',
      `median ${sorted[Math.floor(sorted.length / 2)]} ms, p95 ${sorted[Math.floor(sorted.length * 0.95)]} ms, max ${sorted.at(-1)} ms`,
    ],
    [
      'all runs final after the last delivery',
      stuck === 0 && lost === 0 ? seconds(settledMs) : 'not within 240 s',
    ],
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// b. Concurrent scheduleRun.

async function concurrentSchedule(api: Api): Promise<void> {
  const N = 200;
  const t0 = Date.now();
  const answers = await Promise.all(Array.from({ length: N }, () => scheduleNowhere(api)));
  const answeredMs = Date.now() - t0;
  const ids = acceptedRunIds(answers);
  const { statuses, allFinalMs } = await waitFinal(api, ids, 120000);
  const values = [...statuses.values()];
  report(`b. ${N} concurrent scheduleRun calls`, [
    ['answers', histogram(answers.map((a) => a.status))],
    ['distinct run IDs', new Set(ids).size],
    ['runs lost (accepted, then unknown)', values.filter((s) => s === 'missing').length],
    ['5xx answers', answers.filter((a) => a.status >= 500).length],
    ['stuck (not final after 120 s)', values.filter((s) => !FINAL.includes(s) && s !== 'missing').length],
    ['all answered after', seconds(answeredMs)],
    ['all final after the last answer', seconds(allFinalMs)],
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// c. Azurite stopped and restarted during a burst of scheduleRun.
//
// The local stack stops itself when one of its children exits, so its own Azurite cannot be stopped without
// ending the stack. This scenario runs an Azurite of its own (a child it can stop and start again on the same
// ports and data folder) and Refit in this process (createRefit and a LocalHost serving every function, queue
// pollers included, as `npm start` wires them), so that the host keeps running while its storage goes away.

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startAzurite(dir: string, port: number, key: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      require.resolve('azurite/dist/src/azurite.js'),
      '--location',
      join(dir, 'azurite'),
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--loose',
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      String(port + 1),
      '--tableHost',
      '127.0.0.1',
      '--tablePort',
      String(port + 2),
    ],
    { env: childEnv({ AZURITE_ACCOUNTS: `${AZURITE_ACCOUNT}:${key}` }), stdio: 'ignore' },
  );
  const deadline = Date.now() + 30000;
  while (!((await portOpen(port)) && (await portOpen(port + 1)) && (await portOpen(port + 2)))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('Azurite did not start');
    await pause(100);
  }
  return child;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

async function storageOutage(): Promise<void> {
  const N = 100;
  const dir = mkdtempSync(join(tmpdir(), 'refit-bench-outage-'));
  mkdirSync(join(dir, 'azurite'));
  const storageKey = randomBytes(64).toString('base64');
  const apiKey = randomBytes(16).toString('hex');
  // The in-process host's structured log goes to a file, not among the figures.
  const hostLog = join(tmpdir(), 'refit-bench-reliability-host.log');
  writeFileSync(hostLog, '');
  const stderrWrite = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk: string | Uint8Array): boolean => {
    writeFileSync(hostLog, chunk, { flag: 'a' });
    return true;
  };
  let azurite = await startAzurite(dir, C_PORTS.azurite, storageKey);
  let host: LocalHost | undefined;
  try {
    const config = loadConfig({
      REFIT_STORAGE: azuriteConnectionString(
        '127.0.0.1',
        C_PORTS.azurite,
        C_PORTS.azurite + 1,
        C_PORTS.azurite + 2,
        storageKey,
      ),
      REFIT_REGISTRY: `127.0.0.1:${C_PORTS.registry}`,
      REFIT_SECRET_KEY: randomBytes(32).toString('base64'),
      REFIT_WORK_DIR: join(dir, 'work'),
      ...CONCURRENCY,
    });
    const refit = createRefit(config);
    await ensureStorage(refit.storage);
    setRefit(refit);
    host = new LocalHost(functions, {
      host: '127.0.0.1',
      port: C_PORTS.api,
      apiKey,
      maxBodyBytes: config.maxBodyBytes,
      allowedOrigins: config.allowedOrigins,
      publicHost: undefined,
      queue: (name) => refit.storage.queue(name),
    });
    refit.onEnqueued = () => host?.wake();
    await host.start();
    const api = { base: `http://127.0.0.1:${C_PORTS.api}/api`, key: apiKey };

    // The burst in three parts, so that calls land before, during and after the outage whatever the machine's
    // load: 30 calls (Azurite is stopped as the last one is sent, with calls in flight), 40 while it is down (3 s,
    // then its restart on the same ports and files), 30 once it is back.
    const schedule = (): Promise<Answer> => scheduleNowhere(api);
    const paced = async (count: number, spacingMs: number): Promise<Promise<Answer>[]> => {
      const calls: Promise<Answer>[] = [];
      for (let i = 0; i < count; i++) {
        if (i > 0) await pause(spacingMs);
        calls.push(schedule());
      }
      return calls;
    };
    const before = await paced(N * 0.3, 30);
    const downAt = Date.now();
    await stopChild(azurite);
    const during = paced(N * 0.4, 75);
    await pause(3000);
    const restarting = Date.now();
    azurite = await startAzurite(dir, C_PORTS.azurite, storageKey);
    const restartMs = Date.now() - restarting;
    const downMs = Date.now() - downAt;
    const after = await paced(N * 0.3, 30);
    const parts = {
      before: await Promise.all(before),
      during: await Promise.all(await during),
      after: await Promise.all(after),
    };
    const answers = [...parts.before, ...parts.during, ...parts.after];
    const ids = acceptedRunIds(answers);
    const { statuses, allFinalMs } = await waitFinal(api, ids, 120000);
    const values = [...statuses.values()];
    const codes = answers.map((a) => a.status);
    process.stderr.write = stderrWrite;
    report(
      `c. Azurite stopped and restarted during ${N} scheduleRun calls (down ${seconds(downMs)}, of which its restart ${seconds(restartMs)})`,
      [
        ['answers to the 30 sent before the stop', histogram(parts.before.map((a) => a.status))],
        ['answers to the 40 sent while it was down', histogram(parts.during.map((a) => a.status))],
        ['answers to the 30 sent once it was back', histogram(parts.after.map((a) => a.status))],
        ['succeeded (2xx)', ids.length],
        ['503 (refused, retryable)', codes.filter((s) => s === 503).length],
        ['500', codes.filter((s) => s === 500).length],
        ['other 5xx', codes.filter((s) => s > 500 && s !== 503).length],
        ['no answer within 30 s', codes.filter((s) => s === 0).length],
        ['runs lost (accepted, then unknown)', values.filter((s) => s === 'missing').length],
        [
          'stuck (accepted, not final after 120 s)',
          values.filter((s) => !FINAL.includes(s) && s !== 'missing').length,
        ],
        ['accepted runs all final after the burst', seconds(allFinalMs)],
      ],
    );
  } finally {
    process.stderr.write = stderrWrite;
    await host?.stop();
    await stopChild(azurite);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// d. kill -9 of the host with 10 builds running.

/** Every process below `root` (children, grandchildren, ...), read from /proc. */
function descendants(root: number): { pid: number; cmd: string }[] {
  const parent = new Map<number, number>();
  const cmd = new Map<number, string>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      cmd.set(Number(d), readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim());
    } catch {
      // gone meanwhile
    }
  }
  const out: { pid: number; cmd: string }[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push({ pid: child, cmd: cmd.get(child) ?? '' });
        walk(child);
      }
    }
  };
  walk(root);
  return out;
}

/** Whether a process still runs: a zombie (ended, not yet reaped by its new parent, init) does not. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** buildah's working containers built from this bench's registry (the stack uses the shared vfs storage). */
function benchContainers(): string[] {
  const out = execFileSync('buildah', ['--storage-driver', 'vfs', 'containers', '--json'], {
    encoding: 'utf8',
  });
  const list = (JSON.parse(out || '[]') ?? []) as { id: string; imagename: string }[];
  return list.filter((c) => c.imagename.includes(`:${PORTS.registry}/`)).map((c) => c.id);
}

/** The stack a scenario may replace (d restarts it), and processes of a dead one to stop at the end. */
interface StackHolder {
  stack: ChildProcess;
  orphans: number[];
}

async function killDuringBuilds(api: Api, dataDir: string, holder: StackHolder): Promise<void> {
  const N = 10;
  const git = new GitServer();
  await git.start();
  const containersBefore = new Set(benchContainers());
  const buildPids: number[] = [];
  try {
    git.commit('sleepy', 'main', {
      Dockerfile: `FROM 127.0.0.1:${PORTS.registry}/refit/busybox:stable\nRUN sleep 3171\n`,
    });
    const answers = await Promise.all(
      Array.from({ length: N }, () =>
        call(api, 'POST', '/scheduleRun', {
          type: 'DockerBuildRequest',
          imageNames: [],
          sourceLocation: `${git.url('sleepy')}#main`,
          dockerFilePath: 'Dockerfile',
          platform: { os: 'Linux', architecture: 'amd64' },
        }),
      ),
    );
    const ids = acceptedRunIds(answers);
    // Wait (bounded) until every build's step is running: its `sleep 3171` is a process below the host.
    const deadline = Date.now() + 90000;
    while (
      descendants(holder.stack.pid!).filter((p) => p.cmd === 'sleep 3171').length < ids.length &&
      Date.now() < deadline
    ) {
      await pause(500);
    }
    const statusesAtKill = tally([...(await waitFinal(api, ids, 0)).statuses.values()]);
    const dead = holder.stack;
    const tree = descendants(dead.pid!);
    const stackChildren = tree.filter((p) => /azurite|docker-registry/.test(p.cmd)).map((p) => p.pid);
    holder.orphans.push(...stackChildren);
    buildPids.push(...tree.filter((p) => !/azurite|docker-registry/.test(p.cmd)).map((p) => p.pid));

    const killedAt = Date.now();
    const exited = new Promise((r) => dead.once('exit', r));
    process.kill(dead.pid!, 'SIGKILL');
    await exited;

    // Restart on the same data folder, as a user would.
    holder.stack = spawnStack(dataDir, PORTS, CONCURRENCY);
    let restart: string;
    let healthyMs: number | undefined;
    try {
      await waitHealthy(PORTS.api, holder.stack, 60000);
      healthyMs = Date.now() - killedAt;
      restart = `came back by itself in ${seconds(healthyMs)}`;
    } catch {
      const out = readFileSync(join(dataDir, 'stack.out'), 'utf8').trim().split('\n');
      restart = `refused: ${out.filter((l) => /could not start|already|in use/i.test(l)).at(-1) ?? out.at(-1)}`;
      // The dead host's Azurite and registry are still there: stop them (they are this bench's), then start again.
      for (const pid of stackChildren) if (alive(pid)) process.kill(pid, 'SIGTERM');
      const gone = Date.now() + 15000;
      while (stackChildren.some(alive) && Date.now() < gone) await pause(200);
      for (const pid of stackChildren) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await stopStack(holder.stack); // in case it was still starting
      holder.stack = spawnStack(dataDir, PORTS, CONCURRENCY);
      healthyMs = await waitHealthy(PORTS.api, holder.stack, 60000).then(
        () => Date.now() - killedAt,
        () => undefined,
      );
    }
    if (healthyMs === undefined) {
      report(`d. kill -9 of the host with ${N} builds running, then a restart on the same data folder`, [
        ['builds at the kill', statusesAtKill],
        ['restart as a user would (npm start)', restart],
        ['restart after stopping its Azurite and registry', 'did not become healthy within 60 s'],
        ['stuck', ids.length],
      ]);
      return;
    }
    const { statuses, allFinalMs } = await waitFinal(api, ids, 60000);
    const values = [...statuses.values()];
    const processesLeft = buildPids.filter(alive).length;
    const sleepsLeft = buildPids.filter(
      (p) => alive(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep'),
    ).length;
    const containersLeft = benchContainers().filter((c) => !containersBefore.has(c));
    const reasons = new Set(
      await Promise.all(
        ids.map(
          async (id) =>
            runResource.safeParse((await call(api, 'GET', `/runs/${id}`)).body).data?.properties
              .runErrorMessage ?? '',
        ),
      ),
    );
    report(`d. kill -9 of the host with ${N} builds running, then a restart on the same data folder`, [
      ['builds at the kill', statusesAtKill],
      ['restart as a user would (npm start)', restart],
      ['API healthy again after the kill', seconds(healthyMs)],
      ['runs ended', `${values.filter((s) => FINAL.includes(s)).length} of ${ids.length}`],
      ['statuses 60 s after the restart (at most)', tally(values)],
      ['reasons', [...reasons].map((r) => `'${r}'`).join(', ')],
      ['stuck (not final 60 s after the restart)', values.filter((s) => !FINAL.includes(s)).length],
      ['all final after the restart', seconds(allFinalMs)],
      ['build processes of the dead host left', `${processesLeft} (${sleepsLeft} of them a build step)`],
      ['buildah working containers left', containersLeft.length],
    ]);
    // The bench leaves nothing of its own behind, whatever the figures said.
    for (const pid of buildPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    for (const id of benchContainers().filter((c) => !containersBefore.has(c))) {
      execFileSync('buildah', ['--storage-driver', 'vfs', 'rm', id], { stdio: 'ignore' });
    }
  } finally {
    for (const pid of buildPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    git.stop();
  }
}

export async function reliabilityBench(): Promise<void> {
  // BENCH_SCENARIOS=abcd (the default) or a subset, e.g. BENCH_SCENARIOS=c.
  const only = process.env.BENCH_SCENARIOS;
  console.log('reliability under chaos (each scenario once; figures, not assertions)');
  if (!only || only.includes('c')) await storageOutage();

  const dataDir = mkdtempSync(join(tmpdir(), 'refit-bench-'));
  const holder: StackHolder = { stack: spawnStack(dataDir, PORTS, CONCURRENCY), orphans: [] };
  try {
    await waitHealthy(PORTS.api, holder.stack);
    const base = `http://127.0.0.1:${PORTS.api}/api`;
    const api = { base, key: apiKeyFor(base) ?? '' };
    if (!only || only.includes('a')) await githubDeliveries(api, dataDir);
    if (!only || only.includes('b')) await concurrentSchedule(api);
    if (!only || only.includes('d')) await killDuringBuilds(api, dataDir, holder);
  } finally {
    await stopStack(holder.stack);
    for (const pid of holder.orphans) if (alive(pid)) process.kill(pid, 'SIGKILL');
    // The stack's own logs outlive its data folder, for reading the figures.
    const logs = join(tmpdir(), 'refit-bench-reliability-logs');
    rmSync(logs, { recursive: true, force: true });
    mkdirSync(logs);
    for (const f of ['stack.out', 'logs']) {
      if (existsSync(join(dataDir, f))) cpSync(join(dataDir, f), join(logs, f), { recursive: true });
    }
    console.log(`\n(the stack's logs: ${logs})`);
    if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
  }
}
