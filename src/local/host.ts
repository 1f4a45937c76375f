// The local stand-in for the Azure Functions host: it serves the same function table Azure registers.
// It and its parts (http-server, event-grid-endpoint, queue-poller, timer-scheduler) are the one place outside
// functions/ that touches @azure/functions, because they play the host's part.
import { createServer, type Server } from 'node:http';
import type { Cron } from 'croner';
import type { FunctionDefinition } from '../../functions/definitions';
import type { HostContext, LocalHostOptions } from './host-context';
import { httpRequestListener } from './http-server';
import { pollQueue, type QueuePoller } from './queue-poller';
import { scheduleTimer } from './timer-scheduler';

export type { LocalHostOptions } from './host-context';

/** Serves HTTP functions on a port, polls queue functions and fires timer functions. */
export class LocalHost {
  private server: Server | undefined;
  private readonly pollers: QueuePoller[] = [];
  private readonly crons: Cron[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly context: HostContext;

  constructor(
    private readonly definitions: readonly FunctionDefinition[],
    options: LocalHostOptions,
  ) {
    this.context = {
      options,
      track: (promise) => this.track(promise),
      wake: () => this.wake(),
    };
  }

  /** Starts serving; resolves once the port is bound. */
  async start(): Promise<void> {
    const listener = httpRequestListener(this.definitions, this.context);
    const { host, port } = this.context.options;
    this.server = createServer((req, res) => void listener(req, res));
    // Well past clients' idle timeouts (undici's is the server's hint less a second): a client whose event loop
    // was busy for a few seconds must not send its next request on a connection the host is closing just then.
    this.server.keepAliveTimeout = 30000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    for (const fn of this.definitions) {
      if (fn.kind === 'queue') this.pollers.push(pollQueue(fn, this.context));
      if (fn.kind === 'timer') this.crons.push(scheduleTimer(fn, this.context));
    }
  }

  /** Polls every queue at once (called after a message is sent, so dispatch does not wait for the back-off). */
  wake(): void {
    for (const poller of this.pollers) poller.wake();
  }

  /** Stops accepting work and waits for the handlers under way. */
  async stop(): Promise<void> {
    for (const poller of this.pollers) poller.stop();
    for (const cron of this.crons) cron.stop();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await Promise.allSettled([...this.inFlight]);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise)).catch(() => undefined);
    return promise;
  }
}
