import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcess } from '../../src/process/run-process';

/** Runs buildah on a storage of the test's own in `root` (the stack's is untouched); fails on a non-zero exit. */
export async function buildah(root: string, args: string[]): Promise<void> {
  let output = '';
  const result = await runProcess(
    'buildah',
    ['--root', join(root, 'storage'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', ...args],
    { onOutput: (c) => (output += c) },
  );
  if (result.code !== 0) throw new Error(`buildah ${args.join(' ')} failed: ${output}`);
}

/** A CNCF registry of a test's own on loopback (plain HTTP, no notifications: it never tells Refit of a push). */
export class LoopbackRegistry {
  private child: ChildProcess | undefined;

  /** `auth`: a user and password the registry requires (htpasswd, bcrypt), or none. */
  constructor(
    readonly port: number,
    private readonly auth?: { readonly user: string; readonly password: string },
  ) {}

  /** host:port */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts it and waits until it answers /v2/. */
  async start(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'refit-registry-'));
    const config = join(dir, 'registry.yml');
    const htpasswd = join(dir, 'htpasswd');
    if (this.auth) {
      const made = spawnSync('htpasswd', ['-Bbn', this.auth.user, this.auth.password], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`htpasswd failed: ${made.stderr}`);
      writeFileSync(htpasswd, made.stdout);
    }
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log: { level: warn, accesslog: { disabled: true } }',
        `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'data'))} } }`,
        `http: { addr: "${this.address}" }`,
        ...(this.auth ? [`auth: { htpasswd: { realm: test, path: ${JSON.stringify(htpasswd)} } }`] : []),
        '',
      ].join('\n'),
    );
    this.child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`the registry on ${this.address} exited`);
      const up = await fetch(`http://${this.address}/v2/`).then(
        (r) => r.ok || r.status === 401,
        () => false,
      );
      if (up) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the registry on ${this.address} did not start`);
  }

  /** Stops it. */
  stop(): void {
    this.child?.kill('SIGTERM');
  }
}
