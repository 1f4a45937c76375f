// Benchmark: `refit build` of a small context against raw `buildah bud && buildah push` of the same context,
// on the same machine, alternating, medians of N. Prints the ratio (goal: ≤ 1.3).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const PORTS = { api: 17271, registry: 15200, azurite: 20200 };
const REGISTRY = `127.0.0.1:${PORTS.registry}`;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SETTLE_MS = 2000;

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}`)),
    );
  });
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function startStack(dataDir: string): Promise<ChildProcess> {
  const out = openSync(join(dataDir, 'stack.out'), 'a');
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'local', 'main.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      REFIT_DATA_DIR: dataDir,
      REFIT_PORT: String(PORTS.api),
      REFIT_REGISTRY_PORT: String(PORTS.registry),
      REFIT_AZURITE_PORT: String(PORTS.azurite),
      REFIT_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  for (let i = 0; i < 600; i++) {
    if (
      await fetch(`http://127.0.0.1:${PORTS.api}/api/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return child;
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`the stack did not start; see ${dataDir}/stack.out`);
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'refit-bench-'));
  const stack = await startStack(dataDir);
  const buildahEnv = { ...process.env, CONTAINERS_REGISTRIES_CONF: join(dataDir, 'registries.conf') };
  const context = join(ROOT, 'examples', 'hello');
  const refitEnv = { ...process.env, REFIT_URL: `http://127.0.0.1:${PORTS.api}` };
  let n = 0;

  const refitBuild = (): Promise<void> =>
    run(
      join(ROOT, 'node_modules', '.bin', 'refit'),
      ['build', '-t', 'bench/refit:{{.Run.ID}}', '--build-arg', `REGISTRY=${REGISTRY}`, context],
      refitEnv,
    );
  const rawBuild = async (): Promise<void> => {
    const image = `${REGISTRY}/bench/raw:${++n}`;
    await run(
      'buildah',
      [
        '--storage-driver',
        'vfs',
        'bud',
        '--isolation',
        'chroot',
        '-t',
        image,
        '--build-arg',
        `REGISTRY=${REGISTRY}`,
        context,
      ],
      buildahEnv,
    );
    await run(
      'buildah',
      ['--storage-driver', 'vfs', 'push', '--tls-verify=false', image, `docker://${image}`],
      buildahEnv,
    );
  };

  try {
    // One warm-up of each (pulls the base into buildah's storage, warms Node's module cache).
    await refitBuild();
    await rawBuild();
    const refit: number[] = [];
    const raw: number[] = [];
    // Refit removes a run's local image after reporting the run: let that finish (and the disk settle)
    // before the next measurement, so that neither side pays for the other's housekeeping.
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, SETTLE_MS));
    for (let i = 0; i < ROUNDS; i++) {
      await settle();
      refit.push(await timed(refitBuild));
      await settle();
      raw.push(await timed(rawBuild));
    }
    const ratio = median(refit) / median(raw);
    const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
    console.log(`quick build of examples/hello, ${ROUNDS} rounds, alternating`);
    console.log(
      `  refit build (CLI: pack, upload, queue, buildah bud + push, log stream): median ${median(refit).toFixed(0)} ms  [${fmt(refit)}]`,
    );
    console.log(
      `  raw buildah bud && buildah push:                                     median ${median(raw).toFixed(0)} ms  [${fmt(raw)}]`,
    );
    console.log(`  ratio refit/raw: ${ratio.toFixed(2)} (goal ≤ 1.3)`);
  } finally {
    stack.kill('SIGTERM');
    await new Promise((r) => stack.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
