import type { RecordedDependency } from '../dependencies/dependency-index';
import type { RegistryCredentials } from '../registry/auth';
import type { ImageReference } from '../registry/image-reference';
import { maskUrlCredentials } from '../sources/url-credentials';
import type { TaskFileSpec } from './task-file-run';

/** Every status a run can have, as ACR names them. */
export type RunStatus =
  'Queued' | 'Started' | 'Running' | 'Succeeded' | 'Failed' | 'Canceled' | 'Error' | 'Timeout';

/** Statuses after which a run never changes again. */
export const FINISHED: ReadonlySet<RunStatus> = new Set([
  'Succeeded',
  'Failed',
  'Canceled',
  'Error',
  'Timeout',
]);

/** How a run came to be: a quick build, a quick run, or a task's build or run. */
export type RunType = 'QuickBuild' | 'QuickRun' | 'AutoBuild' | 'AutoRun';

/** The OS, architecture and variant a run builds for. */
export interface Platform {
  readonly os: 'Linux' | 'Windows';
  readonly architecture: 'amd64' | 'x86' | '386' | 'arm' | 'arm64';
  readonly variant?: 'v6' | 'v7' | 'v8';
}

/** One `--build-arg`; a secret one's value is kept sealed, apart from the run. */
export interface BuildArgument {
  readonly name: string;
  readonly isSecret: boolean;
}

/** What a Docker build run does, as stored with the run (secret values are not in here). */
export interface DockerBuildSpec {
  readonly kind: 'DockerBuild';
  /** The source: an uploaded `source/…tar.gz` path, a git URL (`url#branch:folder`) or a tarball URL. */
  readonly sourceLocation: string;
  readonly dockerFilePath: string;
  /** Fully qualified image names, templates already rendered. */
  readonly imageNames: readonly string[];
  readonly isPushEnabled: boolean;
  readonly noCache: boolean;
  readonly target: string | undefined;
  readonly arguments: readonly (BuildArgument & { readonly value?: string })[];
  /** For a git source: the commit to build (a commit trigger's pushed head), checked out after the clone. */
  readonly commit?: string;
}

/** The secret values a run needs, sealed with the run: secret build arguments and a git token. */
export interface RunSecrets {
  readonly arguments: Readonly<Record<string, string>>;
  readonly gitToken?: string;
  /** Secret values of a multi-step run (`--set-secret`), by name. */
  readonly values?: Readonly<Record<string, string>>;
  /** Logins to custom registries by login server: the task's, or the run request's. */
  readonly registries?: Readonly<Record<string, RegistryCredentials>>;
}

/** What a commit or pull-request trigger records on its run (ACR's SourceTriggerDescriptor). */
export interface SourceTriggerDescriptor {
  readonly id: string;
  readonly eventType: 'commit' | 'pullrequest';
  readonly commitId: string;
  readonly pullRequestId?: string;
  readonly repositoryUrl: string;
  readonly branchName: string;
  readonly providerType: 'Github' | 'VisualStudioTeamService';
}

/** What a timer trigger records on its run. */
export interface TimerTriggerDescriptor {
  readonly timerTriggerName: string;
  readonly scheduleOccurrence: string;
}

/** An output image of a run, with the digest the registry holds for it. */
export type OutputImage = Pick<ImageReference, 'registry' | 'repository'> & {
  tag: string | null;
  digest: string;
};

/** An estimate of what a run cost where it ran: its cores and memory by its seconds, at the configured prices. */
export interface CostEstimate {
  readonly amount: number;
  readonly currency: 'USD';
  readonly seconds: number;
  readonly cores: number;
  readonly memoryGb: number;
}

/** A run as Refit keeps it. */
export interface Run {
  readonly runId: string;
  readonly status: RunStatus;
  readonly runType: RunType;
  readonly taskName: string | undefined;
  readonly createTime: string;
  readonly startTime: string | undefined;
  readonly finishTime: string | undefined;
  readonly lastUpdatedTime: string;
  readonly isArchiveEnabled: boolean;
  readonly platform: Platform;
  readonly agentConfiguration: { readonly cpu: number };
  readonly timeout: number;
  readonly outputImages: readonly OutputImage[];
  readonly runErrorMessage: string | undefined;
  /** Why a Queued run waits to start (no build slot, the create budget, Azure throttling): cleared when it starts. */
  readonly statusDetail?: string | undefined;
  readonly spec: DockerBuildSpec | TaskFileSpec;
  /** {@link RunSecrets}, sealed with the deployment's key; never returned. */
  readonly sealedSecrets: string | undefined;
  readonly sourceTrigger?: SourceTriggerDescriptor;
  readonly timerTrigger?: TimerTriggerDescriptor;
  readonly imageUpdateTrigger?: ImageUpdateTriggerDescriptor;
  /** The base images the build used, with the digests it was built from. */
  readonly baseImageDependencies?: readonly RecordedDependency[];
  /** What the run cost, when its executor can tell (the aci executor). */
  readonly costEstimate?: CostEstimate;
  /**
   * Set on a run of a pull request from a fork (its head repository is not the base): it was given none of the
   * task's secrets, and the executor pushes nothing.
   */
  readonly untrustedSource?: true;
}

/** What a base-image update records on its run (ACR's ImageUpdateTrigger). */
export interface ImageUpdateTriggerDescriptor {
  readonly id: string;
  readonly timestamp: string;
  readonly images: readonly { registry: string; repository: string; tag: string | null; digest: string }[];
}

/** The ARM resource a client sees: never the spec's secrets, never the sealed values. */
export function runResource(run: Run): Record<string, unknown> {
  return {
    id: `/runs/${run.runId}`,
    name: run.runId,
    type: 'Microsoft.ContainerRegistry/registries/runs',
    properties: {
      runId: run.runId,
      status: run.status,
      lastUpdatedTime: run.lastUpdatedTime,
      runType: run.runType,
      createTime: run.createTime,
      ...(run.startTime ? { startTime: run.startTime } : {}),
      ...(run.finishTime ? { finishTime: run.finishTime } : {}),
      outputImages: run.outputImages,
      ...(run.taskName ? { task: run.taskName } : {}),
      ...(run.sourceTrigger
        ? {
            sourceTrigger: {
              ...run.sourceTrigger,
              repositoryUrl: maskUrlCredentials(run.sourceTrigger.repositoryUrl),
            },
          }
        : {}),
      ...(run.timerTrigger ? { timerTrigger: run.timerTrigger } : {}),
      ...(run.imageUpdateTrigger ? { imageUpdateTrigger: run.imageUpdateTrigger } : {}),
      ...(run.baseImageDependencies ? { baseImageDependencies: run.baseImageDependencies } : {}),
      ...(run.costEstimate ? { costEstimate: run.costEstimate } : {}),
      platform: run.platform,
      agentConfiguration: run.agentConfiguration,
      timeout: run.timeout,
      ...(run.runErrorMessage ? { runErrorMessage: run.runErrorMessage } : {}),
      ...(run.statusDetail && run.status === 'Queued' ? { statusDetail: run.statusDetail } : {}),
      isArchiveEnabled: run.isArchiveEnabled,
      provisioningState: 'Succeeded',
    },
  };
}
