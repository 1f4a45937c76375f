import type { ContainerGroup } from '@azure/arm-containerinstance';
import { AcbError } from '../../acb/errors';
import type { RunTask } from '../../acb/load-task';
import type { AttemptEnd } from '../../acb/step-graph';
import type { AcbStep } from '../../acb/task-file';
import type { GroupEntry } from './graph-record';

/** How long after its create a group may be missing before its attempt counts as lost. */
const CREATE_GRACE_MS = 5 * 60 * 1000;
/** How long after its group ended a step's report may still be on its way. */
export const REPORT_GRACE_MS = 5 * 60 * 1000;

/**
 * How an attempt ended that the sweep finds without its report: its group failed to provision, vanished, ended more
 * than the report's grace ago, or its step ran past its timeout (then its group is deleted). Undefined: under way.
 */
export function groupEnd(
  group: ContainerGroup | undefined,
  e: GroupEntry,
  step: AcbStep | undefined,
  now: number,
): AttemptEnd | undefined {
  if (!group)
    return now - e.created > CREATE_GRACE_MS
      ? {
          code: null,
          output: '',
          crash: "the step's container group is gone: it was never created, or deleted outside Refit",
        }
      : undefined;
  if (group.provisioningState === 'Failed') {
    const message = group.instanceView?.events?.at(-1)?.message;
    return {
      code: null,
      output: '',
      crash: `the step's container group could not be provisioned: ${message ?? 'ACI gave no reason'}`,
    };
  }
  const main = group.containers.find((c) => c.name !== 'report')?.instanceView?.currentState;
  // From the container's start, or from the create while its image is still being pulled (a pull that never ends).
  const began = Date.parse(main?.startTime?.toString() ?? '') || e.created;
  if (step && now - began > step.timeout * 1000 && main?.state !== 'Terminated')
    return { code: null, output: '', timedOut: true };
  const mainEnded = main?.state === 'Terminated' ? Date.parse(main.finishTime?.toString() ?? '') || 0 : 0;
  if (mainEnded && now - mainEnded > REPORT_GRACE_MS)
    return {
      code: null,
      output: '',
      crash: `the step's container ended (exit code ${main?.exitCode ?? 'unknown'}) without its report arriving`,
    };
  const ended = Math.max(
    0,
    ...group.containers.map(
      (c) => Date.parse(c.instanceView?.currentState?.finishTime?.toString() ?? '') || 0,
    ),
  );
  const state = group.instanceView?.state;
  if (
    (state === 'Succeeded' || state === 'Failed' || state === 'Stopped') &&
    ended &&
    now - ended > REPORT_GRACE_MS
  )
    return {
      code: null,
      output: '',
      crash: `the step's container group ended (${state}) without its report arriving`,
    };
  return undefined;
}

/** What a task asks for that container groups cannot give: refused before any group is made. */
export function refuseUnsupported(task: RunTask): void {
  const detached = task.steps.find((s) => s.detach);
  if (detached)
    throw new AcbError(
      `step ${detached.id}: detach is not supported in Azure Container Instances: each step runs in a container group of its own, which later steps cannot reach`,
    );
}

/** What a task asks for that ACI does not give, said once per step (as the local executor says its own). */
export function aciNotes(task: RunTask): string[] {
  const notes: string[] = [];
  for (const step of task.steps) {
    const at = `step ${step.id}`;
    if (step.privileged) notes.push(`${at}: privileged has no effect in Azure Container Instances`);
    if (step.user)
      notes.push(
        `${at}: user '${step.user}' has no effect in Azure Container Instances (the image's user runs)`,
      );
    if (step.network || step.ports.length || step.expose.length)
      notes.push(
        `${at}: networks, ports and expose have no effect: each step is a container group of its own`,
      );
    if (step.keep) notes.push(`${at}: keep has no effect: a step's container group is deleted when it ends`);
  }
  return notes;
}
