import { app } from '@azure/functions';
import { keepServing } from '../src/process/process-guard';
import { functions } from './definitions';

// A rejection that escapes a handler is logged instead of ending the worker (and every invocation under way with
// it); uncaught exceptions stay the worker's own, which logs them and is restarted by the Functions host.
keepServing({ uncaughtExceptions: false });

// Azure Functions entry point (package.json "main"): registers the same table the local host serves.
app.setup({ enableHttpStream: true });

for (const fn of functions) {
  switch (fn.kind) {
    case 'http':
      app.http(fn.name, {
        methods: [...fn.methods],
        route: fn.route,
        authLevel: fn.authLevel,
        handler: fn.handler,
      });
      break;
    case 'queue':
      app.storageQueue(fn.name, {
        queueName: fn.queueName,
        connection: 'AzureWebJobsStorage',
        handler: fn.handler,
      });
      break;
    case 'timer':
      app.timer(fn.name, {
        schedule: fn.schedule,
        ...(fn.runOnStartup ? { runOnStartup: true } : {}),
        handler: fn.handler,
      });
      break;
    case 'eventGrid':
      app.eventGrid(fn.name, { handler: fn.handler });
      break;
  }
}
