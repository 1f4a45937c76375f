import { mergeValues, parseTaskFileRunRequest, runTemplateData } from '../../../src/runs/task-file-run';
import { parseBuildCommand, splitWords } from '../../../src/acb/command-line';

describe('values', () => {
  it('merges the values file into --set, --set winning and maps merged recursively', () => {
    expect(
      mergeValues({ a: 'file', b: 'file', nested: { x: 1, y: 2 } }, { b: 'set', 'nested.x': 'flat' }),
    ).toEqual({ a: 'file', b: 'set', 'nested.x': 'flat', nested: { x: 1, y: 2 } });
  });
});

describe('.Run', () => {
  it("takes the registry name from the part before the first '.' and the date in acb's layout", () => {
    const run = runTemplateData({
      runId: 'cf1',
      registry: 'foo-bar.azurecr-test.io',
      date: new Date('2026-11-23T08:09:10Z'),
      platform: { os: 'Linux', architecture: 'arm64' },
      sharedVolume: '/workspace',
    });
    expect(run).toMatchObject({
      ID: 'cf1',
      Registry: 'foo-bar.azurecr-test.io',
      RegistryName: 'foo-bar',
      Date: '20261123-080910z',
      OS: 'linux',
      Architecture: 'arm64',
      SharedVolume: '/workspace',
    });
  });
});

describe('run requests', () => {
  const platform = { os: 'linux', architecture: 'amd64' };
  it('names the field at fault', () => {
    expect(() =>
      parseTaskFileRunRequest(
        { type: 'FileTaskRunRequest', platform, taskFilePath: '/etc/acb.yaml' },
        'FileTaskRunRequest',
      ),
    ).toThrow(/taskFilePath must be a relative path/);
    expect(() =>
      parseTaskFileRunRequest(
        { type: 'EncodedTaskRunRequest', platform, encodedTaskContent: '%%' },
        'EncodedTaskRunRequest',
      ),
    ).toThrow(/encodedTaskContent must be base64/);
  });
});

describe('build steps (acb TestParseDockerBuildCmd, with value flags known)', () => {
  it.each([
    ['-t a:1 .', { tags: ['a:1'], file: undefined, target: undefined, context: '.' }],
    [
      '-f sub/Dockerfile -t a -t b --target t ctx',
      { tags: ['a', 'b'], file: 'sub/Dockerfile', target: 't', context: 'ctx' },
    ],
    ['--file=Dockerfile.x --no-cache .', { tags: [], file: 'Dockerfile.x', target: undefined, context: '.' }],
    [
      '--build-arg A=1 --build-arg "B=two words" -t x',
      { tags: ['x'], file: undefined, target: undefined, context: '.' },
    ],
    [
      'https://github.com/org/repo.git#main:dir -f Dockerfile',
      {
        tags: [],
        file: 'Dockerfile',
        target: undefined,
        context: 'https://github.com/org/repo.git#main:dir',
      },
    ],
  ])('%s', (line, expected) => {
    expect(parseBuildCommand(line, {})).toMatchObject(expected);
  });

  it('reads build args, quotes and all', () => {
    expect(parseBuildCommand('--build-arg A=1 --build-arg "B=two words" .', {}).buildArgs).toEqual({
      A: '1',
      B: 'two words',
    });
  });

  it('splits words as a shell quotes them, expanding nothing', () => {
    expect(splitWords(`sh -c "echo $HOME && ls \\"q\\"" 'a b' x|y a\\ b repo.git#main`)).toEqual([
      'sh',
      '-c',
      'echo $HOME && ls "q"',
      'a b',
      'x|y',
      'a b',
      'repo.git#main',
    ]);
  });

  it('names an unterminated quote', () => {
    expect(() => splitWords('echo "oops')).toThrow('unterminated " in: echo "oops');
  });
});
