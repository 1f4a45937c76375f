import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endLeftGroups, processStartTime, ProcessGroups } from '../../../src/process/process-groups';
import { runProcess } from '../../../src/process/run-process';

/** Starts `sh -c script` in a process group of its own, as a host that then dies would have left it. */
function detachedShell(script: string): number {
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid!;
}

/** True while any process of the group runs (zombies excluded). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .some((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return state !== 'Z' && Number(pgrp) === pgid;
      } catch {
        return false;
      }
    });
}

describe('process-groups', () => {
  let dir: string;
  const started: number[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'refit-groups-'));
  });
  afterEach(() => {
    for (const pgid of started.splice(0)) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  describe('ProcessGroups.run', () => {
    it('records the group of every process runProcess starts inside it while it runs, and forgets it after', async () => {
      const groups = new ProcessGroups(dir);
      let recorded: string[] = [];
      const result = await groups.run(() =>
        runProcess('sh', ['-c', 'echo $$; sleep 0.3'], {
          onOutput: () => (recorded = readdirSync(dir)),
        }),
      );
      expect(result.code).toBe(0);
      expect(recorded).toHaveLength(1);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('records nothing for processes started outside it', async () => {
      new ProcessGroups(dir);
      await runProcess('true', []);
      expect(readdirSync(dir)).toEqual([]);
    });
  });

  describe('endLeftGroups', () => {
    it('kills a recorded group a dead host left running, children included, and removes the record', async () => {
      const pgid = detachedShell('sleep 300 & sleep 300; wait');
      started.push(pgid);
      new ProcessGroups(dir).add(pgid, 'sh');

      const result = await endLeftGroups(dir);

      expect(result).toEqual({ ended: 1, stale: 0 });
      expect(groupAlive(pgid)).toBe(false);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('leaves alone a process whose pid is recorded but which started at another time (a reused pid)', async () => {
      const pgid = detachedShell('sleep 300');
      started.push(pgid);
      writeFileSync(
        join(dir, String(pgid)),
        JSON.stringify({ pgid, startTime: String(Number(processStartTime(pgid)) - 1), command: 'sh' }),
      );

      expect(await endLeftGroups(dir)).toEqual({ ended: 0, stale: 1 });
      expect(groupAlive(pgid)).toBe(true);
    });

    it('leaves alone a recorded group whose leader now runs another command', async () => {
      const pgid = detachedShell('sleep 300');
      started.push(pgid);
      new ProcessGroups(dir).add(pgid, 'buildah');

      expect(await endLeftGroups(dir)).toEqual({ ended: 0, stale: 1 });
      expect(groupAlive(pgid)).toBe(true);
    });

    it('ignores a record a host killed mid-write left half-written', async () => {
      writeFileSync(join(dir, '12345'), '{"pgid": 123');
      expect(await endLeftGroups(dir)).toEqual({ ended: 0, stale: 1 });
      expect(readdirSync(dir)).toEqual([]);
    });
  });
});
