import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { leftWorkingContainers, stopStack } from './stack';

// Stops the test stack, then checks that the builds of the whole run left no working container behind (each is a
// full copy of its image with vfs): a stopped build's container is removed by the stack, not by a later run.
export default async function globalTeardown(): Promise<void> {
  const child = (globalThis as { __refitStack?: ChildProcess }).__refitStack;
  if (child) await stopStack(child);
  const dir = process.env.REFIT_TEST_DATA_DIR;
  if (!dir) return;
  try {
    const left = leftWorkingContainers(dir);
    if (left.length > 0)
      throw new Error(
        `The test stack left ${left.length} buildah working container(s) behind: ${left.join(', ')}`,
      );
  } finally {
    if (!process.env.REFIT_KEEP_TEST_DATA) rmSync(dir, { recursive: true, force: true });
  }
}
