// `npm run bench`: every benchmark, one after the other (BENCH=name runs one).
import { baseImageBench } from './base-image';
import { commitTriggerBench } from './commit-trigger';
import { multiStepBench } from './multi-step';
import { quickBuildBench } from './quick-build';
import { reliabilityBench } from './reliability';
import { watchBench } from './watch';

const benches: Record<string, () => Promise<void>> = {
  'quick-build': quickBuildBench,
  'commit-trigger': commitTriggerBench,
  'base-image': baseImageBench,
  'multi-step': multiStepBench,
  // Not part of a plain `npm run bench`: it kills processes on purpose and takes minutes (BENCH=reliability).
  reliability: reliabilityBench,
  watch: watchBench,
};

async function main(): Promise<void> {
  const only = process.env.BENCH;
  for (const [name, bench] of Object.entries(benches)) {
    if (only ? only !== name : name === 'reliability') continue;
    await bench();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
