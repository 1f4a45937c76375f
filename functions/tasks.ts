import { ValidationError } from '../src/errors';
import { api, json, topParam, param, readJson } from './http';

/** PUT /tasks/{taskName} (Tasks_Create): 201 created, 200 replaced. */
export const createTask = api(async (request, r) => {
  const { resource, created } = await r.tasks.create(
    param(request, 'taskName'),
    await readJson(request, r.config.maxBodyBytes),
  );
  return json(created ? 201 : 200, resource);
});

/** GET /tasks/{taskName} (Tasks_Get): secret values omitted. */
export const getTask = api(async (request, r) => json(200, await r.tasks.get(param(request, 'taskName'))));

/** POST /tasks/{taskName}/listDetails (Tasks_GetDetails): the task with its secret values, for key holders. */
export const getTaskDetails = api(async (request, r) =>
  json(200, await r.tasks.getDetails(param(request, 'taskName'))),
);

/** PATCH /tasks/{taskName} (Tasks_Update): merges. */
export const updateTask = api(async (request, r) =>
  json(200, await r.tasks.update(param(request, 'taskName'), await readJson(request, r.config.maxBodyBytes))),
);

/** DELETE /tasks/{taskName} (Tasks_Delete): 200, or 204 if there was none. */
export const deleteTask = api(async (request, r) => ({
  status: (await r.tasks.delete(param(request, 'taskName'))) ? 200 : 204,
}));

/** GET /tasks (Tasks_List): paged with `$top` and `nextLink`. */
export const listTasks = api(async (request, r) => {
  const page = await r.tasks.list(topParam(request.query), request.query.get('$skipToken') ?? undefined);
  let nextLink: string | undefined;
  if (page.continuationToken) {
    const next = new URL(request.url);
    next.searchParams.set('$skipToken', page.continuationToken);
    nextLink = next.toString();
  }
  return json(200, { value: page.value, ...(nextLink ? { nextLink } : {}) });
});

/** GET /triggerDecisions?source=github|azuredevops|timer: the newest trigger decisions, with reasons. */
export const listTriggerDecisions = api(async (request, r) => {
  const source = request.query.get('source') ?? '';
  if (!['github', 'azuredevops', 'timer'].includes(source)) {
    throw new ValidationError(`source must be github, azuredevops or timer, got '${source}'`, 'source');
  }
  return json(200, { value: await r.decisions.list(source, topParam(request.query)) });
});
