import { createBody, updateBody, type TaskOptions } from '../../../src/cli/task-body';
import type { TaskResource } from '../../../src/cli/task-resource';

function flags(given: Partial<TaskOptions>): TaskOptions {
  return { name: 't', set: [], setSecret: [], image: [], arg: [], secretArg: [], schedule: [], ...given };
}

function task(
  trigger: NonNullable<TaskResource['properties']['trigger']>,
  contextPath = 'https://git.example/app.git#main',
): TaskResource {
  return {
    name: 't',
    properties: { status: 'Enabled', step: { type: 'Docker', contextPath }, trigger },
  };
}

const sourceTrigger = (events: string[], status = 'Enabled') => ({
  name: 'mine',
  sourceRepository: {
    sourceControlType: 'Github',
    repositoryUrl: 'https://git.example/app.git',
    branch: 'main',
  },
  sourceTriggerEvents: events,
  status,
});

async function triggerOf(opts: Partial<TaskOptions>, current: TaskResource): Promise<Record<string, any>> {
  const body = (await updateBody(flags(opts), current)) as { properties: { trigger?: Record<string, any> } };
  return body.properties.trigger ?? {};
}

describe('task-body', () => {
  describe('createBody', () => {
    it('names the triggers --source-trigger-name and --base-image-trigger-name give', () => {
      const body = createBody(
        flags({
          context: 'https://git.example/app.git#main',
          sourceTriggerName: 'on-push',
          baseImageTriggerName: 'on-base',
        }),
        {},
      ) as { properties: { trigger: Record<string, any> } };
      expect(body.properties.trigger.sourceTriggers[0].name).toBe('on-push');
      expect(body.properties.trigger.baseImageTrigger.name).toBe('on-base');
    });
  });

  describe('updateBody', () => {
    it('adds a source trigger on the git context when a task without one enables commits', async () => {
      const trigger = await triggerOf({ commitTriggerEnabled: 'true' }, task({ sourceTriggers: [] }));
      expect(trigger.sourceTriggers).toEqual([
        {
          name: 'defaultSourceTriggerName',
          sourceRepository: {
            sourceControlType: 'Github',
            repositoryUrl: 'https://git.example/app.git',
            branch: 'main',
          },
          sourceTriggerEvents: ['commit'],
          status: 'Enabled',
        },
      ]);
    });

    it('adds pull requests under the name --source-trigger-name gives', async () => {
      const trigger = await triggerOf(
        { pullRequestTriggerEnabled: 'true', sourceTriggerName: 'prs', gitAccessToken: 'pat-1' },
        task({}),
      );
      expect(trigger.sourceTriggers[0]).toMatchObject({
        name: 'prs',
        sourceRepository: { sourceControlAuthProperties: { tokenType: 'PAT', token: 'pat-1' } },
        sourceTriggerEvents: ['pullrequest'],
      });
    });

    it('refuses to add a source trigger to a task whose context is not git', async () => {
      await expect(
        updateBody(flags({ commitTriggerEnabled: 'true' }), task({}, 'https://files.example/ctx.tar.gz')),
      ).rejects.toThrow('its context is not a git repository');
    });

    it.each([
      [{ pullRequestTriggerEnabled: 'true' }, ['commit'], 'Enabled', ['commit', 'pullrequest'], 'Enabled'],
      [{ commitTriggerEnabled: 'false' }, ['pullrequest'], 'Enabled', ['pullrequest'], 'Enabled'],
      [{ pullRequestTriggerEnabled: 'false' }, ['commit', 'pullrequest'], 'Enabled', ['commit'], 'Enabled'],
      [{ commitTriggerEnabled: 'false' }, ['commit'], 'Enabled', ['commit'], 'Disabled'],
      [{ pullRequestTriggerEnabled: 'true' }, ['commit'], 'Disabled', ['pullrequest'], 'Enabled'],
    ])('merges %j with the stored events %j (%s)', async (given, stored, status, events, after) => {
      const trigger = await triggerOf(given, task({ sourceTriggers: [sourceTrigger(stored, status)] }));
      expect(trigger.sourceTriggers).toEqual([
        { ...sourceTrigger(stored, status), sourceTriggerEvents: events, status: after },
      ]);
    });

    it('changes only the base-image fields given, keeping the stored type, endpoint and payload type', async () => {
      const trigger = await triggerOf(
        { baseImageTriggerEnabled: 'false' },
        task({
          baseImageTrigger: {
            name: 'base',
            baseImageTriggerType: 'All',
            updateTriggerEndpoint: 'https://hooks.example/notify',
            updateTriggerPayloadType: 'Token',
            status: 'Enabled',
          },
        }),
      );
      expect(trigger.baseImageTrigger).toEqual({
        name: 'base',
        baseImageTriggerType: 'All',
        updateTriggerEndpoint: 'https://hooks.example/notify',
        updateTriggerPayloadType: 'Token',
        status: 'Disabled',
      });
      expect(trigger.sourceTriggers).toBeUndefined();
    });

    it('asks for the endpoint again rather than storing the masked one it was shown', async () => {
      await expect(
        updateBody(
          flags({ baseImageTriggerType: 'All' }),
          task({ baseImageTrigger: { updateTriggerEndpoint: 'https://u:*************@hooks.example/n' } }),
        ),
      ).rejects.toThrow('give --update-trigger-endpoint again');
    });
  });
});
