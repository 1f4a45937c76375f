import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { azuriteConnectionString, refitSettings } from '../config';
import { childEnv } from '../process/child-env';

/** Where a stack started as a child listens. */
export interface ChildStackPorts {
  readonly api: number;
  readonly registry: number;
  readonly azurite: number;
}

function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('the Refit project folder was not found above ' + __dirname);
    dir = up;
  }
  return dir;
}

/** The project's root folder (the one with package.json), from source or from dist/. */
export const PROJECT_ROOT = projectRoot();

/**
 * Starts the local stack (what `npm start` runs) as a child process with its own data folder and ports, its
 * output in `<dataDir>/stack.out`: for tests and benchmarks that need a stack of their own.
 */
export function spawnStack(
  dataDir: string,
  ports: ChildStackPorts,
  extraEnv: Record<string, string> = {},
): ChildProcess {
  const out = openSync(join(dataDir, 'stack.out'), 'a');
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'src', 'local', 'main.js')], {
    cwd: PROJECT_ROOT,
    // The stack gets the caller's Refit settings and where the user's config folder is (it records its API key
    // there), not the caller's whole environment.
    env: childEnv({
      ...refitSettings(),
      XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME,
      REFIT_DATA_DIR: dataDir,
      REFIT_PORT: String(ports.api),
      REFIT_REGISTRY_PORT: String(ports.registry),
      REFIT_AZURITE_PORT: String(ports.azurite),
      REFIT_LOG_LEVEL: 'warn',
      ...extraEnv,
    }),
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  return child;
}

/** Waits until GET /api/health answers 200, or throws. */
export async function waitHealthy(port: number, child: ChildProcess, timeoutMs = 120000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the stack exited with code ${child.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${port}/api/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the stack did not become healthy');
}

/** Sends SIGTERM and waits for the stack to exit. */
export function stopStack(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

/** The account of a local stack's Azurite (the development account's name, with a key of the stack's own). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';

/** The file in a stack's data folder that holds its Azurite account key (mode 0600). */
export const STORAGE_KEY_FILE = 'storage.key';

/** The connection string of the Azurite of a stack whose data is in `dataDir` (for tests and benchmarks that reach it directly). */
export function stackStorageConnectionString(dataDir: string, azuritePort: number): string {
  const key = readFileSync(join(dataDir, STORAGE_KEY_FILE), 'utf8').trim();
  return azuriteConnectionString('127.0.0.1', azuritePort, azuritePort + 1, azuritePort + 2, key);
}
