import type { HttpFunction } from '../../functions/definitions';

/** An HTTP function with its route compiled to a pattern. */
export interface CompiledRoute {
  readonly fn: HttpFunction;
  readonly pattern: RegExp;
  readonly params: string[];
}

/**
 * Compiles a function's route (`runs/{runId}`) to a pattern under /api, capturing each parameter. A last segment
 * `{*rest}` is a catch-all, as in Azure's route templates: it matches the rest of the path, or nothing.
 */
export function compileRoute(fn: HttpFunction): CompiledRoute {
  const params: string[] = [];
  const segments = fn.route.split('/');
  const catchAll = /^\{\*(\w+)\}$/.exec(segments[segments.length - 1] ?? '');
  if (catchAll) segments.pop();
  const source = segments
    .map((segment) => {
      const m = /^\{(\w+)\??\}$/.exec(segment);
      if (m) {
        params.push(m[1]!);
        return '([^/]+)';
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  if (catchAll) params.push(catchAll[1]!);
  return {
    fn,
    pattern: new RegExp(`^/api/${source}${catchAll ? '(?:/(.*?))?' : ''}/?$`, 'i'),
    params,
  };
}
