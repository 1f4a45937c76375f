import { keepServing } from '../process/process-guard';
import { LocalStack, stackOptionsFromEnv } from './stack';

/** `npm start`: brings the local stack up and keeps it up until Ctrl-C or SIGTERM. */
async function main(): Promise<void> {
  // An error that escapes a handler is logged; it never stops the builds under way.
  keepServing({ uncaughtExceptions: true });
  const options = stackOptionsFromEnv();
  const stack = new LocalStack(options);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping Refit...`);
    void stack.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  try {
    await stack.start();
  } catch (err) {
    console.error(`Refit could not start: ${(err as Error).message}`);
    process.exit(1);
  }
  console.log(
    [
      '',
      `Refit is running at ${stack.url} (data in ${options.dataDir}).`,
      `  API:       ${stack.url}/api   health: ${stack.url}/api/health`,
      `  registry:  ${stack.registry}  (also localhost:${options.registryPort})`,
      '  try:       npx refit build -t hello:{{.Run.ID}} examples/hello',
      '             npx refit task list-runs -o table',
      'Press Ctrl-C to stop.',
    ].join('\n'),
  );
}

void main();
