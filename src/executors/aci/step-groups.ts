import type {
  Container,
  ContainerGroup,
  InitContainerDefinition,
  Volume,
  VolumeMount,
} from '@azure/arm-containerinstance';
import { parseBuildCommand, splitWords } from '../../acb/command-line';
import { AcbError } from '../../acb/errors';
import type { AcbStep, AcbTask } from '../../acb/task-file';
import type { Platform } from '../../runs/run';
import { isGitSource } from '../../sources/source-path';
import type { AciSettings } from './aci-settings';
import {
  BUILD_SCRIPT,
  FETCH_SCRIPT,
  PUSH_SCRIPT,
  RESTORE_SCRIPT,
  STEP_SCRIPT,
  STEP_STATE,
  STEP_WORKSPACE,
  WORKSPACE,
} from './builder-scripts';
import {
  DOCKER_CONFIG_MOUNT,
  dockerConfigVolume,
  groupFrame,
  plainEnv as plain,
  reporterContainer,
  secretArgsEnv,
  secureEnv as secure,
  sourceEnv,
  type GroupSource,
  type ReporterInputs,
} from './group-spec';

/** What a step attempt's group is given besides the step: where it reports, its workspaces, its logins. */
export interface StepGroupInputs extends ReporterInputs {
  readonly runId: string;
  /** The run's agentConfiguration.cpu: the cores of the step's main container. */
  readonly cpu: number;
  /** The step's key (its index, or `@source` for the group that fetches the source) and the attempt's, for the report. */
  readonly step: string;
  /** The step's ID, which its lines in the log are prefixed with (none for the source). */
  readonly label: string;
  readonly attempt: string;
  /** Read SAS URLs of the workspaces the step starts from, extracted in this order. */
  readonly workspaceIns: readonly string[];
  /** A write SAS URL for the workspace the step leaves (undefined: it changes none, as a push step). */
  readonly workspaceOut: string | undefined;
  readonly insecureRegistries: readonly string[];
}

/** The name the reporter prefixes the step's lines with, as the local executor does. */
const prefix = (label: string): string => (label ? `[${label}] ` : '');

const STATE: VolumeMount = { name: 'state', mountPath: STEP_STATE };
const WORKSPACE_MOUNT: VolumeMount = { name: 'workspace', mountPath: STEP_WORKSPACE };
/** kaniko sees the workspace elsewhere: it leaves mounted paths out of the image, and Dockerfiles use /workspace. */
const KANIKO_WORKSPACE: VolumeMount = { name: 'workspace', mountPath: WORKSPACE };

function baseVolumes(): Volume[] {
  return [
    { name: 'state', emptyDir: {} },
    { name: 'workspace', emptyDir: {} },
  ];
}

function restoreContainer(
  settings: AciSettings,
  inputs: StepGroupInputs,
  dockerfile?: string,
  fromMap: Readonly<Record<string, string>> = {},
): InitContainerDefinition {
  return {
    name: 'restore',
    image: settings.helperImage,
    command: ['sh', '-c', RESTORE_SCRIPT],
    environmentVariables: [
      plain('REFIT_WORKSPACE_INS', String(inputs.workspaceIns.length)),
      ...inputs.workspaceIns.map((url, i) => secure(`REFIT_WORKSPACE_IN_${i}`, url)),
      ...(dockerfile ? [plain('REFIT_DOCKERFILE', dockerfile)] : []),
      ...(Object.keys(fromMap).length > 0
        ? [
            plain(
              'REFIT_FROM_MAP',
              Object.entries(fromMap)
                .map(([name, scoped]) => `${name} ${scoped}`)
                .join('\n'),
            ),
          ]
        : []),
    ],
    volumeMounts: [STATE, WORKSPACE_MOUNT],
  };
}

function reporter(
  settings: AciSettings,
  inputs: StepGroupInputs,
  extra: { startGrace?: number; noMain?: boolean; workspaceDir?: string } = {},
): Container {
  return reporterContainer(
    inputs.runId,
    settings,
    inputs,
    true,
    [
      ...(extra.noMain ? [plain('REFIT_NO_MAIN', '1')] : []),
      plain('REFIT_STATE', STEP_STATE),
      plain('REFIT_STEP', inputs.step),
      plain('REFIT_ATTEMPT', inputs.attempt),
      plain('REFIT_LOG_PREFIX', prefix(inputs.label)),
      ...(extra.startGrace ? [plain('REFIT_START_GRACE', String(extra.startGrace))] : []),
      ...(inputs.workspaceOut
        ? [
            secure('REFIT_WORKSPACE_OUT_URL', inputs.workspaceOut),
            plain('REFIT_WORKSPACE_DIR', extra.workspaceDir ?? STEP_WORKSPACE),
          ]
        : []),
    ],
    [STATE, WORKSPACE_MOUNT],
  );
}

/** kaniko's flags for the registries: the insecure ones, and its log level. */
function registryFlags(inputs: StepGroupInputs): string[] {
  return [
    ...inputs.insecureRegistries.flatMap((r) => [
      `--insecure-registry=${r}`,
      `--skip-tls-verify-registry=${r}`,
    ]),
    '--verbosity=info',
  ];
}

/**
 * The group that fetches a run's source (git or a URL) into the workspace the first steps start from: the fetch
 * script as an init container, then the reporter alone, which saves the workspace and reports the commit.
 */
export function sourceGroup(
  settings: AciSettings,
  inputs: StepGroupInputs,
  source: GroupSource,
): ContainerGroup {
  const fetch: InitContainerDefinition = {
    name: 'fetch',
    image: settings.helperImage,
    command: ['sh', '-c', FETCH_SCRIPT],
    environmentVariables: [
      ...sourceEnv(source),
      plain('REFIT_STATE', STEP_STATE),
      plain('REFIT_SOURCE_DEST', STEP_WORKSPACE),
    ],
    volumeMounts: [STATE, WORKSPACE_MOUNT],
  };
  return groupFrame(settings, inputs, true, [settings.helperImage], {
    volumes: baseVolumes(),
    initContainers: [fetch],
    // No main container: the fetch has ended when the reporter starts, so it marks the end itself. The workspace the
    // steps start from is the source's context folder (`repo#branch:folder`), as acb checks it out.
    containers: [
      reporter(settings, inputs, {
        noMain: true,
        workspaceDir: `${STEP_WORKSPACE}/${source.folder}`.replace(/\/+$/, ''),
      }),
    ],
  });
}

/** A platform as kaniko's `--custom-platform` takes it. */
export function platformFlag(platform: Platform): string {
  return `${platform.os.toLowerCase()}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
}

/** The build flags a build step may give in ACI, and what kaniko makes of them. */
const IGNORED_BUILD_FLAGS = new Set([
  '--no-cache',
  '--pull',
  '-q',
  '--quiet',
  '--rm',
  '--force-rm',
  '--progress',
]);

/**
 * A build step's group: kaniko builds the step's context in the workspace and pushes each `-t` image to its
 * run-scoped name in the home registry (`scoped`), where later steps of the run pull it; the step's own names are
 * given only by a push step. Build arguments go through the environment (ACI secure values): a task file renders
 * secrets into them. `built`: the images earlier steps built (name → run-scoped reference), which a FROM or COPY
 * --from of this build names by their run-scoped copies (a name given through a build argument is not mapped).
 */
export function buildStepGroup(
  settings: AciSettings,
  inputs: StepGroupInputs,
  step: AcbStep,
  platform: Platform,
  scoped: (image: string) => string,
  workdir: string,
  built: Readonly<Record<string, string>> = {},
): ContainerGroup {
  const command = parseBuildCommand(step.build!, {});
  const refused = command.flags.find(
    (f) =>
      !['-t', '--tag', '-f', '--file', '--build-arg', '--target', '--platform', '--label'].includes(f) &&
      !IGNORED_BUILD_FLAGS.has(f),
  );
  if (refused !== undefined)
    throw new AcbError(
      `build: the flag '${refused}' is not supported in Azure Container Instances (kaniko builds there; supported: -t -f --build-arg --target --platform --label --no-cache --pull)`,
    );
  if (/^[a-z+]+:\/\//i.test(command.context) || isGitSource(command.context))
    throw new AcbError(
      `build: the context '${command.context}' is remote: in Azure Container Instances a build step builds a folder of the workspace`,
    );
  const at = (path: string): string => (path.startsWith('/') ? path : `${workdir}/${path}`);
  const context = at(command.context).replace(/\/+$/, '') || '/';
  const dockerfile = command.file ? at(command.file) : `${context}/Dockerfile`;
  const inside = (path: string, what: string): string => {
    const normal = path.split('/').reduce<string[]>((parts, p) => {
      if (p === '..') parts.pop();
      else if (p && p !== '.') parts.push(p);
      return parts;
    }, []);
    if (normal[0] !== STEP_WORKSPACE.slice(1))
      throw new AcbError(`build: ${what} '${path}' is outside ${STEP_WORKSPACE}`);
    return normal.slice(1).join('/');
  };
  const relContext = inside(context, 'the build context');
  const relDockerfile = inside(dockerfile, 'the Dockerfile');
  const flagValues = (names: readonly string[]): string[] =>
    command.words.flatMap((w, i) => {
      for (const n of names) {
        if (w === n && command.words[i + 1] !== undefined) return [command.words[i + 1]!];
        if (w.startsWith(`${n}=`)) return [w.slice(n.length + 1)];
      }
      return [];
    });
  // A value-less `--build-arg NAME` takes NAME from the client's environment, which a build in ACI does not have:
  // left out, so that the Dockerfile's default holds (as docker does when the variable is unset).
  const valueless = new Set(
    command.buildArgIndices
      .map((i) => command.words[i]!.replace(/^--build-arg=/, ''))
      .filter((w) => !w.includes('=')),
  );
  const args = Object.entries(command.buildArgs)
    .filter(([name]) => !valueless.has(name))
    .map(([name, value]) => ({ name, value }));
  const kaniko = [
    `--context=dir://${WORKSPACE}/${relContext}`.replace(/\/$/, ''),
    // Images earlier steps built are named by their run-scoped copies in a copy of the Dockerfile (RESTORE_SCRIPT).
    Object.keys(built).length > 0
      ? `--dockerfile=${STEP_STATE}/Dockerfile.build`
      : `--dockerfile=${WORKSPACE}/${relDockerfile}`,
    ...(command.tags.length > 0 ? command.tags.map((t) => `--destination=${scoped(t)}`) : ['--no-push']),
    ...(command.target ? [`--target=${command.target}`] : []),
    `--custom-platform=${flagValues(['--platform'])[0] ?? platformFlag(platform)}`,
    ...flagValues(['--label']).map((l) => `--label=${l}`),
    ...registryFlags(inputs),
    `--digest-file=${STEP_STATE}/digest`,
    `--image-name-tag-with-digest-file=${STEP_STATE}/images`,
  ];
  const hasLogins = Object.keys(inputs.logins).length > 0;
  return groupFrame(settings, { ...inputs, logins: {} }, true, [settings.kanikoImage, settings.helperImage], {
    volumes: [...baseVolumes(), ...(hasLogins ? [dockerConfigVolume(inputs.logins)] : [])],
    initContainers: [restoreContainer(settings, inputs, relDockerfile, built)],
    containers: [
      {
        name: 'build',
        image: settings.kanikoImage,
        command: ['/busybox/sh', '-c', BUILD_SCRIPT, 'refit-build', ...kaniko],
        resources: { requests: { cpu: inputs.cpu, memoryInGB: settings.memoryGb } },
        environmentVariables: [
          plain('AZURE_CLIENT_ID', settings.identityClientId),
          plain('REFIT_STATE', STEP_STATE),
          ...secretArgsEnv(args),
        ],
        volumeMounts: [STATE, KANIKO_WORKSPACE, ...(hasLogins ? [DOCKER_CONFIG_MOUNT] : [])],
      },
      reporter(settings, inputs),
    ],
  });
}

/** ACI volume names are lowercase letters, digits and dashes: a task's volume is named by its index. */
const volumeName = (index: number): string => `task-volume-${index}`;

/**
 * A cmd step's group: the step's image (an image the run built is pulled from its run-scoped name) runs the command
 * through STEP_SCRIPT with the image's own /bin/sh, in the workspace at /workspace as acb mounts it, with the step's
 * environment (every value a secure value: a task file renders secrets into them) and the task's secret volumes.
 */
export function cmdStepGroup(
  settings: AciSettings,
  inputs: StepGroupInputs,
  task: AcbTask,
  step: AcbStep,
  image: string,
  argv: readonly string[],
  workdir: string | undefined,
): ContainerGroup {
  const volumes = task.volumes.map((v, i): Volume => ({ name: volumeName(i), secret: { ...v.secret } }));
  const mounts = step.volumeMounts.map((m): VolumeMount => {
    const index = task.volumes.findIndex((v) => v.name === m.name);
    if (index < 0)
      throw new AcbError(`step ${step.id}: volumeMounts names '${m.name}', which is not a volume`);
    return { name: volumeName(index), mountPath: m.mountPath, readOnly: true };
  });
  const env = step.env.map((e) => {
    const eq = e.indexOf('=');
    return eq > 0 ? secure(e.slice(0, eq), e.slice(eq + 1)) : secure(e, '');
  });
  return groupFrame(settings, inputs, true, [image, settings.helperImage], {
    volumes: [...baseVolumes(), ...volumes],
    initContainers: [restoreContainer(settings, inputs)],
    containers: [
      {
        name: 'step',
        image,
        command: ['/bin/sh', '-c', STEP_SCRIPT, 'refit-step'],
        resources: { requests: { cpu: inputs.cpu, memoryInGB: settings.memoryGb } },
        environmentVariables: [
          plain('HOME', '/acb/home'),
          ...env,
          secure('REFIT_ARGV', argv.map((w) => `.${Buffer.from(w).toString('base64')}`).join(' ')),
          plain('REFIT_WORKDIR', workdir ?? ''),
        ],
        volumeMounts: [STATE, WORKSPACE_MOUNT, ...mounts],
      },
      reporter(settings, inputs, { startGrace: 120 }),
    ],
  });
}

/** A cmd step's command words: the image alias resolved, its arguments split as acb does. */
export function cmdWords(
  step: AcbStep,
  aliases: Readonly<Record<string, string>>,
): { image: string; args: string[] } {
  const [first, ...args] = splitWords(step.cmd!);
  if (!first) throw new AcbError(`step ${step.id}: the cmd is empty`);
  return { image: aliases[first] ?? first, args };
}

/** A push step's group: kaniko copies each image from where the run has it to its name (PUSH_SCRIPT). */
export function pushStepGroup(
  settings: AciSettings,
  inputs: StepGroupInputs,
  pushes: readonly { readonly from: string; readonly to: string }[],
): ContainerGroup {
  const hasLogins = Object.keys(inputs.logins).length > 0;
  return groupFrame(settings, { ...inputs, logins: {} }, true, [settings.kanikoImage, settings.helperImage], {
    volumes: [...baseVolumes(), ...(hasLogins ? [dockerConfigVolume(inputs.logins)] : [])],
    containers: [
      {
        name: 'push',
        image: settings.kanikoImage,
        command: ['/busybox/sh', '-c', PUSH_SCRIPT, 'refit-push', ...registryFlags(inputs)],
        resources: { requests: { cpu: inputs.cpu, memoryInGB: settings.memoryGb } },
        environmentVariables: [
          plain('AZURE_CLIENT_ID', settings.identityClientId),
          plain('REFIT_PUSH_COUNT', String(pushes.length)),
          ...pushes.flatMap((p, i) => [
            plain(`REFIT_PUSH_FROM_${i}`, p.from),
            plain(`REFIT_PUSH_TO_${i}`, p.to),
          ]),
        ],
        volumeMounts: [STATE, ...(hasLogins ? [DOCKER_CONFIG_MOUNT] : [])],
      },
      reporter(settings, inputs),
    ],
  });
}
