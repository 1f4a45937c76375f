import {
  AcbError,
  findVersion,
  loadTaskFile,
  mergeEnvs,
  parseRenderedTask,
} from '../../../src/acb/task-file';

const data = {
  Run: { ID: 'cf12', Registry: 'myreg.azurecr.io', RegistryName: 'myreg', Date: '20261123-080000z' },
  Values: {},
};

describe('task file validation: every error names the step or value at fault', () => {
  const cases: [string, string, RegExp][] = [
    [
      'duplicate id',
      'steps:\n- id: a\n  cmd: x\n- id: a\n  cmd: y\n',
      /steps\[1\] \(a\): a already exists as a vertex/,
    ],
    [
      'when names a later step',
      'steps:\n- id: a\n  cmd: x\n  when: [b]\n- id: b\n  cmd: y\n',
      /steps\[0\] \(a\): when names 'b', a later step/,
    ],
    [
      'when names an unknown step',
      'steps:\n- id: a\n  cmd: x\n- id: b\n  cmd: y\n  when: [nope]\n',
      /steps\[1\] \(b\): when names 'nope', which is not a step ID/,
    ],
    [
      'self reference',
      'steps:\n- id: a\n  cmd: x\n  when: [a]\n',
      /steps\[0\] \(a\): Step ID: a is self-referenced/,
    ],
    [
      '- mixed with ids',
      'steps:\n- id: a\n  cmd: x\n- id: b\n  cmd: y\n  when: ["-", a]\n',
      /steps\[1\] \(b\): step cannot contain other IDs in when if the immediate execution token is specified/,
    ],
    [
      'no type',
      'steps:\n- id: a\n  env: [A=1]\n',
      /steps\[0\] \(a\): step is missing a cmd, build, or push property/,
    ],
    [
      'two types',
      'steps:\n- id: a\n  cmd: x\n  build: .\n',
      /steps\[0\] \(a\): step must only contain a single build, cmd, or push property/,
    ],
    [
      'negative retries',
      'steps:\n- cmd: x\n  retries: -1\n',
      /steps\[0\] \(acb_step_0\): step must specify retries >= 0/,
    ],
    [
      'negative repeat',
      'steps:\n- cmd: x\n- cmd: y\n  repeat: -2\n',
      /steps\[1\] \(acb_step_1\): step must specify repeat >= 0/,
    ],
    [
      'reserved id',
      'steps:\n- id: acb_root\n  cmd: x\n',
      /steps\[0\] \(acb_root\): acb_root is a reserved ID/,
    ],
    ['id with a space', 'steps:\n- id: "a b"\n  cmd: x\n', /step ID cannot contain spaces/],
    [
      'unsupported version',
      'version: v2.0.0\nsteps:\n- cmd: x\n',
      /invalid version specified: "v2.0.0", the current version is "v1.0.0"/,
    ],
    [
      'v1.0.0-alpha',
      'version: v1.0.0-alpha\nsteps:\n- cmd: x\n',
      /invalid version specified: "v1.0.0-alpha"/,
    ],
    ['broken YAML', 'steps:\n- cmd: x\n  when: [a\n', /not valid YAML/],
    ['duplicate keys', 'steps:\n- cmd: x\n  cmd: y\n', /not valid YAML/],
    ['no steps', 'version: v1.1.0\n', /no steps/],
    ['steps not a list', 'steps: hello\n', /steps must be a list/],
    [
      'bad cache',
      'steps:\n- build: .\n  cache: sometimes\n',
      /steps\[0\] \(acb_step_0\): invalid value for cache property/,
    ],
    [
      'timeout not a number',
      'steps:\n- cmd: x\n  timeout: soon\n',
      /steps\[0\] \(acb_step_0\): timeout must be a whole number/,
    ],
    [
      'mounts on push',
      'volumes:\n- name: v\n  secret: {a: b}\nsteps:\n- push: [x]\n  volumeMounts: [{name: v, mountPath: /v}]\n',
      /invalid use of Mounts/,
    ],
    [
      'mount of no volume',
      'steps:\n- cmd: x\n  volumeMounts: [{name: v, mountPath: /v}]\n',
      /mount name, v, does not correspond to a volume/,
    ],
    [
      'duplicate mount path',
      'volumes:\n- name: v\n  secret: {a: b}\nsteps:\n- cmd: x\n  volumeMounts: [{name: v, mountPath: /v}, {name: v, mountPath: /v}]\n',
      /mount with duplicate container file path found/,
    ],
    [
      'empty mount field',
      'volumes:\n- name: v\n  secret: {a: b}\nsteps:\n- cmd: x\n  volumeMounts: [{name: v}]\n',
      /mount name or mount path is empty/,
    ],
    ['task env without =', 'env: [A]\nsteps:\n- cmd: x\n', /cannot parse task environment variable 'A'/],
    [
      'duplicate secret',
      'secrets:\n- id: s\n  keyvault: https://v/secrets/s\n- id: s\n  keyvault: https://v/secrets/t\nsteps:\n- cmd: x\n',
      /duplicate secret found with ID: s/,
    ],
    [
      'bad client id',
      'secrets:\n- id: s\n  keyvault: https://v/secrets/s\n  clientID: nope\nsteps:\n- cmd: x\n',
      /msi client ID is not a valid guid/,
    ],
    [
      'duplicate volume',
      'volumes:\n- name: v\n  secret: {a: b}\n- name: v\n  secret: {a: b}\nsteps:\n- cmd: x\n',
      /volume with duplicate name found/,
    ],
  ];
  it.each(cases)('%s', async (_name, file, message) => {
    await expect(loadTaskFile(file, { data })).rejects.toThrow(AcbError);
    await expect(loadTaskFile(file, { data })).rejects.toThrow(message);
  });

  it.each(['1.0-preview-1', 'v1.0.0', 'V1.0.0', 'v1.1.0', ''])('accepts version %p', async (version) => {
    const task = await loadTaskFile(`version: ${version}\nsteps:\n- cmd: x\n`, { data });
    expect(task.steps).toHaveLength(1);
  });
});

describe('defaults and the step graph', () => {
  it("applies acb's defaults", () => {
    const task = parseRenderedTask('steps:\n- cmd: hello-world\n- push: [a/b]\n  timeout: 20000\n');
    expect(task.version).toBe('v1.0.0');
    expect(task.stepTimeout).toBe(600);
    expect(task.steps[0]).toMatchObject({
      id: 'acb_step_0',
      type: 'cmd',
      timeout: 600,
      retries: 0,
      retryDelay: 5,
      repeat: 0,
      startDelay: 0,
      ignoreErrors: false,
      dependsOn: [],
    });
    expect(task.steps[1]).toMatchObject({
      id: 'acb_step_1',
      push: ['a/b:latest'],
      timeout: 20000,
      dependsOn: ['acb_step_0'],
    });
  });

  it('stamps stepTimeout on steps without a timeout; 0 or less means 600', () => {
    expect(parseRenderedTask('stepTimeout: 30\nsteps:\n- cmd: x\n').steps[0]!.timeout).toBe(30);
    expect(parseRenderedTask('stepTimeout: 0\nsteps:\n- cmd: x\n').steps[0]!.timeout).toBe(600);
  });

  it("builds acb's graph from graph/testdata/acb.yaml's shape", () => {
    const task = parseRenderedTask(
      [
        'steps:',
        '- id: puller',
        '  cmd: puller',
        '  when: ["-"]',
        '- id: C',
        '  cmd: c',
        '  when: ["-"]',
        '- id: B',
        '  cmd: b',
        '  when: [C]',
        '- id: build-qux',
        '  build: .',
        '  when: ["-"]',
        '- id: build-foo',
        '  build: .',
        '  when: [build-qux]',
        '- id: build-bar',
        '  build: .',
        '  when: ["-"]',
        '- id: build-qaz',
        '  build: .',
        '',
      ].join('\n'),
    );
    expect(Object.fromEntries(task.steps.map((s) => [s.id, s.dependsOn]))).toEqual({
      puller: [],
      C: [],
      B: ['C'],
      'build-qux': [],
      'build-foo': ['build-qux'],
      'build-bar': [],
      // No when: the previous step in the file, even a parallel one.
      'build-qaz': ['build-bar'],
    });
  });

  it('merges task env into steps, step values first (TestMergeEnvs)', () => {
    expect(mergeEnvs(['a=1', 'b=2'], ['a=9'])).toEqual(['a=9', 'b=2']);
    const task = parseRenderedTask('env: ["a=1,b=2"]\nsteps:\n- cmd: x\n  env: [a=9]\n');
    expect(task.steps[0]!.env).toEqual(['a=9', 'b=2']);
  });

  it('inherits the working directory and de-duplicates push images', () => {
    const task = parseRenderedTask(
      'workingDirectory: app\nsteps:\n- cmd: x\n- push: [a/b, a/b:latest, c/d:1]\n',
    );
    expect(task.steps[0]!.workingDirectory).toBe('app');
    expect(task.steps[1]!.push).toEqual(['a/b:latest', 'c/d:1']);
  });

  it('ignores unknown keys, as acb does, but says so', () => {
    const task = parseRenderedTask('test: 600\nsteps:\n- cmd: x\n  colour: blue\n');
    expect(task.warnings).toEqual([
      "unknown property 'test' is ignored",
      "steps[0] (acb_step_0): unknown property 'colour' is ignored",
    ]);
  });

  it('finds the version on the first non-comment line starting with version', () => {
    expect(findVersion('# version: v9\nversion: "v1.1.0"\nsteps: []\n')).toBe('v1.1.0');
    expect(findVersion('steps: []\n')).toBe('');
  });
});

describe('rendering', () => {
  it('never evaluates templates in comment lines', async () => {
    const task = await loadTaskFile('# {{ if }} broken\nsteps:\n- cmd: echo {{.Run.ID}}\n', { data });
    expect(task.steps[0]!.cmd).toBe('echo cf12');
  });

  it('renders values with --set winning and missing values empty', async () => {
    const task = await loadTaskFile(
      'steps:\n- id: "{{.Values.step}}"\n  cmd: echo {{.Values.missing}}x {{.Values.tag | default "latest"}}\n',
      {
        data: { ...data, Values: { step: 'hello' } },
      },
    );
    expect(task.steps[0]).toMatchObject({ id: 'hello', cmd: 'echo x latest' });
  });

  it('expands $ aliases from v1.1.0, with user aliases and $$', async () => {
    const file = [
      'version: v1.1.0',
      'alias:',
      '  values:',
      '    repo: myrepo',
      '    reg: "{{.Run.Registry}}"',
      'steps:',
      '- build: -t $reg/$repo:$ID .',
      '- cmd: sh -c "echo $$HOME $unknown $ID2"',
      '',
    ].join('\n');
    const task = await loadTaskFile(file, { data });
    expect(task.steps[0]!.build).toBe('-t myreg.azurecr.io/myrepo:cf12 .');
    expect(task.steps[1]!.cmd).toBe('sh -c "echo $HOME $unknown $ID2"');
  });

  it('leaves $ alone before v1.1.0', async () => {
    const task = await loadTaskFile('version: v1.0.0\nsteps:\n- cmd: echo $ID\n', { data });
    expect(task.steps[0]!.cmd).toBe('echo $ID');
  });

  it('reads alias src files, inline values winning', async () => {
    const file =
      'version: v1.1.0\nalias:\n  src: [a.yaml]\n  values:\n    x: inline\nsteps:\n- cmd: echo $x $y\n';
    const task = await loadTaskFile(file, { data, readAliasSource: async () => 'x: file\ny: file\n' });
    expect(task.steps[0]!.cmd).toBe('echo inline file');
  });

  it('honours a custom directive', async () => {
    const file = 'version: v1.1.0\nalias:\n  directive: "&"\nsteps:\n- cmd: echo &ID $ID\n';
    expect((await loadTaskFile(file, { data })).steps[0]!.cmd).toBe('echo cf12 $ID');
  });

  it('renders .Values in id and when (acb templating/testdata/caching)', async () => {
    const file = [
      'steps:',
      '  - id: "{{.Values.pullStep}}"',
      '    cmd: docker pull x',
      '  - id: build',
      '    build: .',
      '    when: ["{{.Values.pullStep}}"]',
      '',
    ].join('\n');
    const task = await loadTaskFile(file, { data: { ...data, Values: { pullStep: 'pull-base' } } });
    expect(task.steps.map((x) => [x.id, x.dependsOn])).toEqual([
      ['pull-base', []],
      ['build', ['pull-base']],
    ]);
  });

  it('renders .Run fields and pipes as the thames case does; an unknown field is empty', async () => {
    const file =
      'steps:\n  - cmd: echo {{.Run.ID | upper}} {{.Run.Commit | lower}} [{{.Run.Tag}}] {{.Run.Branch}}\n';
    const task = await loadTaskFile(file, {
      data: { Run: { ...data.Run, Commit: 'ABC123', Branch: 'main' }, Values: {} },
    });
    expect(task.steps[0]!.cmd).toBe('echo CF12 abc123 [] main');
  });

  it('reads nested and list values (the curie case)', async () => {
    const file = 'steps:\n  - cmd: echo {{.Values.born.year}} {{.Values.awards | toJson}}\n';
    const task = await loadTaskFile(file, {
      data: { ...data, Values: { born: { year: 1867 }, awards: ['Nobel Physics', 'Nobel Chemistry'] } },
    });
    expect(task.steps[0]!.cmd).toBe('echo 1867 ["Nobel Physics","Nobel Chemistry"]');
  });
});
