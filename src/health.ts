import type { Refit } from './refit';
import { speaksPlainHttp } from './registry/image-reference';
import { names } from './storage/storage';
import { log } from './log';

/** One part's state in GET /health: a fixed word, never an error's text (the endpoint is anonymous). */
export interface PartHealth {
  readonly status: 'ok' | 'down';
}

// Why a part is down goes to the log: an SDK's message can name accounts, hosts and paths.
async function check(part: string, probe: () => Promise<void>): Promise<PartHealth> {
  try {
    await probe();
    return { status: 'ok' };
  } catch (err) {
    log.warn('health check failed', { part, error: (err as Error)?.message ?? String(err) });
    return { status: 'down' };
  }
}

/** Checks every part Refit stands on: tables, queues, blobs, the home registry and the executor (it says how). */
export async function health(
  r: Refit,
): Promise<{ status: 'ok' | 'degraded'; parts: Record<string, PartHealth> }> {
  const registryUrl = `${speaksPlainHttp(r.config.homeRegistry, r.config.insecureRegistries) ? 'http' : 'https'}://${r.config.homeRegistry}/v2/`;
  const probes: Record<string, () => Promise<void>> = {
    tables: async () => {
      await r.storage
        .table(names.tables.runs)
        .listEntities({ queryOptions: { filter: "PartitionKey eq 'health'" } })
        .byPage()
        .next();
    },
    queues: async () => {
      await r.storage.queue(names.queues.runs).getProperties();
    },
    blobs: async () => {
      await r.storage.container(names.containers.logs).getProperties();
    },
    registry: async () => {
      const res = await fetch(registryUrl, { signal: AbortSignal.timeout(3000) });
      if (res.status !== 200 && res.status !== 401) throw new Error(`${registryUrl} answered ${res.status}`);
    },
    executor: () => r.executor.probe(),
  };
  const checked = await Promise.all(
    Object.entries(probes).map(async ([part, probe]) => [part, await check(part, probe)] as const),
  );
  const parts: Record<string, PartHealth> = Object.fromEntries(checked);
  const status = Object.values(parts).every((p) => p.status === 'ok') ? 'ok' : 'degraded';
  return { status, parts };
}
