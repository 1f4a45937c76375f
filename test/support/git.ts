import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A bare repository served by a real `git daemon` on loopback, with a work tree to commit from. */
export class GitServer {
  readonly base = mkdtempSync(join(tmpdir(), 'refit-git-'));
  private daemon: ChildProcess | undefined;
  port = 0;

  /** Starts `git daemon` on a free loopback port. */
  async start(): Promise<void> {
    for (let attempt = 0; attempt < 10 && !this.daemon; attempt++) {
      const port = 19418 + Math.floor(Math.random() * 2000);
      const daemon = spawn(
        'git',
        [
          'daemon',
          '--reuseaddr',
          '--export-all',
          `--base-path=${this.base}`,
          '--listen=127.0.0.1',
          `--port=${port}`,
          this.base,
        ],
        { stdio: 'ignore' },
      );
      await new Promise((r) => setTimeout(r, 300));
      if (daemon.exitCode === null) {
        this.daemon = daemon;
        this.port = port;
      }
    }
    if (!this.daemon) throw new Error('git daemon did not start');
  }

  stop(): void {
    this.daemon?.kill();
  }

  /** The git:// URL of a repository. */
  url(repo: string): string {
    return `git://127.0.0.1:${this.port}/${repo}.git`;
  }

  private work(repo: string): string {
    return join(this.base, 'work', repo);
  }

  private git(repo: string, ...args: string[]): string {
    return execFileSync('git', ['-c', 'user.email=test@refit.local', '-c', 'user.name=test', ...args], {
      cwd: this.work(repo),
      encoding: 'utf8',
    }).trim();
  }

  /**
   * Commits `files` (and symbolic `links`, name → target) on `branch` of `repo` (created on first use) and updates
   * the served bare copy; returns the SHA.
   */
  commit(
    repo: string,
    branch: string,
    files: Record<string, string>,
    links: Record<string, string> = {},
  ): string {
    const work = this.work(repo);
    const bare = join(this.base, `${repo}.git`);
    if (!existsSync(work)) {
      mkdirSync(work, { recursive: true });
      execFileSync('git', ['init', '-q', '-b', branch, work]);
      execFileSync('git', ['init', '-q', '--bare', bare]);
      this.git(repo, 'remote', 'add', 'origin', bare);
    }
    const branches = this.git(repo, 'branch', '--list', branch);
    const current = this.git(repo, 'symbolic-ref', '--short', 'HEAD');
    if (current !== branch) this.git(repo, 'checkout', '-q', ...(branches ? [branch] : ['-b', branch]));
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(work, name)), { recursive: true });
      writeFileSync(join(work, name), content);
    }
    for (const [name, target] of Object.entries(links)) symlinkSync(target, join(work, name));
    this.git(repo, 'add', '-A');
    this.git(repo, 'commit', '-qm', `change ${Date.now()}`);
    this.git(repo, 'push', '-q', 'origin', `HEAD:refs/heads/${branch}`);
    return this.git(repo, 'rev-parse', 'HEAD');
  }
}
