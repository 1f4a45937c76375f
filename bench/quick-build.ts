// Benchmark: `refit build` of a small context against raw `buildah bud && buildah push` of the same context,
// on the same machine, alternating, medians of N. Prints the ratio (goal: ≤ 1.3).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PROJECT_ROOT as ROOT, spawnStack, stopStack, waitHealthy } from '../src/local/child-stack';
import { median, run, timed } from './util';

const PORTS = { api: 17271, registry: 15200, azurite: 20200 };
const REGISTRY = `127.0.0.1:${PORTS.registry}`;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 2000);

export async function quickBuildBench(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'refit-bench-'));
  const stack = spawnStack(dataDir, PORTS);
  await waitHealthy(PORTS.api, stack);
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
    await stopStack(stack);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
