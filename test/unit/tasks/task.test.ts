import { taskDetailsResource, taskResource, type Task } from '../../../src/tasks/task';

const task: Task = {
  name: 'legacy-task',
  status: 'Enabled',
  platform: { os: 'Linux', architecture: 'amd64' },
  agentConfiguration: { cpu: 2 },
  timeout: 3600,
  // As a task stored before passwords were sealed apart still holds them.
  step: {
    type: 'Docker',
    imageNames: [],
    isPushEnabled: true,
    noCache: false,
    dockerFilePath: 'Dockerfile',
    arguments: [],
    contextPath: 'https://alice:hunter2-secret@git.example.com/r.git#main',
  },
  trigger: {
    sourceTriggers: [
      {
        name: 'src',
        sourceRepository: {
          sourceControlType: 'Github',
          repositoryUrl: 'https://bob:other-secret@git.example.com/r.git',
          branch: 'main',
        },
        sourceTriggerEvents: ['commit'],
        status: 'Enabled',
      },
    ],
    timerTriggers: [],
    baseImageTrigger: {
      name: 'base',
      baseImageTriggerType: 'Runtime',
      updateTriggerEndpoint: 'https://hook:third-secret@hooks.example.com/x',
      status: 'Enabled',
    },
  },
  creationDate: '2026-11-29T00:00:00Z',
  timerSince: {},
};

describe('task', () => {
  describe('taskResource', () => {
    it('masks credentials embedded in the context, a repository URL and the update endpoint', () => {
      const shown = JSON.stringify(taskResource(task));
      for (const secret of ['hunter2-secret', 'other-secret', 'third-secret'])
        expect(shown).not.toContain(secret);
      expect(shown).toContain('https://alice:*************@git.example.com/r.git#main');
      expect(shown).toContain('https://bob:*************@git.example.com/r.git');
    });
  });

  describe('taskDetailsResource', () => {
    const withSecrets: Task = {
      ...task,
      step: {
        ...task.step,
        type: 'Docker',
        arguments: [
          { name: 'PLAIN', value: 'p', isSecret: false },
          { name: 'TOKEN', isSecret: true },
        ],
      } as Task['step'],
      credentials: {
        customRegistries: {
          'reg.example.com': { userName: { type: 'Opaque', value: 'u' }, password: { type: 'Opaque' } },
        },
      },
    };
    const secrets = {
      arguments: { TOKEN: 'arg-secret' },
      contextAccessToken: 'ctx-secret',
      sourceTokens: { src: 'pat-secret' },
      registryPasswords: { 'reg.example.com': 'reg-secret' },
    };

    it('shows the secret values that Tasks_Get leaves out, each in its place', () => {
      const details = taskDetailsResource(taskResource(withSecrets), secrets) as any;

      expect(details.properties.step.arguments).toEqual([
        { name: 'PLAIN', value: 'p', isSecret: false },
        { name: 'TOKEN', value: 'arg-secret', isSecret: true },
      ]);
      expect(details.properties.step.contextAccessToken).toBe('ctx-secret');
      expect(
        details.properties.trigger.sourceTriggers[0].sourceRepository.sourceControlAuthProperties,
      ).toEqual({
        tokenType: 'PAT',
        token: 'pat-secret',
      });
      expect(details.properties.credentials.customRegistries['reg.example.com'].password).toEqual({
        type: 'Opaque',
        value: 'reg-secret',
      });
      expect(JSON.stringify(taskResource(withSecrets))).not.toMatch(
        /arg-secret|ctx-secret|pat-secret|reg-secret/,
      );
    });
  });
});
