import type { Command } from 'commander';
import { outputOption, print } from './args';
import type { RefitClient } from './client';
import { table, tsv } from './format';

/** A watch as GET /watches returns it (the fields the table shows). */
interface WatchResource {
  readonly image: string;
  readonly dependents: number;
  readonly indexDigest: string | null;
  readonly pendingDigest: string | null;
  readonly nextCheck: string;
  readonly health: {
    readonly lastSuccess: string | null;
    readonly lastError: string | null;
    readonly consecutiveFailures: number;
  };
  readonly registry: {
    readonly budget: { readonly limit: number; readonly remaining: number } | null;
    readonly pausedUntil: string | null;
  };
}

const WATCH_COLUMNS = ['IMAGE', 'DEPENDENTS', 'DIGEST', 'NEXT CHECK', 'HEALTH', 'BUDGET'];

function time(iso: string | null): string {
  return iso ? `${iso.slice(0, 19)}Z` : '';
}

/** The HEALTH column: OK, the pause of its registry, a settling digest, or the last error and how many in a row. */
function health(w: WatchResource): string {
  if (w.registry.pausedUntil) return `paused until ${time(w.registry.pausedUntil)}`;
  if (w.health.lastError) return `failing (${w.health.consecutiveFailures}): ${w.health.lastError}`;
  if (w.pendingDigest) return `settling ${w.pendingDigest.slice(0, 19)}`;
  return w.health.lastSuccess ? 'OK' : 'not checked yet';
}

function watchRow(w: WatchResource): string[] {
  const budget = w.registry.budget;
  return [
    w.image,
    String(w.dependents),
    // sha256: and 12 hex digits, as docker shortens image IDs.
    w.indexDigest ? w.indexDigest.slice(0, 19) : '',
    time(w.nextCheck),
    health(w),
    budget ? `${budget.remaining}/${budget.limit}` : 'unlimited',
  ];
}

/** `refit watch list`: the references watched on registries that send no events. */
export function addWatchCommand(cli: Command, client: RefitClient): void {
  const watch = cli
    .command('watch')
    .description('Base images watched on registries that send Refit no events (polled for new digests).');
  watch
    .command('list')
    .description(
      'List the watched references: dependents, last digest, next check, health and the registry budget.',
    )
    .addOption(outputOption())
    .action(async (opts: { output: 'json' | 'table' | 'tsv' }) => {
      const { value } = await client.json<{ value: WatchResource[] }>('GET', '/watches');
      if (opts.output === 'table') process.stdout.write(table(WATCH_COLUMNS, value.map(watchRow)) + '\n');
      else if (opts.output === 'tsv')
        process.stdout.write(tsv(value.map(watchRow)) + (value.length ? '\n' : ''));
      else print(value);
    });
}
