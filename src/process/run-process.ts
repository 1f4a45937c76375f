import { spawn } from 'node:child_process';
import { childEnv } from './child-env';
import { ProcessGroups } from './process-groups';

/** How a child process ended. */
export interface ProcessResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Options of {@link runProcess}. */
export interface RunProcessOptions {
  readonly cwd?: string;
  /** The child's whole environment; by default {@link childEnv}'s allow-list, never Refit's own. */
  readonly env?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  readonly onOutput?: (chunk: string) => void;
}

/** How long a stopped process group has to exit after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10000;

/**
 * Runs a command in a process group of its own, streaming stdout and stderr to `onOutput`. An abort stops the whole
 * group (buildah and git start children of their own): SIGTERM first, then SIGKILL after a grace. buildah stopped
 * in a RUN step removes its working container; stopped anywhere else (FROM, COPY, ADD, commit) it exits at once
 * and leaves it behind, a full copy of the image with vfs: the local executor removes those (removeWorkingContainers).
 * Inside {@link ProcessGroups.run} the group is recorded while it runs, so that a later start can end it if this
 * host dies first.
 */
export function runProcess(
  command: string,
  args: readonly string[],
  options: RunProcessOptions = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      resolve({ code: null, signal: 'SIGKILL' });
      return;
    }
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? childEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const groups = ProcessGroups.current();
    const pgid = child.pid;
    if (groups && pgid) groups.add(pgid, command);
    const signal = (name: NodeJS.Signals): void => {
      try {
        if (child.pid) process.kill(-child.pid, name);
      } catch {
        // already gone
      }
    };
    let grace: NodeJS.Timeout | undefined;
    const kill = (): void => {
      signal('SIGTERM');
      grace = setTimeout(() => signal('SIGKILL'), STOP_GRACE_MS);
      grace.unref();
    };
    options.signal?.addEventListener('abort', kill, { once: true });
    child.stdout.setEncoding('utf8').on('data', (d: string) => options.onOutput?.(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => options.onOutput?.(d));
    child.on('error', (err) => {
      if (groups && pgid) groups.remove(pgid);
      options.signal?.removeEventListener('abort', kill);
      reject(err);
    });
    child.on('close', (code, exitSignal) => {
      if (groups && pgid) groups.remove(pgid);
      clearTimeout(grace);
      options.signal?.removeEventListener('abort', kill);
      resolve({ code, signal: exitSignal });
    });
  });
}
