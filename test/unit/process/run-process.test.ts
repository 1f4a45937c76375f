import { runProcess } from '../../../src/process/run-process';

describe('run-process', () => {
  describe('runProcess', () => {
    it("gives a child the allow-listed environment by default, none of Refit's settings", async () => {
      process.env.REFIT_SECRET_KEY = 'master-key-of-the-test';
      try {
        let out = '';
        const result = await runProcess('sh', ['-c', 'env'], { onOutput: (c) => (out += c) });
        expect(result.code).toBe(0);
        expect(out).toMatch(/^PATH=/m);
        expect(out).not.toContain('master-key-of-the-test');
        expect(out).not.toMatch(/^REFIT_/m);
      } finally {
        delete process.env.REFIT_SECRET_KEY;
      }
    });
  });
});
