/** A run as the API returns it (the fields the CLI shows). */
export interface RunResource {
  readonly name: string;
  readonly properties: {
    readonly runId: string;
    readonly status: string;
    readonly task?: string;
    readonly platform?: { readonly os?: string };
    readonly startTime?: string;
    readonly finishTime?: string;
    readonly createTime?: string;
    readonly runErrorMessage?: string;
    readonly sourceTrigger?: { readonly eventType?: string };
    readonly timerTrigger?: unknown;
    readonly imageUpdateTrigger?: unknown;
  };
}

/** The TRIGGER column, checked in az's order: source trigger, timer, image update, else Manual. */
export function triggerOf(run: RunResource): string {
  const p = run.properties;
  const event = p.sourceTrigger?.eventType?.toLowerCase();
  if (event) return event === 'pullrequest' ? 'Pull Request' : 'Commit';
  if (p.timerTrigger) return 'Timer';
  if (p.imageUpdateTrigger) return 'Image Update';
  return 'Manual';
}

function started(iso: string | undefined): string {
  return iso ? `${iso.slice(0, 19)}Z` : '';
}

function duration(start: string | undefined, finish: string | undefined): string {
  if (!start || !finish) return '';
  const seconds = Math.max(0, Math.round((Date.parse(finish) - Date.parse(start)) / 1000));
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor((seconds % 3600) / 60))}:${pad(seconds % 60)}`;
}

/** The seed's columns: RUN ID, TASK, PLATFORM, STATUS, TRIGGER, STARTED, DURATION. */
export function runRow(run: RunResource): string[] {
  const p = run.properties;
  return [
    p.runId,
    p.task ?? '',
    p.platform?.os?.toLowerCase() ?? '',
    p.status,
    triggerOf(run),
    started(p.startTime),
    duration(p.startTime, p.finishTime),
  ];
}

export const RUN_COLUMNS = ['RUN ID', 'TASK', 'PLATFORM', 'STATUS', 'TRIGGER', 'STARTED', 'DURATION'];

/** An az-style table: a header, a line of dashes, left-aligned columns two spaces apart. */
export function table(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** az's tsv: the row's values, tab-separated, no header. */
export function tsv(rows: readonly (readonly string[])[]): string {
  return rows.map((r) => r.join('\t')).join('\n');
}
