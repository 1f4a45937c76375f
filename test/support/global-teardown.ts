import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { stopStack } from './stack';

export default async function globalTeardown(): Promise<void> {
  const child = (globalThis as { __refitStack?: ChildProcess }).__refitStack;
  if (child) await stopStack(child);
  const dir = process.env.REFIT_TEST_DATA_DIR;
  if (dir && !process.env.REFIT_KEEP_TEST_DATA) rmSync(dir, { recursive: true, force: true });
}
