import type { HttpFunction } from '../../functions/definitions';

/** An HTTP function with its route compiled to a pattern. */
export interface CompiledRoute {
  readonly fn: HttpFunction;
  readonly pattern: RegExp;
  readonly params: string[];
}

/** Compiles a function's route (`runs/{runId}`) to a pattern under /api, capturing each parameter. */
export function compileRoute(fn: HttpFunction): CompiledRoute {
  const params: string[] = [];
  const source = fn.route
    .split('/')
    .map((segment) => {
      const m = /^\{(\w+)\??\}$/.exec(segment);
      if (m) {
        params.push(m[1]!);
        return '([^/]+)';
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { fn, pattern: new RegExp(`^/api/${source}/?$`, 'i'), params };
}
