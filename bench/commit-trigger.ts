// Benchmark: from a signed GitHub push webhook to the triggered run being Queued (the webhook's answer),
// Running (the build has started) and Succeeded, over N pushes to a repository served by git daemon.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiKeyFor } from '../src/local/api-key';
import { spawnStack, stopStack, waitHealthy } from '../src/local/child-stack';
import { percentile } from './util';
import { signGitHubBody } from '../src/triggers/github';
import { GitServer } from '../test/support/git';

const PORTS = { api: 17371, registry: 15300, azurite: 20300 };
const API = `http://127.0.0.1:${PORTS.api}/api`;
// The bench's stack records its key for its URL where the CLI looks (REFIT_KEY, when set, is the stack's key too).
const key = (): Record<string, string> => ({ 'x-functions-key': apiKeyFor(API) ?? '' });
const PUSHES = Number(process.env.BENCH_PUSHES ?? 10);

async function waitStatus(runId: string, statuses: string[], t0: number): Promise<number> {
  for (;;) {
    const run = (await fetch(`${API}/runs/${runId}`, { headers: key() }).then((r) => r.json())) as {
      properties: { status: string };
    };
    if (statuses.includes(run.properties.status)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function commitTriggerBench(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'refit-bench-'));
  const stack = spawnStack(dataDir, PORTS);
  const git = new GitServer();
  try {
    await waitHealthy(PORTS.api, stack);
    await git.start();
    const secret = readFileSync(join(dataDir, 'webhook.secret'), 'utf8').trim();
    const repo = git.url('bench');
    git.commit('bench', 'main', {
      Dockerfile: `FROM 127.0.0.1:${PORTS.registry}/refit/busybox:stable\nCOPY n.txt /n.txt\n`,
      'n.txt': '0',
    });
    await fetch(`${API}/tasks/bench-task`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...key() },
      body: JSON.stringify({
        properties: {
          step: { type: 'Docker', contextPath: `${repo}#main`, imageNames: ['bench/commit:{{.Run.ID}}'] },
          trigger: {
            sourceTriggers: [
              {
                name: 'src',
                sourceRepository: { sourceControlType: 'Github', repositoryUrl: repo, branch: 'main' },
                sourceTriggerEvents: ['commit'],
              },
            ],
          },
        },
      }),
    });
    const queued: number[] = [];
    const running: number[] = [];
    const done: number[] = [];
    for (let i = 1; i <= PUSHES; i++) {
      const sha = git.commit('bench', 'main', { 'n.txt': String(i) });
      const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { clone_url: repo } });
      const t0 = Date.now();
      const res = await fetch(`${API}/hooks/github`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-github-delivery': `bench-${i}-${t0}`,
          'x-hub-signature-256': signGitHubBody(secret, body),
        },
        body,
      });
      const runId = ((await res.json()) as { decisions: { runId: string }[] }).decisions[0]!.runId;
      queued.push(Date.now() - t0);
      running.push(await waitStatus(runId, ['Running', 'Succeeded', 'Failed'], t0));
      done.push(await waitStatus(runId, ['Succeeded', 'Failed'], t0));
      await new Promise((r) => setTimeout(r, 1500));
    }
    const line = (what: string, xs: number[]): string =>
      `  ${what.padEnd(44)} median ${percentile(xs, 50)} ms, p95 ${percentile(xs, 95)} ms, max ${Math.max(...xs)} ms`;
    console.log(`commit trigger: signed push webhook → run, ${PUSHES} pushes`);
    console.log(line('webhook answered, run Queued', queued));
    console.log(line('run Running (clone + build started)', running));
    console.log(line('run Succeeded (built and pushed)', done));
  } finally {
    git.stop();
    await stopStack(stack);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
