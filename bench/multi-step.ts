// Benchmark: `refit run` of examples/multi-step/build-run-test (build, three cmd steps, push) against the same
// work done with raw buildah commands one after the other (bud; from + run + rm three times; push), on the same
// machine, alternating, medians of N. Prints the ratio.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT as ROOT, spawnStack, stopStack, waitHealthy } from '../src/local/child-stack';
import { median, run, settle, timed } from './util';

const PORTS = { api: 17571, registry: 15500, azurite: 20500 };
const REGISTRY = `127.0.0.1:${PORTS.registry}`;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

export async function multiStepBench(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'refit-bench-'));
  const stack = spawnStack(dataDir, PORTS);
  await waitHealthy(PORTS.api, stack);
  const env = { ...process.env, CONTAINERS_REGISTRIES_CONF: join(dataDir, 'registries.conf') };
  const context = join(ROOT, 'examples', 'multi-step', 'build-run-test');
  const refitEnv = { ...process.env, REFIT_URL: `http://127.0.0.1:${PORTS.api}` };
  const buildah = (args: string[]): Promise<void> =>
    run('buildah', ['--storage-driver', 'vfs', ...args], env);
  let n = 0;

  const refitRun = (): Promise<void> =>
    run(join(ROOT, 'node_modules', '.bin', 'refit'), ['run', context], refitEnv);
  const rawRun = async (): Promise<void> => {
    const image = `${REGISTRY}/bench/adder:raw${++n}`;
    const workspace = mkdtempSync(join(tmpdir(), 'refit-bench-ws-'));
    const cmd = async (from: string, command: string[]): Promise<void> => {
      const name = `bench-raw-${n}-${Math.random().toString(36).slice(2, 8)}`;
      await buildah(['from', '--name', name, '--pull=missing', '--tls-verify=false', '--quiet', from]);
      await buildah([
        'run',
        '--isolation',
        'chroot',
        '--volume',
        `${workspace}:/workspace`,
        name,
        '--',
        ...command,
      ]);
      await buildah(['rm', name]);
    };
    await buildah([
      'bud',
      '--isolation',
      'chroot',
      '-t',
      image,
      '--build-arg',
      `REGISTRY=${REGISTRY}`,
      context,
    ]);
    await cmd(image, ['/app.sh', '2', '3']);
    await cmd(image, ['/bin/sh', '-c', 'test "$(/app.sh 20 22)" = 42 && echo passed > /workspace/report']);
    await cmd(`${REGISTRY}/refit/busybox:stable`, ['cat', '/workspace/report']);
    await buildah(['push', '--tls-verify=false', image, `docker://${image}`]);
    await buildah(['rmi', '--force', image]);
    rmSync(workspace, { recursive: true, force: true });
  };

  try {
    await refitRun();
    await rawRun();
    const refit: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await settle();
      refit.push(await timed(refitRun));
      await settle();
      raw.push(await timed(rawRun));
    }
    const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
    console.log(
      `multi-step run of examples/multi-step/build-run-test (5 steps), ${ROUNDS} rounds, alternating`,
    );
    console.log(
      `  refit run (CLI: pack, upload, queue, steps, log stream): median ${median(refit).toFixed(0)} ms  [${fmt(refit)}]`,
    );
    console.log(
      `  raw buildah, the same commands one after the other:      median ${median(raw).toFixed(0)} ms  [${fmt(raw)}]`,
    );
    console.log(`  ratio refit/raw: ${(median(refit) / median(raw)).toFixed(2)}`);
  } finally {
    await stopStack(stack);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
