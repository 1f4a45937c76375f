import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { childEnv } from '../process/child-env';
import { processCommandLine, processStartTime, readRecords } from '../process/process-groups';

// The processes of a local stack (Azurite, the registry) and what a host that was killed leaves of them: a kill -9
// of the host leaves its children running, holding their ports, so each is recorded in the data folder while it
// runs and the next start reuses or stops it.

/** A process as recorded in the data folder: its pid and start time, which together name one process. */
export interface RecordedProcess {
  readonly pid: number;
  readonly startTime: string | undefined;
}

/** The lock: the host's pid and start time, on one line. */
export function readLock(file: string): RecordedProcess | undefined {
  try {
    const [pid, startTime] = readFileSync(file, 'utf8').trim().split(' ');
    const n = Number(pid);
    return Number.isInteger(n) && n > 0 ? { pid: n, startTime: startTime || undefined } : undefined;
  } catch {
    return undefined;
  }
}

/** True when the recorded process still runs (the pid was not reused by another since: same start time). */
export function isAlive(record: RecordedProcess): boolean {
  const startTime = processStartTime(record.pid);
  return startTime !== undefined && (!record.startTime || startTime === record.startTime);
}

/** Sends `signal` to a process, true when it was there. */
function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/** What a part of the stack runs: compared with what a dead host's part ran before that part is reused. */
export interface PartSpec {
  readonly name: 'azurite' | 'registry';
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The files the part reads its settings from, whose content is part of what it runs. */
  readonly files: readonly string[];
}

/** A part's record in the data folder: the process, and a digest of what it runs (secrets are not kept in it). */
const partRecordSchema = z.object({
  pid: z.number().int().positive(),
  startTime: z.string().min(1),
  digest: z.string().min(1),
});

function specDigest(spec: PartSpec): string {
  const hash = createHash('sha256').update(JSON.stringify([spec.command, spec.args, spec.env]));
  for (const file of spec.files) hash.update(readFileSync(file));
  return hash.digest('hex');
}

/** A part of the stack (Azurite, the registry): a process started by this host, or one a dead host left running. */
export class Part {
  private ended = false;
  /** Resolves with the exit code (null when unknown or killed) once the process has exited. */
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    private readonly process: RecordedProcess,
    exited: Promise<number | null>,
  ) {
    this.exited = exited.then((code) => {
      this.ended = true;
      return code;
    });
  }

  /** Starts `spec` with its output appended to `logFile`. */
  static spawn(spec: PartSpec, logFile: string): Part {
    const fd = openSync(logFile, 'a');
    const child: ChildProcess = spawn(spec.command, spec.args, {
      stdio: ['ignore', fd, fd],
      env: childEnv(spec.env),
    });
    closeSync(fd);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null)); // not started (e.g. not installed)
    });
    return new Part(spec.name, { pid: child.pid ?? 0, startTime: undefined }, exited);
  }

  /** Takes over a process a dead host started (not our child: its exit is noticed by polling). */
  static adopt(name: string, process: RecordedProcess): Part {
    const exited = new Promise<number | null>((resolve) => {
      const timer = setInterval(() => {
        if (!isAlive(process)) {
          clearInterval(timer);
          resolve(null);
        }
      }, 250);
      timer.unref();
    });
    return new Part(name, process, exited);
  }

  get pid(): number {
    return this.process.pid;
  }

  get running(): boolean {
    return !this.ended;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    // A pid of 0 would signal this host's whole process group.
    if (this.ended || this.pid <= 0 || !signal(this.pid, 'SIGTERM')) return;
    const killer = setTimeout(() => signal(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(killer);
  }
}

/** Writes the lock: this host's pid and start time. */
export function writeLock(file: string): void {
  writeFileSync(file, `${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
}

/** Records a running part in `partsDir` with a digest of what it runs, for a start after this host was killed. */
export function recordPart(partsDir: string, spec: PartSpec, part: Part): void {
  const startTime = processStartTime(part.pid);
  if (!startTime) return;
  mkdirSync(partsDir, { recursive: true });
  writeFileSync(
    join(partsDir, `${spec.name}.json`),
    JSON.stringify({ pid: part.pid, startTime, digest: specDigest(spec) }),
  );
}

/**
 * The Azurite and registry a dead host left running (a kill -9 of the host leaves its children alive, holding their
 * ports): each is reused when it runs what this start wants, and stopped otherwise. Only processes that are still
 * the recorded ones (same pid and start time) and whose command line names this data folder are touched: a pid
 * reused by another program is left alone.
 */
export async function takeOverLeftParts(
  partsDir: string,
  dataDir: string,
  wanted: readonly PartSpec[],
  print: (line: string) => void,
): Promise<Map<string, Part>> {
  const reused = new Map<string, Part>();
  const stopping: Promise<void>[] = [];
  for (const { name: fileName, file, record } of readRecords(partsDir, partRecordSchema)) {
    rmSync(file, { force: true });
    const ours =
      record &&
      isAlive(record) &&
      processCommandLine(record.pid)?.some((a) => a === dataDir || a.startsWith(dataDir + '/'));
    if (!record || !ours) continue;
    const name = fileName.replace(/\.json$/, '');
    const spec = wanted.find((w) => w.name === name);
    const left = Part.adopt(name, record);
    if (spec && specDigest(spec) === record.digest) {
      print(`Reusing the ${name} (pid ${record.pid}) a previous Refit left running.`);
      reused.set(name, left);
    } else {
      print(`Stopping the ${name} (pid ${record.pid}) a previous Refit left running...`);
      stopping.push(left.stop(3000));
    }
  }
  await Promise.all(stopping);
  return reused;
}
