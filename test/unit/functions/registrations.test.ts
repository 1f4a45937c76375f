import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cron } from 'croner';
import { ARM_REGISTRY_ROUTE } from '../../../functions/arm-routes';
import { functions, type HttpFunction } from '../../../functions/definitions';
import { names } from '../../../src/storage/storage';

/** What the Functions host is told for one function: its name and its bindings (the trigger is the `in` one). */
interface Registration {
  readonly name: string;
  readonly bindings: Record<string, Record<string, unknown>>;
}

// `@azure/functions` hands every registration to '@azure/functions-core', a module only the Functions host provides:
// this stand-in records them instead, so that the test sees exactly what Azure would be told.
const registered: Registration[] = [];
jest.mock(
  '@azure/functions-core',
  () => ({
    setProgrammingModel: jest.fn(),
    registerFunction: jest.fn((metadata: Registration) => {
      registered.push(metadata);
      return { dispose: () => undefined };
    }),
    registerHook: jest.fn(() => ({ dispose: () => undefined })),
    getProgrammingModel: jest.fn(),
    // Its presence says the host is 4.28 or newer, which app.setup({ enableHttpStream }) requires.
    log: jest.fn(),
  }),
  { virtual: true },
);

const ROOT = join(__dirname, '../../..');

interface TsConfig {
  readonly extends?: string;
  readonly include?: string[];
  readonly compilerOptions?: { readonly outDir?: string; readonly rootDir?: string };
}

function trigger(registration: Registration): Record<string, unknown> {
  const found = Object.values(registration.bindings).filter((b) => b.direction === 'in');
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('functions/index.ts', () => {
  beforeAll(() => {
    // Loaded after the stand-in is in place, as the host loads package.json's main.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('../../../functions/index');
  });

  it('registers every function of the table once, with its own trigger', () => {
    expect(registered.map((r) => r.name).sort()).toEqual(functions.map((f) => f.name).sort());
    for (const fn of functions) {
      const t = trigger(registered.find((r) => r.name === fn.name)!);
      switch (fn.kind) {
        case 'http':
          expect(t).toMatchObject({
            type: 'httpTrigger',
            route: fn.route,
            authLevel: fn.authLevel,
            methods: [...fn.methods],
          });
          break;
        case 'queue':
          expect(t).toMatchObject({
            type: 'queueTrigger',
            queueName: fn.queueName,
            connection: 'AzureWebJobsStorage',
          });
          break;
        case 'timer':
          expect(t).toMatchObject({ type: 'timerTrigger', schedule: fn.schedule });
          break;
        case 'eventGrid':
          expect(t).toMatchObject({ type: 'eventGridTrigger' });
          break;
      }
    }
  });

  it("gives every function a name the host accepts (a letter, then letters, digits, '_' or '-'; not 'host'), unique regardless of case", () => {
    const valid = /^[a-z][a-z0-9_-]{0,127}$/i;
    for (const { name } of registered) {
      expect(name).toMatch(valid);
      expect(name.toLowerCase()).not.toBe('host');
    }
    expect(new Set(registered.map((r) => r.name.toLowerCase())).size).toBe(registered.length);
  });

  it('serves each method and route once', () => {
    const pairs = registered
      .map(trigger)
      .filter((t) => t.type === 'httpTrigger')
      .flatMap((t) => (t.methods as string[]).map((m) => `${m} ${String(t.route).toLowerCase()}`));
    expect(new Set(pairs).size).toBe(pairs.length);
  });

  it("serves each of ACR's Tasks and Runs operations also on its ARM route, with the same methods and key", () => {
    const http = functions.filter((f): f is HttpFunction => f.kind === 'http');
    const acr = [
      'listBuildSourceUploadUrl',
      'scheduleRun',
      'runs',
      'runs/{runId}',
      'runs/{runId}/cancel',
      'runs/{runId}/listLogSasUrl',
      'tasks',
      'tasks/{taskName}',
      'tasks/{taskName}/listDetails',
    ];
    for (const route of acr) {
      const short = http.filter((f) => f.route === route);
      const arm = http.filter((f) => f.route === `${ARM_REGISTRY_ROUTE}/${route}`);
      expect(short.length).toBeGreaterThan(0);
      expect(arm.map((f) => [f.methods, f.authLevel])).toEqual(short.map((f) => [f.methods, f.authLevel]));
    }
    expect(ARM_REGISTRY_ROUTE).toBe(
      'subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}',
    );
  });

  it('listens on queues Refit sends to, each by one function', () => {
    const queues = registered
      .map(trigger)
      .filter((t) => t.type === 'queueTrigger')
      .map((t) => t.queueName);
    expect(queues.every((q) => (Object.values(names.queues) as string[]).includes(q as string))).toBe(true);
    expect(new Set(queues).size).toBe(queues.length);
    expect(queues).toEqual(expect.arrayContaining([names.queues.runs, names.queues.runCompletions]));
  });

  it('runs no timer in Azure more often than once a minute (each tick is a billed execution)', () => {
    for (const t of registered.map(trigger).filter((b) => b.type === 'timerTrigger')) {
      const [first, second] = new Cron(String(t.schedule)).nextRuns(2, new Date('2027-01-01T00:00:00Z'));
      expect(second!.getTime() - first!.getTime()).toBeGreaterThanOrEqual(60_000);
    }
  });

  it('is the compiled entry point package.json names as main', () => {
    const read = (file: string) => JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as TsConfig;
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string };
    const build = read('tsconfig.build.json');
    const base = build.extends ? read(build.extends) : {};
    const options = { ...base.compilerOptions, ...build.compilerOptions };
    expect({ rootDir: options.rootDir, include: build.include }).toEqual({
      rootDir: '.',
      include: expect.arrayContaining(['functions']),
    });
    expect(pkg.main).toBe(`${options.outDir}/functions/index.js`);
  });
});
