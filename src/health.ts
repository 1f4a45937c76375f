import type { Refit } from './refit';
import { runProcess } from './process/run-process';
import { names } from './storage/storage';

/** One part's state in GET /health. */
export interface PartHealth {
  readonly status: 'ok' | 'down';
  readonly detail?: string;
}

async function check(probe: () => Promise<string | undefined>): Promise<PartHealth> {
  try {
    const detail = await probe();
    return { status: 'ok', ...(detail ? { detail } : {}) };
  } catch (err) {
    return { status: 'down', detail: (err as Error).message };
  }
}

/** Checks every part Refit stands on: tables, queues, blobs, the home registry and the executor's tool. */
export async function health(
  r: Refit,
): Promise<{ status: 'ok' | 'degraded'; parts: Record<string, PartHealth> }> {
  const registryUrl = `${r.config.insecureRegistries.includes(r.config.homeRegistry) ? 'http' : 'https'}://${r.config.homeRegistry}/v2/`;
  const parts: Record<string, PartHealth> = {
    tables: await check(async () => {
      await r.storage
        .table(names.tables.runs)
        .listEntities({ queryOptions: { filter: "PartitionKey eq 'health'" } })
        .byPage()
        .next();
      return undefined;
    }),
    queues: await check(async () => {
      const props = await r.storage.queue(names.queues.runs).getProperties();
      return `${props.approximateMessagesCount ?? 0} run(s) waiting for dispatch`;
    }),
    blobs: await check(async () => {
      await r.storage.container(names.containers.logs).getProperties();
      return undefined;
    }),
    registry: await check(async () => {
      const res = await fetch(registryUrl, { signal: AbortSignal.timeout(3000) });
      if (res.status !== 200 && res.status !== 401) throw new Error(`${registryUrl} answered ${res.status}`);
      return r.config.homeRegistry;
    }),
    executor: await check(async () => {
      let out = '';
      const result = await runProcess('buildah', ['--version'], { onOutput: (c) => (out += c) });
      if (result.code !== 0) throw new Error('buildah --version failed');
      return `local: ${out.trim()}`;
    }),
  };
  const status = Object.values(parts).every((p) => p.status === 'ok') ? 'ok' : 'degraded';
  return { status, parts };
}
