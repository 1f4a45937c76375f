// The container groups of a multi-step task's steps in ACI, as ARM receives them: where each secret goes, what a build
// step's flags become for kaniko and which it refuses, how ACI signs in to pull, and STEP_SCRIPT run for real by sh.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  Container,
  ContainerGroup,
  EnvironmentVariable,
  InitContainerDefinition,
} from '@azure/arm-containerinstance';
import { AcbError } from '../../../../src/acb/errors';
import { parseRenderedTask } from '../../../../src/acb/task-file';
import type { AcbStep, AcbTask } from '../../../../src/acb/task-file';
import { loadAciSettings, type AciSettings } from '../../../../src/executors/aci/aci-settings';
import { STEP_STATE, STEP_WORKSPACE } from '../../../../src/executors/aci/builder-scripts';
import {
  buildStepGroup,
  cmdStepGroup,
  cmdWords,
  pushStepGroup,
  sourceGroup,
  type StepGroupInputs,
} from '../../../../src/executors/aci/step-groups';

const SUB = '00000000-0000-0000-0000-000000000001';
const IDENTITY = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-builder`;
const HOME = 'myreg.azurecr.io';
const LOGIN_REGISTRY = 'other.example.com';

// Every secret a step group is given, each distinct so that a leak names itself.
const BUILD_ARG = 'build-arg-s3cret-1';
const ENV_VALUE = 'env-s3cret-value-2';
const GIT_TOKEN = 'ghp_gittoken-s3cret-3';
const LOGIN_PASSWORD = 'login-passw0rd-4';
const REPORT_TOKEN = 'report-token-s3cret-5';
const ARGV_SECRET = 'argv-s3cret-6';
const LOG_SAS = 'https://acct.blob.core.windows.net/logs/r1.log?sv=2021&sig=logsig7';
const REPORT_SAS = 'https://acct.queue.core.windows.net/run-completions/messages?sv=2021&sig=queuesig8';
const IN_SAS = [
  'https://acct.blob.core.windows.net/workspaces/r1/a.tar.gz?sv=2021&sig=insig9a',
  'https://acct.blob.core.windows.net/workspaces/r1/b.tar.gz?sv=2021&sig=insig9b',
];
const OUT_SAS = 'https://acct.blob.core.windows.net/workspaces/r1/c.tar.gz?sv=2021&sig=outsig10';
const ARCHIVE_SAS = 'https://acct.blob.core.windows.net/source/ctx.tar.gz?sv=2021&sig=sourcesig11';
const SAS_SIGNATURES = ['logsig7', 'queuesig8', 'insig9a', 'insig9b', 'outsig10', 'sourcesig11'];

function settings(env: Record<string, string> = {}): AciSettings {
  return loadAciSettings({
    REFIT_ACI_SUBSCRIPTION_ID: SUB,
    REFIT_ACI_RESOURCE_GROUP: 'rg-builds',
    REFIT_ACI_LOCATION: 'westeurope',
    REFIT_ACI_IDENTITY_ID: IDENTITY,
    REFIT_ACI_IDENTITY_CLIENT_ID: '00000000-0000-0000-0000-0000000000c1',
    ...env,
  });
}

function inputs(overrides: Partial<StepGroupInputs> = {}): StepGroupInputs {
  return {
    runId: 'r1',
    cpu: 2,
    step: '0',
    label: 'compile',
    attempt: 'a0',
    workspaceIns: IN_SAS,
    workspaceOut: OUT_SAS,
    insecureRegistries: [],
    logUrl: LOG_SAS,
    reportUrl: REPORT_SAS,
    reportToken: REPORT_TOKEN,
    masks: [BUILD_ARG, ENV_VALUE, GIT_TOKEN, LOGIN_PASSWORD, ARGV_SECRET],
    maxLogBytes: 1 << 20,
    homeRegistry: HOME,
    logins: { [LOGIN_REGISTRY]: { username: 'bob', password: LOGIN_PASSWORD } },
    tags: { 'refit-run': 'r1' },
    ...overrides,
  };
}

/** A task file's steps, parsed as Refit parses a rendered one. */
function task(yaml: string): AcbTask {
  return parseRenderedTask(`version: v1.1.0\n${yaml}`);
}

function onlyStep(yaml: string): { task: AcbTask; step: AcbStep } {
  const t = task(yaml);
  return { task: t, step: t.steps[0]! };
}

const scoped = (image: string): string => `${HOME}/refit-runs/r1/${image.replace(/[:/]/g, '-')}:r1`;
const amd64 = { os: 'Linux' as const, architecture: 'amd64' as const };

function build(line: string, workdir = STEP_WORKSPACE, stepInputs = inputs()): ContainerGroup {
  const { step } = onlyStep(`steps:\n  - build: ${JSON.stringify(line)}\n`);
  return buildStepGroup(settings(), stepInputs, step, amd64, scoped, workdir);
}

function container(group: ContainerGroup, name: string): Container {
  const found = group.containers.find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name} in ${group.containers.map((c) => c.name).join(', ')}`);
  return found;
}

function env(
  c: { environmentVariables?: EnvironmentVariable[] },
  name: string,
): EnvironmentVariable | undefined {
  return c.environmentVariables?.find((e) => e.name === name);
}

/** The kaniko flags a build group gives: the words after the script and its $0. */
function kanikoFlags(group: ContainerGroup): string[] {
  return container(group, 'build').command!.slice(4);
}

/**
 * What ARM hands back on a GET and what a reader of the group's definition sees: everything but secure values,
 * secret volumes and registry passwords (ACI returns none of them).
 */
function visible(group: ContainerGroup): string {
  return JSON.stringify(group, (key, value: unknown) =>
    key === 'secureValue' || key === 'secret' || key === 'password' ? undefined : value,
  );
}

/** Each secret, and its base64 (REFIT_ARGV carries words as base64), is absent from what is visible. */
function expectNoSecretVisible(group: ContainerGroup, secrets: readonly string[]): void {
  const shown = visible(group);
  for (const secret of secrets) {
    expect(shown).not.toContain(secret);
    expect(shown).not.toContain(Buffer.from(secret).toString('base64'));
  }
}

describe('executors/aci/step-groups', () => {
  describe('sourceGroup', () => {
    it('fetches the source in an init container and reports from the reporter alone; the git token and SAS URLs are secure values only', () => {
      const group = sourceGroup(settings(), inputs({ step: '@source', workspaceIns: [] }), {
        kind: 'git',
        url: 'https://github.com/org/app.git',
        ref: 'main',
        commit: undefined,
        folder: '',
        token: GIT_TOKEN,
      });

      expect(group.initContainers?.map((c) => c.name)).toEqual(['fetch']);
      expect(group.containers.map((c) => c.name)).toEqual(['report']);
      expect(env(group.initContainers![0]!, 'REFIT_GIT_TOKEN')).toEqual({
        name: 'REFIT_GIT_TOKEN',
        secureValue: GIT_TOKEN,
      });
      expect(env(container(group, 'report'), 'REFIT_WORKSPACE_OUT_URL')).toEqual({
        name: 'REFIT_WORKSPACE_OUT_URL',
        secureValue: OUT_SAS,
      });
      expectNoSecretVisible(group, [GIT_TOKEN, REPORT_TOKEN, ...SAS_SIGNATURES]);
    });

    it("keeps an uploaded source's read SAS URL a secure value", () => {
      const group = sourceGroup(settings(), inputs({ step: '@source', workspaceIns: [] }), {
        kind: 'archive',
        url: ARCHIVE_SAS,
        folder: '',
      });

      expect(env(group.initContainers![0]!, 'REFIT_SOURCE_URL')?.secureValue).toBe(ARCHIVE_SAS);
      expectNoSecretVisible(group, [REPORT_TOKEN, ...SAS_SIGNATURES]);
    });
  });

  describe('buildStepGroup', () => {
    it('gives build arguments, the report token and the SAS URLs only as secure values', () => {
      const group = build(`-t app:1 --build-arg TOKEN=${BUILD_ARG} --build-arg=OTHER=${BUILD_ARG}x .`);

      const values = container(group, 'build')
        .environmentVariables!.filter((e) => e.secureValue !== undefined)
        .map((e) => e.secureValue);
      expect(values).toEqual(expect.arrayContaining([BUILD_ARG, `${BUILD_ARG}x`]));
      expectNoSecretVisible(group, [BUILD_ARG, LOGIN_PASSWORD, REPORT_TOKEN, ...SAS_SIGNATURES]);
    });

    it("pushes each -t image to its run-scoped name, never to the step's own name", () => {
      const group = build('-t app:1 --tag=registry.example.com/team/app:v2 .');

      const flags = kanikoFlags(group);
      expect(flags.filter((f) => f.startsWith('--destination='))).toEqual([
        `--destination=${scoped('app:1')}`,
        `--destination=${scoped('registry.example.com/team/app:v2')}`,
      ]);
      expect(flags.join(' ')).not.toMatch(/--destination=(app:1|registry\.example\.com)/);
      expect(flags).not.toContain('--no-push');
    });

    it('pushes nothing when the step tags nothing', () => {
      expect(kanikoFlags(build('.'))).toContain('--no-push');
    });

    it('maps --platform, --target and --label to kaniko flags, and builds the workspace folder the step names', () => {
      const flags = kanikoFlags(
        build(
          '-f docker/Dockerfile.prod --platform linux/arm64 --target=runtime --label a=b --label=c=d app',
          '/workspace/src',
        ),
      );

      expect(flags).toEqual(
        expect.arrayContaining([
          '--context=dir:///refit-workspace/src/app',
          '--dockerfile=/refit-workspace/src/docker/Dockerfile.prod',
          '--custom-platform=linux/arm64',
          '--target=runtime',
          '--label=a=b',
          '--label=c=d',
        ]),
      );
      expect(flags.filter((f) => f.startsWith('--custom-platform'))).toHaveLength(1);
    });

    it("builds for the run's platform when the step names none", () => {
      const { step } = onlyStep('steps:\n  - build: -t app .\n');
      const group = buildStepGroup(
        settings(),
        inputs(),
        step,
        { os: 'Linux', architecture: 'arm', variant: 'v7' },
        scoped,
        STEP_WORKSPACE,
      );

      expect(kanikoFlags(group)).toContain('--custom-platform=linux/arm/v7');
    });

    it.each([
      ['--network host .', '--network'],
      ['--network=none .', '--network'],
      ['--secret id=npm,src=/root/.npmrc .', '--secret'],
      ['-v /var/run/docker.sock:/var/run/docker.sock .', '-v'],
      ['--ssh default .', '--ssh'],
    ])('refuses `%s`, naming %s', (line, flag) => {
      expect(() => build(line)).toThrow(AcbError);
      expect(() => build(line)).toThrow(`'${flag}'`);
    });

    it.each([
      ['-t app ..', 'the build context'],
      ['-t app /etc', 'the build context'],
      ['-t app -f /etc/passwd .', 'the Dockerfile'],
      ['-t app -f ../../Dockerfile .', 'the Dockerfile'],
      ['-t app sub/../../x', 'the build context'],
    ])('refuses `%s`: %s is outside /workspace', (line, what) => {
      expect(() => build(line)).toThrow(AcbError);
      expect(() => build(line)).toThrow(new RegExp(`${what} '.*' is outside /workspace`));
    });

    it('refuses a working directory outside /workspace for a relative context', () => {
      expect(() => build('-t app .', '/src')).toThrow(/the build context '\/src.*' is outside \/workspace/);
    });

    it.each([
      'https://github.com/org/app.git',
      'https://example.com/context.tar.gz',
      'git://example.com/org/app',
      'git@github.com:org/app.git',
    ])('refuses the remote context %s', (context) => {
      expect(() => build(`-t app ${context}`)).toThrow(AcbError);
      expect(() => build(`-t app ${context}`)).toThrow(/is remote/);
    });

    // DEFECT (step-groups.ts buildStepGroup): a value-less `--build-arg VERSION` (docker: take it from the client's
    // environment, and when that has none leave the Dockerfile's `ARG VERSION=1.0` default) is parsed with an empty
    // environment into VERSION='' and handed to kaniko as `--build-arg=VERSION=` (REFIT_ARG_NAME_i/REFIT_ARG_VALUE_i),
    // so the build sees an empty VERSION where docker and acb see 1.0. Skipped: value-less arguments should be left
    // out (command.buildArgIndices tells which words had no `=`).
    it("leaves a value-less --build-arg out, so that the Dockerfile's default holds", () => {
      const names = container(build('-t app --build-arg VERSION --build-arg MODE=fast .'), 'build')
        .environmentVariables!.filter((e) => /^REFIT_ARG_NAME_\d+$/.test(e.name))
        .map((e) => e.value);

      expect(names).toEqual(['MODE']);
    });

    it("gives kaniko a task's registry logins in a secret volume, and ACI no registry password", () => {
      const group = build('-t app .');

      const config = group.volumes!.find((v) => v.name === 'docker-config')!.secret!['config.json']!;
      expect(JSON.parse(Buffer.from(config, 'base64').toString())).toEqual({
        auths: { [LOGIN_REGISTRY]: { auth: Buffer.from(`bob:${LOGIN_PASSWORD}`).toString('base64') } },
      });
      expect(container(group, 'build').volumeMounts).toContainEqual(
        expect.objectContaining({ name: 'docker-config', mountPath: '/kaniko/.docker' }),
      );
      expect(group.imageRegistryCredentials).toBeUndefined();
    });
  });

  describe('cmdStepGroup', () => {
    const yaml = `volumes:
  - name: creds
    secret:
      token.txt: c2VjcmV0
steps:
  - id: test
    cmd: ${LOGIN_REGISTRY}/tools/runner:1 --flag
    env: ['PASSWORD=${ENV_VALUE}', 'EMPTY']
    volumeMounts:
      - name: creds
        mountPath: /run/creds
`;
    const argv = ['/bin/run', '--password', ARGV_SECRET, 'two words', `it's "quoted"`, 'ünïcödé €'];

    function cmd(
      image = `${LOGIN_REGISTRY}/tools/runner:1`,
      overrides: Partial<StepGroupInputs> = {},
    ): ContainerGroup {
      const { task: t, step } = onlyStep(yaml);
      return cmdStepGroup(
        settings(),
        inputs({ step: 'test', ...overrides }),
        t,
        step,
        image,
        argv,
        '/workspace/sub',
      );
    }

    it("gives the step's env values, its command words, the report token and the SAS URLs only as secure values", () => {
      const group = cmd();

      const step = container(group, 'step');
      expect(env(step, 'PASSWORD')).toEqual({ name: 'PASSWORD', secureValue: ENV_VALUE });
      expect(env(step, 'EMPTY')).toEqual({ name: 'EMPTY', secureValue: '' });
      expect(step.command).toEqual(['/bin/sh', '-c', expect.any(String), 'refit-step']);
      expectNoSecretVisible(group, [ENV_VALUE, ARGV_SECRET, LOGIN_PASSWORD, REPORT_TOKEN, ...SAS_SIGNATURES]);
      expect(visible(group)).not.toContain('two words');
    });

    it('puts the command words in REFIT_ARGV, each a dot and its base64, decoding back to exactly the words', () => {
      const argvEnv = env(container(cmd(), 'step'), 'REFIT_ARGV')!;

      expect(argvEnv.value).toBeUndefined();
      expect(
        argvEnv.secureValue!.split(' ').map((w) => Buffer.from(w.slice(1), 'base64').toString('utf8')),
      ).toEqual(argv);
      expect(env(container(cmd(), 'step'), 'REFIT_WORKDIR')).toEqual({
        name: 'REFIT_WORKDIR',
        value: '/workspace/sub',
      });
    });

    it("mounts the task's secret volumes read-only as ACI secret volumes", () => {
      const group = cmd();

      expect(group.volumes).toContainEqual({ name: 'task-volume-0', secret: { 'token.txt': 'c2VjcmV0' } });
      expect(container(group, 'step').volumeMounts).toContainEqual({
        name: 'task-volume-0',
        mountPath: '/run/creds',
        readOnly: true,
      });
    });

    it('refuses a volumeMount naming a volume the task does not have', () => {
      // The task file's parser refuses it first; a task put together otherwise (a stored graph) meets this check.
      const { task: t, step } = onlyStep(yaml);
      const renamed = { ...step, volumeMounts: [{ name: 'nope', mountPath: '/run/creds' }] };
      const group = (): ContainerGroup =>
        cmdStepGroup(settings(), inputs(), t, renamed, 'alpine', ['true'], undefined);
      expect(group).toThrow(AcbError);
      expect(group).toThrow("volumeMounts names 'nope', which is not a volume");
    });

    it("pulls an image of a login's registry with that login's username and password", () => {
      expect(cmd().imageRegistryCredentials).toEqual([
        { server: LOGIN_REGISTRY, username: 'bob', password: LOGIN_PASSWORD },
      ]);
    });

    it('pulls an image of the home registry (one the run built) with the builder identity', () => {
      const group = cmd(`${HOME}/refit-runs/r1/app@sha256:${'a'.repeat(64)}`);
      expect(group.imageRegistryCredentials).toEqual([{ server: HOME, identity: IDENTITY }]);
      expect(group.identity?.userAssignedIdentities).toHaveProperty([IDENTITY]);
    });

    it('pulls an image of any other registry anonymously', () => {
      expect(cmd('registry.example.com/tools/runner:1').imageRegistryCredentials).toBeUndefined();
      expect(cmd('alpine:3.20').imageRegistryCredentials).toBeUndefined();
    });

    // DEFECT (group-spec.ts groupFrame): the registry of an image is taken as its first path segment, so a Docker Hub
    // image named without its registry (`org/private:1`, as a task writes it) is looked up as registry `org`: the task's
    // login for docker.io is not given to ACI, which then pulls the private image anonymously and fails. The local
    // executor matches logins by canonical name (RegistryNames.find). Left skipped: the fix is in the lead's file.
    it("pulls a private Docker Hub image named without its registry with the task's docker.io login", () => {
      const group = cmd('org/private:1', {
        logins: { 'docker.io': { username: 'hubuser', password: LOGIN_PASSWORD } },
      });
      expect(group.imageRegistryCredentials).toEqual([
        expect.objectContaining({ username: 'hubuser', password: LOGIN_PASSWORD }),
      ]);
    });
  });

  describe('cmdWords', () => {
    it('splits the command as acb does and resolves an image alias', () => {
      const { step } = onlyStep(`steps:\n  - cmd: bash -c 'echo "a b"' "it's"\n`);
      expect(cmdWords(step, { bash: 'mcr.microsoft.com/azure-cli:2' })).toEqual({
        image: 'mcr.microsoft.com/azure-cli:2',
        args: ['-c', 'echo "a b"', "it's"],
      });
    });
  });

  describe('pushStepGroup', () => {
    it("copies each image from where the run has it to its name, with kaniko's logins in a secret volume", () => {
      const pushes = [
        { from: `${HOME}/refit-runs/r1/app@sha256:${'b'.repeat(64)}`, to: `${LOGIN_REGISTRY}/team/app:v1` },
        { from: 'alpine:3.20', to: `${HOME}/mirror/alpine:3.20` },
      ];
      const group = pushStepGroup(
        settings(),
        inputs({ step: 'push', workspaceIns: [], workspaceOut: undefined }),
        pushes,
      );

      const push = container(group, 'push');
      expect(push.environmentVariables).toEqual(
        expect.arrayContaining([
          { name: 'REFIT_PUSH_COUNT', value: '2' },
          { name: 'REFIT_PUSH_FROM_0', value: pushes[0]!.from },
          { name: 'REFIT_PUSH_TO_0', value: pushes[0]!.to },
          { name: 'REFIT_PUSH_FROM_1', value: pushes[1]!.from },
          { name: 'REFIT_PUSH_TO_1', value: pushes[1]!.to },
        ]),
      );
      expect(group.volumes!.map((v) => v.name)).toContain('docker-config');
      expectNoSecretVisible(group, [LOGIN_PASSWORD, REPORT_TOKEN, ...SAS_SIGNATURES]);
    });
  });

  describe('every group', () => {
    const { task: t, step: cmdStep } = onlyStep('steps:\n  - cmd: alpine echo hi\n');
    const groups: [string, ContainerGroup][] = [
      [
        'source',
        sourceGroup(settings(), inputs({ step: '@source', workspaceIns: [] }), {
          kind: 'archive',
          url: ARCHIVE_SAS,
          folder: '',
        }),
      ],
      ['build', build('-t app .')],
      ['cmd', cmdStepGroup(settings(), inputs(), t, cmdStep, 'alpine', ['echo', 'hi'], undefined)],
      ['push', pushStepGroup(settings(), inputs({ workspaceOut: undefined }), [{ from: 'a:1', to: 'b:1' }])],
    ];

    it.each(groups)(
      '%s: runs once (restartPolicy Never) with the reporter, which has the report token and its state',
      (_kind, group) => {
        expect(group.restartPolicy).toBe('Never');
        const report = container(group, 'report');
        expect(env(report, 'REFIT_REPORT_TOKEN')).toEqual({
          name: 'REFIT_REPORT_TOKEN',
          secureValue: REPORT_TOKEN,
        });
        expect(env(report, 'REFIT_STATE')).toEqual({ name: 'REFIT_STATE', value: STEP_STATE });
        expect(report.volumeMounts).toContainEqual({ name: 'state', mountPath: STEP_STATE });
        expect(group.tags).toEqual({ 'refit-run': 'r1' });
      },
    );
  });
});

/**
 * Runs a container of a group with the host's sh, as the fake ACI does: its mount paths (and `programs`, e.g. kaniko's
 * executor) rewritten, whole paths only, to folders of `root`; its environment its plain and secure values. Resolves
 * with the state and workspace folders and the exit code.
 */
async function runContainer(
  c: Pick<Container, 'command' | 'environmentVariables'>,
  root: string,
  programs: Readonly<Record<string, string>> = {},
): Promise<{ state: string; workspace: string; code: number | null }> {
  const state = join(root, 'state');
  const workspace = join(root, 'workspace');
  mkdirSync(state, { recursive: true });
  mkdirSync(workspace, { recursive: true });
  const targets = new Map<string, string>([
    ...Object.entries(programs),
    [STEP_STATE, state],
    [STEP_WORKSPACE, workspace],
  ]);
  const pattern = new RegExp(
    `(?<![\\w.-])(${[...targets.keys()].map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})(?![\\w.-])`,
    'g',
  );
  const rewrite = (text: string): string => text.replace(pattern, (p) => targets.get(p)!);
  const [program, ...args] = c.command!.map(rewrite);
  const environment: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  for (const e of c.environmentVariables ?? []) environment[e.name] = rewrite(e.value ?? e.secureValue ?? '');
  const child = spawn(program!, args, { env: environment, stdio: 'ignore', timeout: 20000 });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve(status));
  });
  return { state, workspace, code };
}

describe('executors/aci/builder-scripts', () => {
  describe('STEP_SCRIPT', () => {
    let root: string;
    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), 'refit-step-script-'));
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    function stepContainer(argv: readonly string[], workdir: string | undefined): Container {
      const { task: t, step } = onlyStep('steps:\n  - cmd: alpine true\n');
      return container(cmdStepGroup(settings(), inputs(), t, step, 'alpine', argv, workdir), 'step');
    }

    it("runs exactly the step's words (spaces, quotes, $, globs, unicode) in its working directory, and records the exit code", async () => {
      const words = ['two words', `it's`, '"double"', '$HOME', '*', 'ünïcödé €', '--flag=a b'];
      const c = stepContainer(
        ['sh', '-c', 'pwd; printf "<%s>\\n" "$@"; exit 7', 'argv0', ...words],
        '/workspace/sub',
      );
      mkdirSync(join(root, 'workspace', 'sub'), { recursive: true });

      const { state, workspace, code } = await runContainer(c, root);

      expect(code).toBe(0);
      expect(readFileSync(join(state, 'exit'), 'utf8').trim()).toBe('7');
      expect(readFileSync(join(state, 'build.log'), 'utf8')).toBe(
        [join(workspace, 'sub'), ...words.map((w) => `<${w}>`)].join('\n') + '\n',
      );
    });

    it("passes empty words and words ending in newlines on exactly (`sed -i ''`, a script ending in a newline)", async () => {
      const c = stepContainer(
        ['sh', '-c', 'printf "<%s>" "$@"', 'argv0', 'a', '', 'b', 'line\n\n', '\n'],
        undefined,
      );

      const { state } = await runContainer(c, root);

      expect(readFileSync(join(state, 'build.log'), 'utf8')).toBe('<a><><b><line\n\n><\n>');
    });

    it("runs in the image's working directory when the step gives none, and hides REFIT_ARGV from the command", async () => {
      const c = stepContainer(
        ['sh', '-c', 'echo "argv=${REFIT_ARGV-unset} workdir=${REFIT_WORKDIR-unset}"'],
        undefined,
      );

      const { state } = await runContainer(c, root);

      expect(readFileSync(join(state, 'build.log'), 'utf8')).toBe('argv=unset workdir=unset\n');
      expect(readFileSync(join(state, 'exit'), 'utf8').trim()).toBe('0');
    });

    it('records exit 1 and an error when the working directory cannot be entered, without running the command', async () => {
      const c = stepContainer(['sh', '-c', 'echo ran'], '/workspace/missing');

      const { state } = await runContainer(c, root);

      expect(readFileSync(join(state, 'exit'), 'utf8').trim()).toBe('1');
      expect(readFileSync(join(state, 'error'), 'utf8')).toMatch(
        /the working directory .*missing could not be entered/,
      );
      expect(readFileSync(join(state, 'build.log'), 'utf8')).not.toContain('ran');
    });

    it('reports `restarted` when the platform starts the container again after it died mid-step, and does not run the command twice', async () => {
      // The first start dies mid-way: the command kills the script's shell, as an evicted container ends.
      const c = stepContainer(['sh', '-c', 'echo ran >> count; kill -9 $PPID'], '/workspace');

      const first = await runContainer(c, root);
      expect(existsSync(join(first.state, 'started'))).toBe(true);
      expect(existsSync(join(first.state, 'exit'))).toBe(false);

      const second = await runContainer(c, root);

      expect(second.code).toBe(0);
      expect(readFileSync(join(second.state, 'restarted'), 'utf8').trim()).toBe('restarted');
      expect(readFileSync(join(second.state, 'exit'), 'utf8').trim()).toBe('1');
      expect(readFileSync(join(second.workspace, 'count'), 'utf8')).toBe('ran\n');
    });

    it('does nothing when started again after the step ended', async () => {
      const c = stepContainer(['sh', '-c', 'echo ran >> count; exit 3'], '/workspace');

      await runContainer(c, root);
      const again = await runContainer(c, root);

      expect(readFileSync(join(again.state, 'exit'), 'utf8').trim()).toBe('3');
      expect(existsSync(join(again.state, 'restarted'))).toBe(false);
      expect(readFileSync(join(again.workspace, 'count'), 'utf8')).toBe('ran\n');
    });
  });

  describe('RESTORE_SCRIPT', () => {
    let root: string;
    let server: Server;
    let base: string;
    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), 'refit-restore-script-'));
      // Two workspaces a step starts from: the later one's files win, as its dependencies ran later.
      const a = join(root, 'a');
      const b = join(root, 'b');
      mkdirSync(join(a, 'src'), { recursive: true });
      mkdirSync(join(b, 'app'), { recursive: true });
      writeFileSync(join(a, 'src', 'main.c'), 'int main;\n');
      writeFileSync(join(a, 'shared.txt'), 'from a\n');
      writeFileSync(join(b, 'shared.txt'), 'from b\n');
      writeFileSync(join(b, 'app', 'Dockerfile'), 'FROM scratch\nCOPY src /src\n');
      for (const name of ['a', 'b'])
        execFileSync('tar', ['-czf', join(root, `${name}.tar.gz`), '-C', join(root, name), '.']);
      server = createServer((req, res) => {
        const file = join(root, (req.url ?? '').split('?')[0]!.slice(1));
        if (!/^\/[ab]\.tar\.gz\?/.test(req.url ?? '') || !existsSync(file)) {
          res.statusCode = 404;
          return res.end();
        }
        res.end(readFileSync(file));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((r) => server.close(r));
      rmSync(root, { recursive: true, force: true });
    });

    function restoreOf(ins: string[], line = '-t app -f app/Dockerfile .'): InitContainerDefinition {
      return build(line, STEP_WORKSPACE, inputs({ workspaceIns: ins })).initContainers![0]!;
    }

    it("extracts the step's workspaces in order and keeps its Dockerfile for the report", async () => {
      const run = mkdtempSync(join(root, 'run-'));

      const { state, workspace } = await runContainer(
        restoreOf([`${base}/a.tar.gz?sig=1`, `${base}/b.tar.gz?sig=2`]),
        run,
      );

      expect(readFileSync(join(workspace, 'src', 'main.c'), 'utf8')).toBe('int main;\n');
      expect(readFileSync(join(workspace, 'shared.txt'), 'utf8')).toBe('from b\n');
      expect(readFileSync(join(state, 'Dockerfile'), 'utf8')).toBe('FROM scratch\nCOPY src /src\n');
      expect(existsSync(join(state, 'exit'))).toBe(false);
    });

    it('records exit 1 and why when a workspace cannot be downloaded', async () => {
      const run = mkdtempSync(join(root, 'run-'));

      const { state, workspace } = await runContainer(
        restoreOf([`${base}/gone.tar.gz?sig=1`, `${base}/a.tar.gz?sig=2`]),
        run,
      );

      expect(readFileSync(join(state, 'exit'), 'utf8').trim()).toBe('1');
      expect(readFileSync(join(state, 'error'), 'utf8')).toContain(
        'the workspace the step starts from could not be downloaded',
      );
      expect(existsSync(join(workspace, 'shared.txt'))).toBe(false);
    });

    it("leaves the step's command unrun when its workspace could not be restored", async () => {
      const run = mkdtempSync(join(root, 'run-'));
      const { task: t, step } = onlyStep('steps:\n  - cmd: alpine true\n');
      const group = cmdStepGroup(
        settings(),
        inputs({ workspaceIns: [`${base}/gone.tar.gz?sig=1`] }),
        t,
        step,
        'alpine',
        ['sh', '-c', 'echo ran > ran.txt'],
        '/workspace',
      );

      await runContainer(group.initContainers![0]!, run);
      const { state, workspace } = await runContainer(container(group, 'step'), run);

      expect(existsSync(join(workspace, 'ran.txt'))).toBe(false);
      expect(readFileSync(join(state, 'exit'), 'utf8').trim()).toBe('1');
    });
  });

  describe('PUSH_SCRIPT', () => {
    let root: string;
    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), 'refit-push-script-'));
      // kaniko's executor, played: it records what it was asked, fails for a destination named `fail`, and writes
      // the image file as kaniko does.
      writeFileSync(
        join(root, 'executor'),
        `#!/bin/sh
dst='' dockerfile='' images=''
for a in "$@"; do
  case "$a" in
    --destination=*) dst=\${a#--destination=} ;;
    --dockerfile=*) dockerfile=\${a#--dockerfile=} ;;
    --image-name-tag-with-digest-file=*) images=\${a#--image-name-tag-with-digest-file=} ;;
  esac
done
echo "$dst <- $(cat "$dockerfile")" >> "${join(root, 'calls')}"
case "$dst" in *fail*) exit 5 ;; esac
echo "$dst@sha256:${'c'.repeat(64)}" > "$images"
`,
        { mode: 0o755 },
      );
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    const programs = (): Record<string, string> => ({
      '/busybox/sh': '/bin/sh',
      '/kaniko/executor': join(root, 'executor'),
    });

    it('copies each image from where the run has it to its name, in order, and lists what it pushed', async () => {
      const built = `${HOME}/refit-runs/r1/app@sha256:${'b'.repeat(64)}`;
      const group = pushStepGroup(settings(), inputs({ workspaceOut: undefined }), [
        { from: built, to: `${LOGIN_REGISTRY}/team/app:v1` },
        { from: 'alpine:3.20', to: `${HOME}/mirror/alpine:3.20` },
      ]);

      const { state } = await runContainer(container(group, 'push'), root, programs());

      expect(readFileSync(join(root, 'calls'), 'utf8')).toBe(
        `${LOGIN_REGISTRY}/team/app:v1 <- FROM ${built}\n${HOME}/mirror/alpine:3.20 <- FROM alpine:3.20\n`,
      );
      expect(readFileSync(join(state, 'exit'), 'utf8').trim()).toBe('0');
      expect(readFileSync(join(state, 'images'), 'utf8')).toBe(
        `${LOGIN_REGISTRY}/team/app:v1@sha256:${'c'.repeat(64)}\n${HOME}/mirror/alpine:3.20@sha256:${'c'.repeat(64)}\n`,
      );
    });

    it("ends the step at the first failed copy, with that copy's exit code", async () => {
      const group = pushStepGroup(settings(), inputs({ workspaceOut: undefined }), [
        { from: 'a:1', to: 'registry.example.com/fail:1' },
        { from: 'b:1', to: 'registry.example.com/b:1' },
      ]);

      const { state } = await runContainer(container(group, 'push'), root, programs());

      expect(readFileSync(join(state, 'exit'), 'utf8').trim()).toBe('5');
      expect(readFileSync(join(root, 'calls'), 'utf8')).toBe('registry.example.com/fail:1 <- FROM a:1\n');
    });
  });
});
