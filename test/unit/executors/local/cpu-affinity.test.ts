import { cpuSet, onCpus, parseCpuList } from '../../../../src/executors/local/cpu-affinity';

describe('cpu-affinity', () => {
  describe('parseCpuList', () => {
    it('reads the kernel list format: ranges and single CPUs', () => {
      expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
      expect(parseCpuList('5')).toEqual([5]);
    });
  });

  describe('cpuSet', () => {
    it('gives N of the allowed CPUs, in a row from where the seed points', () => {
      const allowed = [0, 1, 2, 3, 8, 9];
      for (const seed of ['a1', 'a2', 'a3', 'cb7']) {
        const set = cpuSet(2, seed, allowed)!;
        expect(set).toHaveLength(2);
        expect(set.every((cpu) => allowed.includes(cpu))).toBe(true);
        expect(cpuSet(2, seed, allowed)).toEqual(set);
      }
    });

    it('spreads runs over the machine: different run IDs start at different CPUs', () => {
      const firsts = new Set(Array.from({ length: 40 }, (_, i) => cpuSet(1, `run${i}`, [0, 1, 2, 3])![0]));
      expect(firsts).toEqual(new Set([0, 1, 2, 3]));
    });

    it('holds nothing when N covers every allowed CPU', () => {
      expect(cpuSet(2, 'a1', [0, 1])).toBeUndefined();
      expect(cpuSet(64, 'a1', [0, 1])).toBeUndefined();
    });
  });

  describe('onCpus', () => {
    it('runs the command through taskset with the set, or as it is without one', () => {
      expect(onCpus([1, 3], 'buildah', ['bud', '.'])).toEqual({
        command: 'taskset',
        args: ['--cpu-list', '1,3', 'buildah', 'bud', '.'],
      });
      expect(onCpus(undefined, 'buildah', ['bud', '.'])).toEqual({ command: 'buildah', args: ['bud', '.'] });
    });
  });
});
