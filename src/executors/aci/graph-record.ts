import type { RunTask } from '../../acb/load-task';
import type { GraphState } from '../../acb/step-graph';
import type { RecordedDependency } from '../../dependencies/dependency-index';
import { parseImageReference } from '../../registry/image-reference';
import type { OutputImage } from '../../runs/run';
import { open, seal } from '../../storage/secret-box';
import { names, type Storage } from '../../storage/storage';
import { statusOf } from '../../storage/write-conflicts';
import type { RunOutcome } from '../executor';

/** The step name of the group that fetches the source. */
export const SOURCE = '@source';

/** A group of the run that is under way. */
export interface GroupEntry {
  readonly step: string;
  readonly attempt: string;
  readonly created: number;
  readonly cores: number;
  readonly gb: number;
  readonly lines: readonly string[];
}

/** An image a build step of the run made: its run-scoped copy, and the name the step gave it. */
export interface BuiltImage {
  readonly repository: string;
  readonly digest: string;
  readonly as: string;
}

/** A start put off until `at`. */
export interface DelayedStart {
  readonly step: string;
  readonly attempt: string;
  readonly at: number;
  readonly lines: readonly string[];
}

/**
 * A multi-step run's state between events, kept sealed in the run-graphs container (the rendered task holds secret
 * values): where the run is, its graph, its groups, what each step left.
 */
export interface GraphRecord {
  phase: 'source' | 'steps' | 'finished';
  task?: RunTask;
  state?: GraphState;
  /** The groups under way, by group name. */
  groups: Record<string, GroupEntry>;
  /** The starts put off, by `step/attempt`. */
  delayed: Record<string, DelayedStart>;
  /** The workspace blobs each step left (the source's under `@source`), extracted in order by its dependents. */
  workspaces: Record<string, string[]>;
  /** Images the run built: name → the run-scoped copy and its digest. */
  built: Record<string, BuiltImage>;
  outputImages: OutputImage[];
  dependencies: RecordedDependency[];
  commit?: string;
  branch?: string;
  /** What the groups cost, summed as each ends: their seconds, and cores and memory by seconds. */
  groupSeconds: number;
  coreSeconds: number;
  gbSeconds: number;
  outcome?: RunOutcome;
}

/** An image name as one string whatever way it is written (`:latest` added, Docker Hub's forms made one). */
export function canonicalImage(name: string): string {
  try {
    const ref = parseImageReference(name);
    return `${ref.registry}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
  } catch {
    return name;
  }
}

/** The run-scoped copy of an image the run built, by any name that names it. */
export function builtImage(record: GraphRecord, name: string): BuiltImage | undefined {
  return record.built[canonicalImage(name)];
}

/** A step's key in group names, blob names and reports: its index in the task (its ID is free text). */
export function stepKey(task: RunTask | undefined, stepId: string): string {
  return String(task ? task.steps.findIndex((s) => s.id === stepId) : -1);
}

/** The items, each once, in the order first seen. */
export function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** The record of a run that has just started. */
export function emptyRecord(): GraphRecord {
  return {
    phase: 'source',
    groups: {},
    delayed: {},
    workspaces: {},
    built: {},
    outputImages: [],
    dependencies: [],
    groupSeconds: 0,
    coreSeconds: 0,
    gbSeconds: 0,
  };
}

/** A group under way, as the record keeps it. */
export function entry(
  step: string,
  attempt: string,
  created: number,
  cores: number,
  gb: number,
  lines: readonly string[],
): GroupEntry {
  return { step, attempt, created, cores, gb, lines };
}

/**
 * Where the records live: a blob per run in the run-graphs container, sealed with the deployment's key (the rendered
 * task holds secret values), written under its ETag.
 */
export class GraphRecords {
  constructor(
    private readonly storage: Storage,
    private readonly key: Buffer,
  ) {}

  private blob(runId: string) {
    return this.storage.container(names.containers.runGraphs).getBlockBlobClient(`${runId}.json`);
  }

  /** The run's record with its ETag, or undefined when it has none (a 404; any other failure throws). */
  async read(runId: string): Promise<{ record: GraphRecord; etag: string } | undefined> {
    try {
      const blob = this.blob(runId);
      const body = await blob.downloadToBuffer();
      const props = await blob.getProperties();
      const record = JSON.parse(open(this.key, body.toString('utf8'))) as GraphRecord;
      return { record, etag: props.etag! };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Writes the record; with `etag`, only over the version read (a 412 when another change got there first). */
  async write(runId: string, record: GraphRecord, etag: string | undefined): Promise<void> {
    const text = seal(this.key, JSON.stringify(record));
    await this.blob(runId).upload(text, Buffer.byteLength(text), {
      ...(etag ? { conditions: { ifMatch: etag } } : {}),
    });
  }

  async forget(runId: string): Promise<void> {
    await this.blob(runId).deleteIfExists();
  }
}
