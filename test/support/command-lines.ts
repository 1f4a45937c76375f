// What any local user sees of a run's processes: their command lines, read from /proc while the run lasts.
import { readdirSync, readFileSync } from 'node:fs';
import { call } from './api';

/** Every process's command line on this machine, as any local user can read it. */
export function commandLines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      lines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '));
    } catch {
      // the process has exited
    }
  }
  return lines;
}

/**
 * Reads every command line on the machine, again and again, until the run finishes: which of `markers` were seen
 * (so the scan is known to have covered those processes) and whether `secret` was on any.
 */
export async function watchCommandLines(
  runId: string,
  secret: string,
  markers: Record<string, (line: string) => boolean>,
): Promise<{ seen: string[]; leaked: string[]; run: any }> {
  const seen = new Set<string>();
  const leaked: string[] = [];
  let run: any;
  let nextStatusCheck = 0;
  for (;;) {
    for (const line of commandLines()) {
      if (line.includes(secret)) leaked.push(line.replace(secret, '<the secret>'));
      for (const [name, matches] of Object.entries(markers)) if (matches(line)) seen.add(name);
    }
    if (Date.now() >= nextStatusCheck) {
      const properties = (await call('GET', `/runs/${runId}`)).body.properties;
      if (['Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout'].includes(properties.status)) {
        run = properties;
        break;
      }
      nextStatusCheck = Date.now() + 200;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { seen: [...seen].sort(), leaked, run };
}
