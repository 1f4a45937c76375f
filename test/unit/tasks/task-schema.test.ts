import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../../../src/errors';
import { parseWith } from '../../../src/http/validate';
import { repositoryKey } from '../../../src/tasks/task';
import { isTaskName, scheduleProblem, taskCreateSchema } from '../../../src/tasks/task-schema';

const acrExample = JSON.parse(
  readFileSync(join(__dirname, '../../fixtures/acr-tasks-create.json'), 'utf8'),
) as Record<string, any>;
const minimal = {
  properties: { step: { type: 'Docker', contextPath: 'git://127.0.0.1:9418/app.git#main' } },
};

function problem(body: unknown): ValidationError {
  try {
    parseWith(taskCreateSchema, body, 'the task');
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('no validation error');
}

describe('task-schema', () => {
  describe('taskCreateSchema', () => {
    it("accepts ACR's TasksCreate example as it is", () => {
      const task = parseWith(taskCreateSchema, acrExample);
      expect(task.properties.step.type === 'Docker' && task.properties.step.arguments).toHaveLength(2);
      expect(
        task.properties.trigger.sourceTriggers[0]!.sourceRepository.sourceControlAuthProperties?.token,
      ).toBe('xxxxx');
      expect(task.location).toBe('eastus');
    });

    it("fills ACR's defaults", () => {
      expect(parseWith(taskCreateSchema, minimal).properties).toMatchObject({
        status: 'Enabled',
        timeout: 3600,
        platform: { os: 'Linux', architecture: 'amd64' },
        agentConfiguration: { cpu: 2 },
        step: {
          dockerFilePath: 'Dockerfile',
          isPushEnabled: true,
          noCache: false,
          imageNames: [],
          arguments: [],
        },
        trigger: { sourceTriggers: [], timerTriggers: [] },
      });
    });

    const withProps = (props: Record<string, unknown>): unknown => ({
      properties: { ...minimal.properties, ...props },
    });
    it.each([
      [withProps({ timeout: 299 }), 'properties.timeout', 'at least 300'],
      [withProps({ timeout: 28801 }), 'properties.timeout', 'at most 28800'],
      [
        withProps({ platform: { os: 'Linux', architecture: 'sparc' } }),
        'properties.platform.architecture',
        "'sparc' is not a valid architecture",
      ],
      [withProps({ status: 'Paused' }), 'properties.status', "'Paused' is not a status"],
      [
        withProps({ step: { type: 'FileTask', taskFilePath: '../acb.yaml', contextPath: 'x' } }),
        'properties.step.taskFilePath',
        'taskFilePath must be a relative path inside the source',
      ],
      [
        withProps({ step: { type: 'FileTask', contextPath: 'x' } }),
        'properties.step.taskFilePath',
        'required',
      ],
      [
        withProps({ step: { type: 'EncodedTask', encodedTaskContent: 'not base64!' } }),
        'properties.step.encodedTaskContent',
        'encodedTaskContent must be base64',
      ],
      [
        withProps({ step: { type: 'Shell', contextPath: 'x' } }),
        'properties.step.type',
        'step.type must be Docker',
      ],
      [withProps({ step: { type: 'Docker' } }), 'properties.step.contextPath', 'required'],
      ...[
        ['file:///srv/repos/r.git', 'uses file://'],
        ['ssh://git@github.com/o/r.git', 'uses ssh://'],
        ['ext::sh -c touch% /tmp/pwned', 'transport::address'],
        ['git@github.com:o/r.git', 'scp-like'],
      ].map(([contextPath, why]) => [
        withProps({ step: { type: 'Docker', contextPath } }),
        'properties.step.contextPath',
        why!,
      ]),
      [
        withProps({ trigger: { timerTriggers: [{ name: 't1', schedule: '61 * * * *' }] } }),
        'properties.trigger.timerTriggers[0].schedule',
        'not a valid cron schedule',
      ],
      [
        withProps({ trigger: { timerTriggers: [{ name: 't1', schedule: '* * *' }] } }),
        'properties.trigger.timerTriggers[0].schedule',
        'has 3 field(s)',
      ],
      [
        withProps({
          trigger: {
            sourceTriggers: [
              {
                name: 's',
                sourceRepository: { sourceControlType: 'Gitlab', repositoryUrl: 'x' },
                sourceTriggerEvents: ['commit'],
              },
            ],
          },
        }),
        'properties.trigger.sourceTriggers[0].sourceRepository.sourceControlType',
        "'Gitlab' is not a source control type",
      ],
      [
        withProps({
          trigger: {
            sourceTriggers: [
              {
                name: 's',
                sourceRepository: { sourceControlType: 'Github', repositoryUrl: 'x' },
                sourceTriggerEvents: ['tag'],
              },
            ],
          },
        }),
        'properties.trigger.sourceTriggers[0].sourceTriggerEvents[0]',
        "'tag' is not a source event",
      ],
      [
        withProps({ unknownThing: 1 }),
        'properties.unknownThing',
        "unknown property 'properties.unknownThing'",
      ],
    ])('rejects %#: names %s', (body, target, message) => {
      const err = problem(body);
      expect(err.target).toBe(target);
      expect(err.message).toContain(message);
    });
  });

  describe('isTaskName', () => {
    it.each([
      ['abcde', true],
      ['build_app-1', true],
      ['a'.repeat(50), true],
      ['abcd', false],
      ['a'.repeat(51), false],
      ['has space', false],
      ['dot.name', false],
    ])('%s → %s', (name, ok) => {
      expect(isTaskName(name)).toBe(ok);
    });
  });

  describe('scheduleProblem', () => {
    it.each(['* * * * *', '0 */5 * * * *', '30 9 * * 1-5', '0 0 2 * * SUN'])('accepts %s', (s) => {
      expect(scheduleProblem(s)).toBeUndefined();
    });
    it.each(['', '* * * *', '* * * * * * *', '60 * * * *', 'every minute'])('rejects %j', (s) => {
      expect(scheduleProblem(s)).toBeDefined();
    });
  });

  describe('repositoryKey', () => {
    it('matches a repository with or without .git, credentials, trailing slash or host case', () => {
      const keys = [
        'https://github.com/Codertocat/Hello-World.git',
        'https://github.com/Codertocat/Hello-World',
        'https://x-access-token:abc@GitHub.com/Codertocat/Hello-World/',
        'https://github.com/Codertocat/Hello-World.git#main:src',
      ].map(repositoryKey);
      expect(new Set(keys).size).toBe(1);
      expect(repositoryKey('https://github.com/Codertocat/Other')).not.toBe(keys[0]);
    });
  });
});
