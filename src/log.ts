/** Structured logs: a fixed message and a context object, one JSON line each, on stderr. */
type Level = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const threshold = ORDER[(process.env.REFIT_LOG_LEVEL ?? 'info') as Level] ?? ORDER.info;

function write(level: Level, message: string, context: Record<string, unknown>): void {
  if (ORDER[level] < threshold) return;
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, message, ...context }) + '\n');
}

/** The logger of the core. Never log secrets: pass names, not values. */
export const log = {
  debug: (message: string, context: Record<string, unknown> = {}): void => write('debug', message, context),
  info: (message: string, context: Record<string, unknown> = {}): void => write('info', message, context),
  warn: (message: string, context: Record<string, unknown> = {}): void => write('warn', message, context),
  error: (message: string, context: Record<string, unknown> = {}): void => write('error', message, context),
};
