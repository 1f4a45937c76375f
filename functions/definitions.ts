import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';
import { names } from '../src/storage/storage';
import { listDependencies, listImageUpdates, runDependencies } from './dependencies';
import { getHealth } from './health';
import { imageEventGrid } from './image-event-grid';
import { imageUpdate, registryHook, updateNotification } from './registry-hook';
import { reconcileRuns, runCompletion, runDispatch, runPoisoned } from './run-dispatch';
import { runRetention } from './run-retention';
import { azureDevOpsHook, githubHook, HOOK_MAX_BYTES } from './source-hooks';
import { armFunctions } from './arm-routes';
import {
  createTask,
  deleteTask,
  getTask,
  getTaskDetails,
  listTasks,
  listTriggerDecisions,
  updateTask,
} from './tasks';
import { timerTriggers } from './timer-triggers';
import { listWatches, watchRegistries } from './watches';
import {
  cancelRun,
  getRun,
  listBuildSourceUploadUrl,
  listLogSasUrl,
  listRuns,
  runLog,
  scheduleRun,
  updateRun,
} from './runs';

/** HTTP methods the API uses. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** An HTTP-triggered function: `route` is relative to /api, with `{name}` parameters. */
export interface HttpFunction {
  readonly kind: 'http';
  readonly name: string;
  readonly methods: readonly HttpMethod[];
  readonly route: string;
  /** `function`: needs the API key (REFIT_KEY locally, a function key in Azure); `anonymous`: checks its own auth. */
  readonly authLevel: 'anonymous' | 'function';
  /** A body limit of its own (webhooks take larger deliveries than the API). */
  readonly maxBodyBytes?: number;
  readonly handler: (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
}

/** A storage-queue-triggered function. */
export interface QueueFunction {
  readonly kind: 'queue';
  readonly name: string;
  readonly queueName: string;
  readonly handler: (message: unknown, context: InvocationContext) => Promise<void>;
}

/** An Event Grid-triggered function: called once per event (the host handles batches and handshakes). */
export interface EventGridFunction {
  readonly kind: 'eventGrid';
  readonly name: string;
  readonly handler: (event: unknown, context: InvocationContext) => Promise<void>;
}

/** A timer-triggered function on a six-field NCRONTAB schedule (UTC). */
export interface TimerFunction {
  readonly kind: 'timer';
  readonly name: string;
  readonly schedule: string;
  /**
   * The local host's schedule, when it differs: a function that only picks what is due can tick every few seconds
   * on one machine, where Azure bills and logs each invocation.
   */
  readonly localSchedule?: string;
  /** Also called once when the host starts (Azure's `runOnStartup`): for a daily job on a host that is not always up. */
  readonly runOnStartup?: boolean;
  readonly handler: (timer: Timer, context: InvocationContext) => Promise<void>;
}

/** Any function Refit defines. */
export type FunctionDefinition = HttpFunction | QueueFunction | TimerFunction | EventGridFunction;

const http = (
  name: string,
  methods: HttpMethod[],
  route: string,
  handler: HttpFunction['handler'],
  authLevel: HttpFunction['authLevel'] = 'function',
): HttpFunction => ({ kind: 'http', name, methods, route, authLevel, handler });

/** The API's short routes (`/api/runs/…`); each of ACR's operations among them also has its ARM route (arm-routes.ts). */
const api: readonly HttpFunction[] = [
  http('health', ['GET'], 'health', getHealth, 'anonymous'),
  http('listBuildSourceUploadUrl', ['POST'], 'listBuildSourceUploadUrl', listBuildSourceUploadUrl),
  http('scheduleRun', ['POST'], 'scheduleRun', scheduleRun),
  http('runsList', ['GET'], 'runs', listRuns),
  http('runsGet', ['GET'], 'runs/{runId}', getRun),
  http('runsUpdate', ['PATCH'], 'runs/{runId}', updateRun),
  http('runsCancel', ['POST'], 'runs/{runId}/cancel', cancelRun),
  http('runsGetLogSasUrl', ['POST'], 'runs/{runId}/listLogSasUrl', listLogSasUrl),
  http('runsLog', ['GET'], 'runs/{runId}/log', runLog),
  http('tasksList', ['GET'], 'tasks', listTasks),
  http('tasksCreate', ['PUT'], 'tasks/{taskName}', createTask),
  http('tasksGet', ['GET'], 'tasks/{taskName}', getTask),
  http('tasksUpdate', ['PATCH'], 'tasks/{taskName}', updateTask),
  http('tasksDelete', ['DELETE'], 'tasks/{taskName}', deleteTask),
  http('tasksGetDetails', ['POST'], 'tasks/{taskName}/listDetails', getTaskDetails),
  http('triggerDecisions', ['GET'], 'triggerDecisions', listTriggerDecisions),
  http('dependencies', ['GET'], 'dependencies', listDependencies),
  http('imageUpdates', ['GET'], 'imageUpdates', listImageUpdates),
  http('watches', ['GET'], 'watches', listWatches),
];

/** Every function of Refit: Azure registers them with `app.*` (index.ts), the local host serves them (src/local). */
export const functions: readonly FunctionDefinition[] = [
  ...api,
  ...armFunctions(api),
  http('registryHook', ['POST'], 'hooks/registry', registryHook, 'anonymous'),
  { ...http('githubHook', ['POST'], 'hooks/github', githubHook, 'anonymous'), maxBodyBytes: HOOK_MAX_BYTES },
  {
    ...http('azureDevOpsHook', ['POST'], 'hooks/azuredevops', azureDevOpsHook, 'anonymous'),
    maxBodyBytes: HOOK_MAX_BYTES,
  },
  { kind: 'queue', name: 'runDispatch', queueName: 'runs', handler: runDispatch },
  { kind: 'queue', name: 'runPoisoned', queueName: 'runs-poison', handler: runPoisoned },
  {
    kind: 'queue',
    name: 'runCompletion',
    queueName: names.queues.runCompletions,
    handler: runCompletion,
  },
  { kind: 'queue', name: 'imageUpdate', queueName: 'image-pushes', handler: imageUpdate },
  {
    kind: 'queue',
    name: 'updateNotification',
    queueName: 'update-notifications',
    handler: updateNotification,
  },
  {
    kind: 'queue',
    name: 'runDependencies',
    queueName: names.queues.runDependencies,
    handler: runDependencies,
  },
  { kind: 'eventGrid', name: 'imageEventGrid', handler: imageEventGrid },
  // Task timers are evaluated once a minute in Azure (their cron has minute granularity; each tick looks back two
  // minutes), every 5 s locally, where an occurrence should start its run at once.
  {
    kind: 'timer',
    name: 'timerTriggers',
    schedule: '0 * * * * *',
    localSchedule: '*/5 * * * * *',
    handler: timerTriggers,
  },
  // Checks only the watches that are due (each on its own random interval): once a minute in Azure, every 2 s locally.
  {
    kind: 'timer',
    name: 'watchRegistries',
    schedule: '0 * * * * *',
    localSchedule: '*/2 * * * * *',
    handler: watchRegistries,
  },
  // At 30 s past each minute, off the minute when the watcher runs.
  { kind: 'timer', name: 'reconcileRuns', schedule: '30 * * * * *', handler: reconcileRuns },
  // 03:17 UTC, off the hour when timers of every kind pile up.
  {
    kind: 'timer',
    name: 'runRetention',
    schedule: '0 17 3 * * *',
    runOnStartup: true,
    handler: runRetention,
  },
];
