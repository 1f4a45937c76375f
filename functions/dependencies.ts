import { ValidationError } from '../src/errors';
import { parseImageReference } from '../src/registry/image-reference';
import type { Refit } from '../src/refit';
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
