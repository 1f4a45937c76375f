import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { azuriteConnectionString } from '../../src/config';
import { azuriteArgs } from '../../src/local/azurite-args';
import { untilTrue } from './api';

/** An Azurite of a test's own (its queues polled by nobody else); `stop` ends it. */
export interface RunningAzurite {
  readonly connectionString: string;
  stop(): Promise<void>;
}

/**
 * Starts Azurite on `port` (blob), `port + 1` (queue) and `port + 2` (table) with its files in `dir`: for a Refit in
 * the test process whose queues the test stack must not take (the stack polls its own Azurite's).
 */
export async function startAzurite(dir: string, port: number): Promise<RunningAzurite> {
  mkdirSync(dir, { recursive: true });
  const host = '127.0.0.1';
  const child: ChildProcess = spawn(
    process.execPath,
    azuriteArgs(dir, host, { blob: port, queue: port + 1, table: port + 2 }),
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await untilTrue(
    `Azurite on ${host}:${port}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`Azurite exited: ${stderr}`);
      const answers = await Promise.all(
        [port, port + 1, port + 2].map((p) =>
          fetch(`http://${host}:${p}/`).then(
            () => true,
            () => false,
          ),
        ),
      );
      return answers.every(Boolean);
    },
    30000,
  );
  return {
    connectionString: azuriteConnectionString(host, port, port + 1, port + 2),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
