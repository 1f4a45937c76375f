import type { InvocationContext } from '@azure/functions';
import { ValidationError } from '../src/errors';
import { parseImageReference } from '../src/registry/image-reference';
import { refit, type Refit } from '../src/refit';
import { api, json } from './http';

function imageKey(r: Refit, raw: string | null): string {
  if (!raw) throw new ValidationError('image is required, e.g. ?image=node:20', 'image');
  return r.dependencyIndex.key(parseImageReference(raw, { field: 'image' }));
}

/** GET /dependencies?image=REF: the tasks built from REF, with the type and the digest each last built from. */
export const listDependencies = api(async (request, r) => {
  const image = imageKey(r, request.query.get('image'));
  return json(200, { image, value: await r.dependencyIndex.dependents(image) });
});

/** GET /imageUpdates?image=REF: each observed update of REF and, per dependent task, triggered or skipped and why. */
export const listImageUpdates = api(async (request, r) => {
  const image = imageKey(r, request.query.get('image'));
  return json(200, { image, value: await r.imageUpdates.list(image, 50) });
});

/** The run-dependencies queue trigger: records what a task's successful run was built from (idempotent). */
export async function runDependencies(message: unknown, _context: InvocationContext): Promise<void> {
  const r = await refit();
  let payload: unknown = message;
  try {
    if (typeof message === 'string') payload = JSON.parse(message) as unknown;
  } catch {
    // not JSON: the core drops it with a warning (a retry would not mend it)
  }
  await r.runs.recordDependencies(payload);
}
