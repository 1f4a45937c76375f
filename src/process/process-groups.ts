import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { log } from '../log';

// runProcess starts every command in a process group of its own, so that a stop reaches buildah's and git's
// children too. Those groups outlive a host that dies without stopping them (kill -9, an OOM kill): reparented to
// init, a build goes on writing into storage that the next host cleans, or holds a working container forever. Each
// group is therefore recorded in a folder while it runs, and the next start ends the groups a dead host left.

/** One recorded group: its leader's pid (the group's ID), when the leader started, and what it runs. */
const recordSchema = z.object({
  pgid: z.number().int().positive(),
  startTime: z.string().min(1),
  command: z.string().min(1),
});

/** What {@link endLeftGroups} did. */
export interface LeftGroups {
  /** Groups that were still running and were killed. */
  readonly ended: number;
  /** Records of groups that were gone (or whose pid now belongs to another program), removed. */
  readonly stale: number;
}

/** The fields of /proc/PID/stat this file reads, or undefined when there is no such process. */
function procStat(pid: number): { state: string; pgrp: number; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself: count after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', pgrp: Number(fields[2]), startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/**
 * A process's start time since boot (field 22 of /proc/PID/stat), or undefined when there is no such process. A pid
 * alone can be reused; a pid and its start time name one process.
 */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/** A process's command line (its arguments, NUL-separated in /proc), or undefined when there is no such process. */
export function processCommandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/** The live processes (zombies have ended already) whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      const stat = procStat(pid);
      return stat !== undefined && stat.state !== 'Z' && stat.pgrp === pgid;
    });
}

/** The base name of a command (`/usr/bin/buildah` → `buildah`). */
function baseName(command: string): string {
  return command.slice(command.lastIndexOf('/') + 1);
}

/**
 * True when the recorded group is still the one that was recorded: its leader is alive with the recorded start time
 * and command, or the leader is gone and members remain (Linux gives no new process a pid that is still a live
 * group's ID, so the members are the recorded group's).
 */
function stillOurs(record: z.infer<typeof recordSchema>): boolean {
  const leader = procStat(record.pgid);
  if (leader === undefined || leader.state === 'Z') return groupMembers(record.pgid).length > 0;
  const argv0 = processCommandLine(record.pgid)?.[0];
  return (
    leader.startTime === record.startTime &&
    argv0 !== undefined &&
    baseName(argv0) === baseName(record.command)
  );
}

const context = new AsyncLocalStorage<ProcessGroups>();

/** The process groups runProcess starts are recorded in a folder while they run, for {@link endLeftGroups}. */
export class ProcessGroups {
  constructor(private readonly dir: string) {}

  /** The tracker of the code now running, if it runs inside {@link run}. */
  static current(): ProcessGroups | undefined {
    return context.getStore();
  }

  /** Runs `work` so that every process runProcess starts within it (however deep) is recorded here. */
  run<T>(work: () => Promise<T>): Promise<T> {
    return context.run(this, work);
  }

  /**
   * Records a group that was just started. Written synchronously, so a host killed right after the spawn still left
   * the record behind.
   */
  add(pgid: number, command: string): void {
    const startTime = processStartTime(pgid);
    // Already gone (or not ours to see): there is nothing to end later.
    if (startTime === undefined) return;
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(join(this.dir, String(pgid)), JSON.stringify({ pgid, startTime, command }));
    } catch (err) {
      log.warn('a process group could not be recorded', { pgid, error: (err as Error).message });
    }
  }

  /** Forgets a group whose leader has exited. */
  remove(pgid: number): void {
    rmSync(join(this.dir, String(pgid)), { force: true });
  }
}

/**
 * Ends the process groups recorded in `dir` by a host that is no longer running (SIGKILL: nothing of them is
 * wanted, and their storage is cleaned next), after checking that each is still the recorded group, and waits up
 * to `waitMs` for them to be gone. Every record is removed.
 */
export async function endLeftGroups(dir: string, waitMs = 5000): Promise<LeftGroups> {
  const killed: number[] = [];
  let stale = 0;
  for (const { file, record } of readRecords(dir, recordSchema)) {
    if (record && stillOurs(record)) {
      try {
        process.kill(-record.pgid, 'SIGKILL');
        killed.push(record.pgid);
      } catch {
        stale++; // gone meanwhile
      }
    } else {
      stale++;
    }
    rmSync(file, { force: true });
  }
  const deadline = Date.now() + waitMs;
  while (killed.some((pgid) => groupMembers(pgid).length > 0) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  return { ended: killed.length, stale };
}

/**
 * The records a host left in `dir` (one JSON file each, written while what it names ran), each parsed with `schema`:
 * undefined for a file half-written by a host killed mid-write. None when there is no folder. The caller removes
 * each file once it has acted on it.
 */
export function readRecords<T>(
  dir: string,
  schema: z.ZodType<T>,
): { readonly name: string; readonly file: string; readonly record: T | undefined }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.map((name) => {
    const file = join(dir, name);
    let record: T | undefined;
    try {
      record = schema.parse(JSON.parse(readFileSync(file, 'utf8')));
    } catch {
      // half-written, or not ours: nothing to act on
    }
    return { name, file, record };
  });
}
