import { log } from '../log';

/** Which escaped errors the guard carries the process through. */
export interface ProcessGuardOptions {
  /**
   * Also log and survive uncaught exceptions: for the local host, which nothing restarts and whose death stops every
   * build. Left false where a supervisor owns them (the Azure Functions worker logs them, exits and is restarted).
   */
  readonly uncaughtExceptions: boolean;
}

let installed = false;

function errorContext(err: unknown): Record<string, unknown> {
  return err instanceof Error
    ? { error: err.message, name: err.name, stack: err.stack }
    : { error: String(err) };
}

/**
 * Installs the process-wide last resort: a rejection (or, if asked, an exception) that escaped every handler is
 * logged and the process keeps serving, instead of exiting and taking every run under way with it. Each escape is
 * a bug to fix where it happens; this only keeps it from being an outage. Installed once per process.
 */
export function keepServing(options: ProcessGuardOptions): void {
  if (installed) return;
  installed = true;
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection; the process keeps serving', errorContext(reason));
  });
  if (options.uncaughtExceptions)
    process.on('uncaughtException', (err, origin) => {
      log.error('uncaught exception; the process keeps serving', { ...errorContext(err), origin });
    });
}
