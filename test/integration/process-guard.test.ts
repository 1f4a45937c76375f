import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const GUARD = join(__dirname, '../../dist/src/process/process-guard.js');

/**
 * A small server in a process of its own, with the guard installed through the real (compiled) module, that lets a
 * rejection and an exception escape once it listens, and answers `alive` while it is up.
 */
const SCRIPT = `
const http = require('node:http');
const { keepServing } = require(${JSON.stringify(GUARD)});
keepServing({ uncaughtExceptions: process.argv[1] === 'exceptions' });
const server = http.createServer((req, res) => res.end('alive'));
server.listen(0, '127.0.0.1', () => {
  Promise.reject(new Error('an append nobody awaited failed'));
  setTimeout(() => { throw new Error('a callback threw'); }, 10);
  setTimeout(() => console.log(server.address().port), 50);
});
`;

/** Starts the server; resolves with its port once both errors escaped, or with null if it exited first. */
async function startGuarded(
  mode: 'exceptions' | 'rejections',
): Promise<{ port: number | null; stderr: () => string; stop: () => void }> {
  const child = spawn(process.execPath, ['-e', SCRIPT, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await Promise.race([
    once(child.stdout, 'data').then(([chunk]) => Number(String(chunk).trim())),
    once(child, 'close').then(() => null),
  ]);
  return { port, stderr: () => stderr, stop: () => child.kill() };
}

describe('process-guard', () => {
  describe('keepServing', () => {
    it('logs a rejection and an exception that escaped every handler, and the process keeps serving', async () => {
      const host = await startGuarded('exceptions');
      try {
        expect(host.port).not.toBeNull();
        const response = await fetch(`http://127.0.0.1:${host.port}/`);

        expect(await response.text()).toBe('alive');
        // stderr is a pipe of its own: its lines may arrive after the port.
        for (const deadline = Date.now() + 10000; host.stderr().trim().split('\n').length < 2;) {
          if (Date.now() > deadline) throw new Error(`the guard logged: ${host.stderr()}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const logged = host
          .stderr()
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        expect(logged).toEqual([
          expect.objectContaining({
            level: 'error',
            message: 'unhandled rejection; the process keeps serving',
            error: 'an append nobody awaited failed',
          }),
          expect.objectContaining({
            level: 'error',
            message: 'uncaught exception; the process keeps serving',
            error: 'a callback threw',
          }),
        ]);
      } finally {
        host.stop();
      }
    });

    it('leaves uncaught exceptions to a supervisor when asked (the Functions worker exits and is restarted)', async () => {
      const host = await startGuarded('rejections');
      host.stop();

      expect(host.port).toBeNull();
      expect(host.stderr()).toContain('unhandled rejection; the process keeps serving');
      expect(host.stderr()).toContain('a callback threw');
    });
  });
});
