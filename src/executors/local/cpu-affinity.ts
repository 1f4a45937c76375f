import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** `0-3,8,10-11` (the kernel's CPU list format) → `[0, 1, 2, 3, 8, 10, 11]`. */
export function parseCpuList(text: string): number[] {
  const list: number[] = [];
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) continue;
    for (let cpu = Number(m[1]); cpu <= Number(m[2] ?? m[1]); cpu++) list.push(cpu);
  }
  return list;
}

/** The CPUs this process may run on (its `Cpus_allowed_list`), or every CPU the system lists where that is unknown. */
export function allowedCpus(): number[] {
  try {
    const listed = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    const list = listed ? parseCpuList(listed) : [];
    if (list.length > 0) return list;
  } catch {
    // No procfs: every CPU.
  }
  return cpus().map((_, i) => i);
}

/**
 * The CPUs a run's build is held to: `count` of `allowed`, starting where `seed` (the run ID) points so that
 * concurrent runs spread over the machine; undefined when `count` covers them all (nothing to hold).
 */
export function cpuSet(
  count: number,
  seed: string,
  allowed: readonly number[] = allowedCpus(),
): number[] | undefined {
  if (count >= allowed.length) return undefined;
  const start = createHash('sha256').update(seed).digest().readUInt32BE(0) % allowed.length;
  return Array.from({ length: count }, (_, i) => allowed[(start + i) % allowed.length]!).sort(
    (a, b) => a - b,
  );
}

/**
 * `command args` held to the CPUs of `set` with taskset: buildah's chroot isolation applies no cgroup limits
 * (`--cpu-quota`, `--cpuset-cpus` and the like are accepted and ignored), but a CPU affinity is inherited by every
 * process buildah starts, RUN steps included. Without a set, the command as it is.
 */
export function onCpus(
  set: readonly number[] | undefined,
  command: string,
  args: readonly string[],
): { command: string; args: string[] } {
  return set
    ? { command: 'taskset', args: ['--cpu-list', set.join(','), command, ...args] }
    : { command, args: [...args] };
}
