import { CliError } from './client';

/** The parts of a task resource (Tasks_Get) the task commands read. */
export interface TaskResource {
  name: string;
  properties: {
    status: string;
    platform?: { os?: string; architecture?: string };
    step: {
      type?: string;
      contextPath?: string;
      arguments?: { name: string; value?: string; isSecret?: boolean }[];
    };
    trigger?: {
      sourceTriggers?: {
        name: string;
        status?: string;
        sourceRepository: { repositoryUrl: string };
        sourceTriggerEvents?: string[];
      }[];
      timerTriggers?: { name: string; schedule: string; status?: string }[];
      baseImageTrigger?: {
        name?: string;
        status?: string;
        baseImageTriggerType?: string;
        updateTriggerEndpoint?: string;
        updateTriggerPayloadType?: string;
      };
    };
  };
  [key: string]: unknown;
}

/** The API path of a task. */
export function taskPath(name: string): string {
  return `/tasks/${encodeURIComponent(name)}`;
}

/** A `true`/`false` flag value, as az takes them. */
export function bool(value: string, flag: string): boolean {
  const v = value.toLowerCase();
  if (v !== 'true' && v !== 'false') throw new CliError(`${flag} must be true or false, got '${value}'`);
  return v === 'true';
}
