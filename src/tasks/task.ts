import type { RecordedDependency } from '../dependencies/dependency-index';
import type { Platform } from '../runs/run';
import { maskUrlCredentials } from '../sources/url-credentials';

/** A source trigger: build on commits (and, when enabled, pull requests) to a repository's branch. */
export interface SourceTrigger {
  readonly name: string;
  readonly sourceRepository: {
    readonly sourceControlType: 'Github' | 'VisualStudioTeamService';
    readonly repositoryUrl: string;
    readonly branch: string;
    /** The token itself is sealed apart; here only its type. */
    readonly sourceControlAuthProperties?: { readonly tokenType: 'PAT' | 'OAuth' };
  };
  readonly sourceTriggerEvents: readonly ('commit' | 'pullrequest')[];
  readonly status: 'Enabled' | 'Disabled';
}

/** A timer trigger: a cron schedule (five fields, or six with seconds first), UTC. */
export interface TimerTrigger {
  readonly name: string;
  readonly schedule: string;
  readonly status: 'Enabled' | 'Disabled';
}

/** The base-image trigger's settings (acted on by the base-image update path). */
export interface BaseImageTrigger {
  readonly name: string;
  readonly baseImageTriggerType: 'All' | 'Runtime';
  readonly updateTriggerEndpoint?: string | undefined;
  readonly updateTriggerPayloadType?: 'Default' | 'Token' | undefined;
  readonly status: 'Enabled' | 'Disabled';
}

/** A Docker build step; secret argument values and the context token are sealed apart. */
export interface DockerStep {
  readonly type: 'Docker';
  readonly imageNames: readonly string[];
  readonly isPushEnabled: boolean;
  readonly noCache: boolean;
  readonly dockerFilePath: string;
  readonly target?: string;
  readonly arguments: readonly {
    readonly name: string;
    readonly value?: string;
    readonly isSecret: boolean;
  }[];
  readonly contextPath: string;
}

/**
 * A multi-step step: an acb.yaml in the context (FileTask) or the file itself, base64 (EncodedTask). Secret values
 * are sealed apart (with the task's secrets, by value name).
 */
export interface TaskFileStep {
  readonly type: 'FileTask' | 'EncodedTask';
  /** The context the steps run in; none for a task that needs no source. */
  readonly contextPath?: string;
  readonly taskFilePath?: string;
  readonly valuesFilePath?: string;
  readonly encodedTaskContent?: string;
  readonly encodedValuesContent?: string;
  readonly values: readonly { readonly name: string; readonly value?: string; readonly isSecret: boolean }[];
}

/** A custom registry's login as Refit keeps it with the task: the user name; the password is sealed apart. */
export interface CustomRegistryLogin {
  /** The user name, or (Vaultsecret) the URI of the Key Vault secret that holds it. */
  readonly userName: { readonly type: 'Opaque' | 'Vaultsecret'; readonly value: string };
  /** The password's type: the password (or its Key Vault secret URI) is sealed with the task's secrets. */
  readonly password: { readonly type: 'Opaque' | 'Vaultsecret' };
  /** Who reads the Key Vault secrets: a user-assigned identity's client ID, or `[system]` (the deployment's). */
  readonly identity?: string;
}

/** How a task's runs log in to registries (ACR's Credentials); passwords are sealed with the task's secrets. */
export interface TaskCredentials {
  /** How runs log in to the home registry; locally the home registry needs no login (kept and returned). */
  readonly sourceRegistry?: {
    readonly loginMode?: 'None' | 'Default';
    /** `[system]`: the deployment's own access to its home registry, which is what Refit uses anyway. */
    readonly identity?: '[system]';
  };
  /** By login server as given (matched to a registry by its canonical name). */
  readonly customRegistries: Readonly<Record<string, CustomRegistryLogin>>;
}

/** A task's step: a Docker build, or a multi-step task file. */
export type TaskStep = DockerStep | TaskFileStep;

/** A task as Refit keeps it (no secret values). */
export interface Task {
  readonly name: string;
  readonly status: 'Enabled' | 'Disabled';
  readonly platform: Platform;
  readonly agentConfiguration: { readonly cpu: number };
  readonly timeout: number;
  readonly step: TaskStep;
  readonly trigger: {
    readonly sourceTriggers: readonly SourceTrigger[];
    readonly timerTriggers: readonly TimerTrigger[];
    readonly baseImageTrigger?: BaseImageTrigger;
  };
  readonly creationDate: string;
  /** The base images the task was last built from (or found by scanning its Dockerfile), with their digests. */
  readonly baseImageDependencies?: readonly RecordedDependency[];
  /** What the last successful run of a multi-step task pushed (a Docker task's outputs are its imageNames). */
  readonly outputImages?: readonly string[];
  /** The run whose dependencies are recorded: a repeated or late recording of it, or of an older run, does nothing. */
  readonly dependenciesFrom?: { readonly runId: string; readonly finishTime: string };
  /** When each timer was last added or changed: occurrences before it never fire. */
  readonly timerSince: Readonly<Record<string, string>>;
  /** Registry logins of its runs (no passwords). */
  readonly credentials?: TaskCredentials;
}

/** The secret values of a task, sealed together. */
export interface TaskSecrets {
  /** Secret build-argument values by argument name (secret task values, for a FileTask or EncodedTask). */
  readonly arguments: Readonly<Record<string, string>>;
  /** The git access token of the context (step.contextAccessToken). */
  readonly contextAccessToken?: string;
  /** Source-trigger tokens by trigger name. */
  readonly sourceTokens: Readonly<Record<string, string>>;
  /** The token sent to the base-image trigger's updateTriggerEndpoint (given with a manual run, as in ACR). */
  readonly updateTriggerToken?: string;
  /** Custom registries' passwords by login server (credentials.customRegistries). */
  readonly registryPasswords?: Readonly<Record<string, string>>;
}

/** The context without a password in it (one stored before passwords were sealed apart shows masked). */
function shownContext(step: TaskStep): { contextPath?: string } {
  return step.contextPath === undefined ? {} : { contextPath: maskUrlCredentials(step.contextPath) };
}

/** The triggers as shown: credentials in a repository URL or an update endpoint masked. */
function shownTrigger(trigger: Task['trigger']): Task['trigger'] {
  const base = trigger.baseImageTrigger;
  return {
    ...trigger,
    sourceTriggers: trigger.sourceTriggers.map((t) => ({
      ...t,
      sourceRepository: {
        ...t.sourceRepository,
        repositoryUrl: maskUrlCredentials(t.sourceRepository.repositoryUrl),
      },
    })),
    ...(base?.updateTriggerEndpoint
      ? {
          baseImageTrigger: {
            ...base,
            updateTriggerEndpoint: maskUrlCredentials(base.updateTriggerEndpoint),
          },
        }
      : {}),
  };
}

/** The ARM resource a client sees: secret values are never in it, nor credentials embedded in a URL. */
export function taskResource(task: Task): Record<string, unknown> {
  return {
    id: `/tasks/${task.name}`,
    name: task.name,
    type: 'Microsoft.ContainerRegistry/registries/tasks',
    properties: {
      provisioningState: 'Succeeded',
      creationDate: task.creationDate,
      status: task.status,
      platform: task.platform,
      agentConfiguration: task.agentConfiguration,
      timeout: task.timeout,
      step:
        task.step.type === 'Docker'
          ? {
              ...task.step,
              ...shownContext(task.step),
              // A secret argument shows that it is set (isSecret, no value); its value is never returned.
              arguments: task.step.arguments.map((a) => (a.isSecret ? { name: a.name, isSecret: true } : a)),
              baseImageDependencies: task.baseImageDependencies ?? [],
            }
          : {
              ...task.step,
              ...shownContext(task.step),
              values: task.step.values.map((v) => (v.isSecret ? { name: v.name, isSecret: true } : v)),
              baseImageDependencies: task.baseImageDependencies ?? [],
            },
      trigger: shownTrigger(task.trigger),
      // The user names and the types: a password is never returned.
      ...(task.credentials ? { credentials: task.credentials } : {}),
    },
  };
}

/**
 * Tasks_GetDetails: the resource with the secret values it otherwise leaves out (secret arguments and values, the
 * context's access token, source triggers' tokens, custom registries' passwords), for a key holder who asks for them (`--with-secure-properties`).
 */
export function taskDetailsResource(
  resource: Record<string, unknown>,
  secrets: TaskSecrets,
): Record<string, unknown> {
  const properties = resource.properties as Record<string, unknown>;
  const step = properties.step as Record<string, unknown>;
  const reveal = (list: unknown): unknown =>
    Array.isArray(list)
      ? list.map((a: { name: string; isSecret?: boolean }) =>
          a.isSecret ? { ...a, value: secrets.arguments[a.name] ?? '' } : a,
        )
      : list;
  const trigger = properties.trigger as Task['trigger'];
  const credentials = properties.credentials as TaskCredentials | undefined;
  const passwords = secrets.registryPasswords ?? {};
  return {
    ...resource,
    properties: {
      ...properties,
      ...(credentials
        ? {
            credentials: {
              ...credentials,
              customRegistries: Object.fromEntries(
                Object.entries(credentials.customRegistries).map(([server, login]) => [
                  server,
                  passwords[server] === undefined
                    ? login
                    : { ...login, password: { ...login.password, value: passwords[server] } },
                ]),
              ),
            },
          }
        : {}),
      step: {
        ...step,
        ...('arguments' in step ? { arguments: reveal(step.arguments) } : {}),
        ...('values' in step ? { values: reveal(step.values) } : {}),
        ...(secrets.contextAccessToken ? { contextAccessToken: secrets.contextAccessToken } : {}),
      },
      trigger: {
        ...trigger,
        sourceTriggers: trigger.sourceTriggers.map((t) => {
          const token = secrets.sourceTokens[t.name];
          return token === undefined
            ? t
            : {
                ...t,
                sourceRepository: {
                  ...t.sourceRepository,
                  sourceControlAuthProperties: {
                    tokenType: t.sourceRepository.sourceControlAuthProperties?.tokenType ?? 'PAT',
                    token,
                  },
                },
              };
        }),
      },
    },
  };
}

/** The key a repository URL is matched on: host lower-cased, no credentials, no `.git`, no trailing slash. */
export function repositoryKey(url: string): string {
  const noFragment = url.split('#')[0]!.trim();
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^@/]+@)?([^/]+)(\/.*)?$/i.exec(noFragment);
  const path = (m?.[3] ?? '').replace(/\/+$/, '').replace(/\.git$/i, '');
  return m ? `${m[2]!.toLowerCase()}${path}` : noFragment.toLowerCase();
}
