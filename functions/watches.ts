import type { InvocationContext, Timer } from '@azure/functions';
import { refit } from '../src/refit';
import { listWatches as watchList } from '../src/watches/watch-list';
import { api, json } from './http';

/** The watcher's timer: checks the watched references that are due (each at most once, however cycles overlap). */
export async function watchRegistries(_timer: Timer, _context: InvocationContext): Promise<void> {
  const r = await refit();
  await r.watcher.cycle();
}

/** GET /watches: each watched reference, its digests, next check and health, and its registry's budget and backoff. */
export const listWatches = api(async (_request, r) => json(200, { value: await watchList(r) }));
