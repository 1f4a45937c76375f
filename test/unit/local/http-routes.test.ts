import type { HttpFunction } from '../../../functions/definitions';
import { compileRoute } from '../../../src/local/http-routes';

const route = (path: string): HttpFunction => ({
  kind: 'http',
  name: 'f',
  methods: ['GET'],
  route: path,
  authLevel: 'function',
  handler: () => Promise.resolve({ status: 200 }),
});

describe('http-routes', () => {
  describe('compileRoute', () => {
    it('captures each parameter of a route, one path segment each', () => {
      const { pattern, params } = compileRoute(route('runs/{runId}/cancel'));
      expect(params).toEqual(['runId']);
      expect(pattern.exec('/api/runs/aa1/cancel')?.slice(1)).toEqual(['aa1']);
      expect(pattern.test('/api/runs/aa1/x/cancel')).toBe(false);
    });

    it.each([
      ['/api/pools', ''],
      ['/api/pools/', ''],
      ['/api/pools/p1', 'p1'],
      ['/api/pools/p1/listQueueStatus', 'p1/listQueueStatus'],
    ])('matches %s with a catch-all {*rest}, as Azure does', (path, rest) => {
      const { pattern, params } = compileRoute(route('pools/{*rest}'));
      expect(params).toEqual(['rest']);
      expect(pattern.exec(path)?.[1] ?? '').toBe(rest);
    });

    it('does not let a catch-all match a longer literal', () => {
      expect(compileRoute(route('pools/{*rest}')).pattern.test('/api/poolsx/p1')).toBe(false);
    });
  });
});
