import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packContext } from '../../src/cli/source-archive';
import { HOST_STOPPED_MESSAGE } from '../../src/runs/run-service';
import {
  leftWorkingContainers,
  spawnStack,
  stopStack,
  waitHealthy,
  type TestStackPorts,
} from '../support/stack';
import { until, untilTrue, writeContext } from '../support/api';

// A stack of this test's own, beside the shared test stack's and local-stack.test.ts's ports (REFIT_TEST_PORT_OFFSET
// moves all of them), killed and started again on the same data folder and ports.
const offset = Number(process.env.REFIT_TEST_PORT_OFFSET ?? '0');
const ports: TestStackPorts = { api: 17146 + offset, registry: 15075 + offset, azurite: 20075 + offset };
const api = `http://127.0.0.1:${ports.api}/api`;

/**
 * How long a restarted stack may take to answer /health before the test gives up: a bound on "it comes back", not a
 * speed claim (a loaded CI machine took more than 10 s), so generous.
 */
const RESTART_BUDGET_MS = 60000;

/** A stack's data folder; one per test. */
function newDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'refit-crash-'));
}

function start(dataDir: string): ReturnType<typeof spawnStack> {
  // One build at a time, so that a second run is claimed and waits for the slot.
  return spawnStack(dataDir, ports, {
    XDG_CONFIG_HOME: join(dataDir, 'config'),
    REFIT_LOCAL_CONCURRENCY: '1',
  });
}

/** Waits until the stack answers /health; its output is in the error when it does not. */
async function healthy(
  stack: ReturnType<typeof spawnStack>,
  dataDir: string,
  timeoutMs?: number,
): Promise<void> {
  try {
    await waitHealthy(ports.api, stack, timeoutMs);
  } catch (err) {
    const out = readFileSync(join(dataDir, 'stack.out'), 'utf8');
    throw new Error(`${(err as Error).message}; its output:\n${out.slice(-4000)}`);
  }
}

async function call(dataDir: string, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: {
      'x-functions-key': readFileSync(join(dataDir, 'api.key'), 'utf8').trim(),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Uploads a context with this Dockerfile to the stack and queues its quick build; returns the run ID. */
async function schedule(dataDir: string, dockerfile: string): Promise<string> {
  const slot = await call(dataDir, 'POST', '/listBuildSourceUploadUrl');
  const put = await fetch(slot.uploadUrl as string, {
    method: 'PUT',
    headers: { 'x-ms-blob-type': 'BlockBlob' },
    body: await packContext(writeContext({ Dockerfile: dockerfile }), 'Dockerfile'),
  });
  if (!put.ok) throw new Error(`upload failed: ${put.status}`);
  const run = await call(dataDir, 'POST', '/scheduleRun', {
    type: 'DockerBuildRequest',
    imageNames: [],
    sourceLocation: slot.relativePath,
    dockerFilePath: 'Dockerfile',
    platform: { os: 'Linux', architecture: 'amd64' },
  });
  return run.name as string;
}

async function runOf(dataDir: string, runId: string): Promise<any> {
  return (await call(dataDir, 'GET', `/runs/${runId}`)).properties;
}

/** The statuses a run ends in. */
const FINAL = ['Succeeded', 'Failed', 'Error', 'Canceled'];

async function untilStatus(dataDir: string, runId: string, statuses: readonly string[]): Promise<any> {
  return until(
    `run ${runId} reaching ${statuses.join('/')}`,
    async () => {
      const run = await runOf(dataDir, runId);
      return statuses.includes(run.status as string) ? run : undefined;
    },
    90000,
  );
}

/** A process as it is now: its pid, start time and command line. */
interface Proc {
  readonly pid: number;
  readonly startTime: string;
  readonly ppid: number;
  readonly command: string;
}

function processes(): Proc[] {
  const all: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      all.push({ pid: Number(entry), ppid: Number(fields[1]), startTime: fields[19]!, command });
    } catch {
      // exited meanwhile
    }
  }
  return all;
}

/** True while this very process runs: same pid and start time (a reused pid is another process), not a zombie. */
function stillRunning(p: Proc): boolean {
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] !== 'Z' && fields[19] === p.startTime;
  } catch {
    return false;
  }
}

/** Every process descended from `pid`, its own process groups included (they are still its children). */
function descendants(pid: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  let frontier = [pid];
  while (frontier.length) {
    const next = all.filter((p) => frontier.includes(p.ppid));
    found.push(...next);
    frontier = next.map((p) => p.pid);
  }
  return found;
}

/** A build that runs until it is stopped: its RUN step sleeps (a number the test looks for among processes). */
const LONG_BUILD = 'FROM 127.0.0.1:{registry}/refit/busybox:stable\nRUN ["/bin/busybox", "sleep", "4242"]\n';
/** A build that finishes at once. */
const SHORT_BUILD = 'FROM 127.0.0.1:{registry}/refit/busybox:stable\nRUN echo built > /built\n';
const dockerfile = (template: string): string => template.replace('{registry}', String(ports.registry));

/**
 * Starts a stack with one run building (its RUN step under way) and one claimed and waiting for the build slot;
 * returns the stack and both run IDs.
 */
async function stackWithBuilds(
  dataDir: string,
): Promise<{ stack: ReturnType<typeof spawnStack>; running: string; waiting: string }> {
  const stack = start(dataDir);
  await healthy(stack, dataDir);
  const running = await schedule(dataDir, dockerfile(LONG_BUILD));
  await untilStatus(dataDir, running, ['Running']);
  await untilTrue(
    'the long build reaching its RUN step',
    () => descendants(stack.pid!).some((p) => p.command.includes('sleep 4242')),
    90000,
  );
  const waiting = await schedule(dataDir, dockerfile(SHORT_BUILD));
  await untilStatus(dataDir, waiting, ['Started']);
  return { stack, running, waiting };
}

describe('local stack', () => {
  describe('crash recovery', () => {
    const dirs: string[] = [];
    let stack: ReturnType<typeof spawnStack> | undefined;
    /** What a killed host left: ended here if the test fails before the new host has ended them. */
    let left: Proc[] = [];
    afterEach(async () => {
      if (stack) await stopStack(stack);
      stack = undefined;
      for (const p of left.splice(0)) {
        try {
          if (stillRunning(p)) process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    });
    afterAll(() => {
      if (!process.env.REFIT_KEEP_TEST_DATA)
        for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it('comes back after kill -9 of the host mid-build: the build ends Error, the waiting run builds, nothing of the dead host is left', async () => {
      const dataDir = newDataDir();
      dirs.push(dataDir);
      const before = await stackWithBuilds(dataDir);
      const host = before.stack;
      // Azurite, the registry, the build's process group and its sleeping RUN step.
      left = descendants(host.pid!);
      expect(left.some((p) => p.command.includes('docker-registry serve'))).toBe(true);
      expect(left.some((p) => p.command.includes('azurite'))).toBe(true);
      expect(left.some((p) => p.command.startsWith('buildah'))).toBe(true);

      // The host's pid only, as a crash or the OOM killer would: its children live on.
      const exited = new Promise((resolve) => host.once('exit', resolve));
      process.kill(host.pid!, 'SIGKILL');
      await exited;

      stack = start(dataDir);
      await healthy(stack, dataDir, RESTART_BUDGET_MS);

      // Of the dead host's processes, only the Azurite and registry the new host took over still run: its build's
      // process group is gone.
      const alive = (): Proc[] => left.filter(stillRunning);
      const takenOver = readdirSync(join(dataDir, 'parts')).map(
        (file) => (JSON.parse(readFileSync(join(dataDir, 'parts', file), 'utf8')) as { pid: number }).pid,
      );
      expect(
        alive()
          .filter((p) => !takenOver.includes(p.pid))
          .map((p) => p.command),
      ).toEqual([]);
      const crashed = await runOf(dataDir, before.running);
      expect(crashed.status).toBe('Error');
      expect(crashed.runErrorMessage).toBe(HOST_STOPPED_MESSAGE);
      // Claimed but never started: queued again, and built by the new host.
      expect((await untilStatus(dataDir, before.waiting, FINAL)).status).toBe('Succeeded');
      expect(leftWorkingContainers(dataDir)).toEqual([]);
      // And those go with the new host: nothing of the dead one is left.
      expect(await stopStack(stack)).toBe(0);
      stack = undefined;
      expect(alive().map((p) => p.command)).toEqual([]);
    });

    it('queues again, on a clean stop (SIGTERM), the runs waiting for a build slot; the next start builds them', async () => {
      const dataDir = newDataDir();
      dirs.push(dataDir);
      const before = await stackWithBuilds(dataDir);
      expect(await stopStack(before.stack)).toBe(0);

      stack = start(dataDir);
      await healthy(stack, dataDir);
      const stopped = await runOf(dataDir, before.running);
      expect(stopped.status).toBe('Error');
      expect(stopped.runErrorMessage).toBe(HOST_STOPPED_MESSAGE);
      expect((await untilStatus(dataDir, before.waiting, FINAL)).status).toBe('Succeeded');
      expect(leftWorkingContainers(dataDir)).toEqual([]);
    });
  });

  describe('a build stopped outside a RUN step', () => {
    let dataDir: string;
    let server: ReturnType<typeof createServer>;
    const connections: Socket[] = [];
    beforeAll(async () => {
      dataDir = newDataDir();
      // An ADD from this server never completes: the build waits in buildah itself, not in a RUN step.
      server = createServer((socket) => void connections.push(socket));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      if (stack) await stopStack(stack);
      stack = undefined;
      if (!process.env.REFIT_KEEP_TEST_DATA) rmSync(dataDir, { recursive: true, force: true });
    });
    let stack: ReturnType<typeof spawnStack> | undefined;

    it('leaves no working container once canceled (buildah killed outside RUN removes none itself)', async () => {
      stack = start(dataDir);
      await healthy(stack, dataDir);
      const { port } = server.address() as { port: number };
      const runId = await schedule(
        dataDir,
        `FROM 127.0.0.1:${ports.registry}/refit/busybox:stable\nADD http://127.0.0.1:${port}/never /never\n`,
      );
      await untilTrue('the build reaching its ADD', () => connections.length > 0, 90000);
      expect(leftWorkingContainers(dataDir)).toHaveLength(1);

      await call(dataDir, 'POST', `/runs/${runId}/cancel`);

      expect((await untilStatus(dataDir, runId, ['Canceled'])).status).toBe('Canceled');
      await untilTrue(
        'the working container of the canceled build removed',
        () => leftWorkingContainers(dataDir).length === 0,
        30000,
      );
    });
  });
});
