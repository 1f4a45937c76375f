import { z } from 'zod';
import { parseWith } from '../http/validate';
import type { Task, TaskStep } from './task';
import { taskStepSchema, triggerSchema, type TaskCreateBody, type TaskUpdateBody } from './task-schema';

type CreateStep = TaskCreateBody['properties']['step'];
type UpdateStep = NonNullable<TaskUpdateBody['properties']['step']>;
type UpdateTrigger = NonNullable<TaskUpdateBody['properties']['trigger']>;
type CreateTrigger = TaskCreateBody['properties']['trigger'];

/** Merges `changes` into `base` by name: a change replaces the entry of its name, a new name is appended. */
export function mergeByName<T extends { name: string }>(
  base: readonly T[],
  changes: readonly T[] | undefined,
): T[] {
  const out = [...base];
  for (const change of changes ?? []) {
    const i = out.findIndex((x) => x.name === change.name);
    if (i >= 0) out[i] = change;
    else out.push(change);
  }
  return out;
}

/**
 * A Tasks_Update's step merged into the task's: properties given replace, arguments and values merge by name. A new
 * type starts from the given properties alone (and is checked as a whole, so a missing one is a 400).
 */
export function mergeStep(current: TaskStep, patch: UpdateStep | undefined): CreateStep {
  const type = patch?.type ?? current.type;
  const same = type === current.type;
  const given = <K extends keyof UpdateStep>(k: K): UpdateStep[K] | undefined => patch?.[k];
  const merged: Record<string, unknown> = { type };
  const contextPath = given('contextPath') ?? (same ? current.contextPath : undefined);
  if (contextPath !== undefined) merged.contextPath = contextPath;
  if (patch?.contextAccessToken) merged.contextAccessToken = patch.contextAccessToken;
  if (type === 'Docker') {
    const cur = same && current.type === 'Docker' ? current : undefined;
    merged.imageNames = [...(given('imageNames') ?? cur?.imageNames ?? [])];
    merged.isPushEnabled = given('isPushEnabled') ?? cur?.isPushEnabled ?? true;
    merged.noCache = given('noCache') ?? cur?.noCache ?? false;
    merged.dockerFilePath = given('dockerFilePath') ?? cur?.dockerFilePath ?? 'Dockerfile';
    const target = given('target') ?? cur?.target;
    if (target) merged.target = target;
    merged.arguments = mergeByName(
      (cur?.arguments ?? []).map((a) => ({ ...a })),
      given('arguments'),
    );
  } else {
    const cur = same && current.type !== 'Docker' ? current : undefined;
    for (const k of [
      'taskFilePath',
      'valuesFilePath',
      'encodedTaskContent',
      'encodedValuesContent',
    ] as const) {
      const v = given(k) ?? cur?.[k];
      if (v !== undefined) merged[k] = v;
    }
    merged.values = mergeByName(
      (cur?.values ?? []).map((v) => ({ ...v })),
      given('values'),
    );
  }
  return parseWith(taskStepSchema, merged, 'properties.step');
}

const mergedTriggerSchema = z.object({ properties: z.object({ trigger: triggerSchema }) });

/** Merges `patch` into `base` by name, field by field: a given field replaces, the others are kept. */
function mergeFieldsByName<T extends { name: string }>(
  base: readonly Record<string, unknown>[],
  changes: readonly T[] | undefined,
  merge: (stored: Record<string, unknown>, change: T) => Record<string, unknown>,
): Record<string, unknown>[] {
  const out = base.map((x) => ({ ...x }));
  for (const change of changes ?? []) {
    const i = out.findIndex((x) => x.name === change.name);
    if (i >= 0) out[i] = merge(out[i]!, change);
    else out.push(merge({}, change));
  }
  return out;
}

/**
 * A Tasks_Update's triggers merged into the task's (ARM's merge of TriggerUpdateParameters): a trigger is matched by
 * name and each field given replaces the stored one, a source trigger's repository field by field too (so a patch
 * giving only `sourceControlAuthProperties` keeps the URL and branch); the base-image trigger merges the same way.
 * The result is checked whole, so a new trigger missing what it needs is a 400 naming the field.
 */
export function mergeTriggers(current: Task['trigger'], patch: UpdateTrigger | undefined): CreateTrigger {
  const sourceTriggers = mergeFieldsByName(
    current.sourceTriggers.map((t) => ({
      ...t,
      sourceRepository: { ...t.sourceRepository },
      sourceTriggerEvents: [...t.sourceTriggerEvents],
    })),
    patch?.sourceTriggers,
    (stored, change) => ({
      ...stored,
      ...change,
      sourceRepository: {
        ...(stored.sourceRepository as Record<string, unknown> | undefined),
        ...change.sourceRepository,
      },
    }),
  );
  const timers = mergeFieldsByName(
    current.timerTriggers.map((t) => ({ ...t })),
    patch?.timerTriggers,
    (stored, change) => ({ ...stored, ...change }),
  );
  const base =
    current.baseImageTrigger || patch?.baseImageTrigger
      ? { ...current.baseImageTrigger, ...patch?.baseImageTrigger }
      : undefined;
  const merged = { sourceTriggers, timerTriggers: timers, ...(base ? { baseImageTrigger: base } : {}) };
  // Parsed where it sits in the task, so that a problem names its full path.
  return parseWith(mergedTriggerSchema, { properties: { trigger: merged } }, 'the task update').properties
    .trigger;
}
