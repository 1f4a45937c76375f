import type {
  Container,
  ContainerGroup,
  EnvironmentVariable,
  Volume,
  VolumeMount,
} from '@azure/arm-containerinstance';
import type { RegistryCredentials } from '../../registry/auth';
import { parseImageReference } from '../../registry/image-reference';
import { parseGitSource } from '../../sources/git-source';
import type { DockerBuildSpec, Run } from '../../runs/run';
import type { AciSettings } from './aci-settings';
import { BUILD_SCRIPT, FETCH_SCRIPT, REPORT_SCRIPT, STATE_DIR, WORKSPACE } from './builder-scripts';

/** A run of a Docker build (a quick build or a Docker task): what the aci executor runs. */
export type DockerRun = Run & { readonly spec: DockerBuildSpec };

/** Where the build's source comes from, as the fetch container reads it. */
export type GroupSource =
  | { readonly kind: 'archive'; readonly url: string; readonly folder: string }
  | {
      readonly kind: 'git';
      readonly url: string;
      readonly ref: string | undefined;
      readonly commit: string | undefined;
      readonly folder: string;
      readonly token: string | undefined;
    };

/** What a build's container group is made of besides the run: URLs with their SAS, secrets, logins. */
export interface GroupInputs {
  readonly source: GroupSource;
  /** The run's log blob, with an append SAS. */
  readonly logUrl: string;
  /** The run-completions queue's messages URL, with a send SAS or without (the identity's token then). */
  readonly reportUrl: string;
  /** Build arguments by name, with their values (secret ones are marked). */
  readonly buildArgs: readonly {
    readonly name: string;
    readonly value: string;
    readonly isSecret: boolean;
  }[];
  /** Logins for registries other than the home one (the identity signs in to the home registry). */
  readonly logins: Readonly<Record<string, RegistryCredentials>>;
  /** Registries reached over plain HTTP or without verifying TLS (REFIT_INSECURE_REGISTRIES). */
  readonly insecureRegistries: readonly string[];
  /** Every secret value the log must not show. */
  readonly masks: readonly string[];
  /** The run's completion token: the reporter sends it with the report, and a report without it is dropped. */
  readonly reportToken: string;
  /** The most the reporter ships to the log (REFIT_MAX_LOG_BYTES). */
  readonly maxLogBytes: number;
  /** The home registry: the images of the group pulled from it are pulled with the builder identity. */
  readonly homeRegistry: string;
  /** Tags and labels put on the group, so that the reconcile sweep finds this deployment's groups. */
  readonly tags: Readonly<Record<string, string>>;
}

/** The cores the reporter container takes beside the build. */
export const REPORTER_CORES = 0.25;
const REPORTER_MEMORY_GB = 0.5;

const plain = (name: string, value: string): EnvironmentVariable => ({ name, value });
const secure = (name: string, value: string): EnvironmentVariable => ({ name, secureValue: value });

/**
 * kaniko's flags for the run: everything but secret build arguments (those come from the environment). kaniko keeps
 * no layer cache unless asked (`--cache`), so every build is a `noCache` one.
 */
export function kanikoArgs(run: DockerRun, inputs: GroupInputs): string[] {
  const spec = run.spec;
  const contextDir = `${WORKSPACE}/context/${inputs.source.folder}`.replace(/\/+$/, '');
  const platform = `${run.platform.os.toLowerCase()}/${run.platform.architecture}${run.platform.variant ? `/${run.platform.variant}` : ''}`;
  return [
    `--context=dir://${contextDir}`,
    `--dockerfile=${contextDir}/${spec.dockerFilePath}`,
    ...(spec.isPushEnabled && spec.imageNames.length > 0 && !run.untrustedSource
      ? spec.imageNames.map((image) => `--destination=${image}`)
      : ['--no-push']),
    ...inputs.buildArgs.filter((a) => !a.isSecret).map((a) => `--build-arg=${a.name}=${a.value}`),
    ...(spec.target ? [`--target=${spec.target}`] : []),
    `--custom-platform=${platform}`,
    ...inputs.insecureRegistries.flatMap((r) => [
      `--insecure-registry=${r}`,
      `--skip-tls-verify-registry=${r}`,
    ]),
    `--digest-file=${STATE_DIR}/digest`,
    `--image-name-tag-with-digest-file=${STATE_DIR}/images`,
    '--verbosity=info',
  ];
}

/**
 * The reporter masks line by line: a secret of several lines (a PEM key, a JSON credential) is masked by each of its
 * lines, those long enough not to mask ordinary words.
 */
export function maskLines(secrets: readonly string[]): string[] {
  const lines = secrets.flatMap((secret) =>
    secret.includes('\n')
      ? secret
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l.length >= 8)
      : [secret],
  );
  return [...new Set(lines.filter((l) => l.length > 0))];
}

/** The Docker config kaniko reads for registries other than the home one (base64, for a secret volume). */
function dockerConfig(logins: Readonly<Record<string, RegistryCredentials>>): string {
  const auths = Object.fromEntries(
    Object.entries(logins).map(([registry, c]) => [
      registry,
      { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') },
    ]),
  );
  return Buffer.from(JSON.stringify({ auths })).toString('base64');
}

/** What every group of a run shares: where it reports, what it masks, how it signs in. */
export type ReporterInputs = Pick<
  GroupInputs,
  'logUrl' | 'reportUrl' | 'reportToken' | 'masks' | 'maxLogBytes' | 'homeRegistry' | 'logins' | 'tags'
>;

/** The reporter container: ships the group's log, then sends its report (see REPORT_SCRIPT). */
export function reporterContainer(
  runId: string,
  settings: AciSettings,
  inputs: ReporterInputs,
  trusted: boolean,
  env: readonly EnvironmentVariable[],
  volumeMounts: readonly VolumeMount[],
): Container {
  return {
    name: 'report',
    image: settings.helperImage,
    command: ['sh', '-c', REPORT_SCRIPT],
    resources: { requests: { cpu: REPORTER_CORES, memoryInGB: REPORTER_MEMORY_GB } },
    environmentVariables: [
      plain('REFIT_RUN_ID', runId),
      ...(trusted ? [plain('AZURE_CLIENT_ID', settings.identityClientId)] : []),
      plain('REFIT_MAX_LOG_BYTES', String(inputs.maxLogBytes)),
      secure('REFIT_LOG_URL', inputs.logUrl),
      secure('REFIT_REPORT_URL', inputs.reportUrl),
      secure('REFIT_REPORT_TOKEN', inputs.reportToken),
      secure('REFIT_MASKS', maskLines(inputs.masks).join('\n')),
      ...env,
    ],
    volumeMounts: [...volumeMounts],
  };
}

/**
 * A group's frame: location, tags, the builder identity when trusted (a fork's pull request gets none: its RUN steps
 * could otherwise take the identity's tokens), restartPolicy Never, Spot if asked, the subnet, and how ACI signs in
 * to pull its images (the identity for the home registry, the task's logins for others).
 */
export function groupFrame(
  settings: AciSettings,
  inputs: ReporterInputs,
  trusted: boolean,
  images: readonly string[],
  parts: Pick<ContainerGroup, 'volumes' | 'initContainers' | 'containers'>,
): ContainerGroup {
  // Registries compared as the image references name them (`org/app` is Docker Hub's), logins by the same rule.
  const registryOf = (image: string): string => {
    try {
      return parseImageReference(image).registry;
    } catch {
      return image.split('/')[0]!;
    }
  };
  const fromHome = images.some((image) => registryOf(image) === inputs.homeRegistry);
  const wanted = new Set(images.map(registryOf));
  const logins = Object.entries(inputs.logins).filter(([server]) => wanted.has(registryOf(`${server}/x`)));
  const credentials = [
    ...(fromHome ? [{ server: inputs.homeRegistry, identity: settings.identityId }] : []),
    ...logins.map(([server, login]) => ({ server, username: login.username, password: login.password })),
  ];
  return {
    location: settings.location,
    tags: { ...inputs.tags },
    ...(trusted
      ? { identity: { type: 'UserAssigned', userAssignedIdentities: { [settings.identityId]: {} } } }
      : {}),
    osType: 'Linux',
    sku: 'Standard',
    restartPolicy: 'Never',
    priority: settings.spot ? 'Spot' : 'Regular',
    ...(settings.subnetId ? { subnetIds: [{ id: settings.subnetId }] } : {}),
    ...(trusted && credentials.length > 0 ? { imageRegistryCredentials: credentials } : {}),
    ...parts,
  };
}

/** The secret volume holding the Docker config kaniko reads for registries other than the home one. */
export function dockerConfigVolume(logins: Readonly<Record<string, RegistryCredentials>>): Volume {
  return { name: 'docker-config', secret: { 'config.json': dockerConfig(logins) } };
}

/** Where kaniko reads that config. */
export const DOCKER_CONFIG_MOUNT: VolumeMount = {
  name: 'docker-config',
  mountPath: '/kaniko/.docker',
  readOnly: true,
};

/**
 * The container group of one build: the fetch init container, kaniko behind its wrapper and the reporter, sharing an
 * emptyDir; restartPolicy Never; the builder identity attached (kaniko pushes to the home registry with it, through
 * its built-in ACR credential helper, and ACI pulls the images with it when they live there).
 */
export function buildGroup(run: DockerRun, settings: AciSettings, inputs: GroupInputs): ContainerGroup {
  const source = inputs.source;
  const secretArgs = inputs.buildArgs.filter((a) => a.isSecret);
  const hasLogins = Object.keys(inputs.logins).length > 0;
  const workspace = { name: 'workspace', mountPath: WORKSPACE };
  const trusted = !run.untrustedSource;
  // The logins are kaniko's (its docker config); ACI pulls only Refit's own images.
  return groupFrame(
    settings,
    { ...inputs, logins: {} },
    trusted,
    [settings.kanikoImage, settings.helperImage],
    {
      volumes: [
        { name: 'workspace', emptyDir: {} },
        ...(hasLogins ? [dockerConfigVolume(inputs.logins)] : []),
      ],
      initContainers: [
        {
          name: 'fetch',
          image: settings.helperImage,
          command: ['sh', '-c', FETCH_SCRIPT],
          environmentVariables: [...sourceEnv(source), plain('REFIT_DOCKERFILE', run.spec.dockerFilePath)],
          volumeMounts: [workspace],
        },
      ],
      containers: [
        {
          name: 'build',
          image: settings.kanikoImage,
          command: ['/busybox/sh', '-c', BUILD_SCRIPT, 'refit-build', ...kanikoArgs(run, inputs)],
          resources: { requests: { cpu: run.agentConfiguration.cpu, memoryInGB: settings.memoryGb } },
          environmentVariables: [
            ...(trusted ? [plain('AZURE_CLIENT_ID', settings.identityClientId)] : []),
            ...secretArgsEnv(secretArgs),
          ],
          volumeMounts: [workspace, ...(hasLogins ? [DOCKER_CONFIG_MOUNT] : [])],
        },
        reporterContainer(run.runId, settings, inputs, trusted, [], [workspace]),
      ],
    },
  );
}

/**
 * A git source as the fetch script takes it: `git clone --branch` takes a branch or tag, not a commit, so a commit (the
 * run's, or the ref when it is one) is checked out after the clone.
 */
export function gitSource(
  location: string,
  commit: string | undefined,
  token: string | undefined,
): GroupSource {
  const git = parseGitSource(location);
  const refIsCommit = git.ref !== undefined && /^[0-9a-f]{7,40}$/i.test(git.ref);
  return {
    kind: 'git',
    url: git.url,
    ref: refIsCommit ? undefined : git.ref,
    commit: commit ?? (refIsCommit ? git.ref : undefined),
    folder: git.folder ?? '',
    token,
  };
}

/** The fetch script's settings for a source (the git token an ACI secure value, never in the URL). */
export function sourceEnv(source: GroupSource): EnvironmentVariable[] {
  return [
    plain('REFIT_SOURCE_KIND', source.kind),
    secure('REFIT_SOURCE_URL', source.url),
    plain('REFIT_CONTEXT_FOLDER', source.folder),
    ...(source.kind === 'git'
      ? [
          ...(source.ref ? [plain('REFIT_GIT_REF', source.ref)] : []),
          ...(source.commit ? [plain('REFIT_GIT_COMMIT', source.commit)] : []),
          ...(source.token ? [secure('REFIT_GIT_TOKEN', source.token)] : []),
        ]
      : []),
  ];
}

/** Secret build arguments for BUILD_SCRIPT: names plain, values secure, indexes in REFIT_SECRET_ARGS. */
export function secretArgsEnv(secretArgs: readonly { name: string; value: string }[]): EnvironmentVariable[] {
  return [
    plain('REFIT_SECRET_ARGS', secretArgs.map((_, i) => i).join(' ')),
    ...secretArgs.flatMap((a, i) => [
      plain(`REFIT_ARG_NAME_${i}`, a.name),
      secure(`REFIT_ARG_VALUE_${i}`, a.value),
    ]),
  ];
}

export const plainEnv = plain;
export const secureEnv = secure;
