import { DockerfileParser, type From, type Instruction } from 'dockerfile-ast';
import { ValidationError } from '../errors';
import { parseImageReference, type ImageReference } from '../registry/image-reference';
import { expandVariables } from './expand';

/** A base image a build depends on: the image behind the final (or target) stage, or any other external image. */
export interface BaseImageDependency {
  readonly type: 'RunTime' | 'BuildTime';
  readonly registry: string;
  readonly repository: string;
  readonly tag: string | null;
  readonly digest: string | null;
}

/** What the scan takes besides the Dockerfile: build arguments and the stage to build. */
export interface ScanOptions {
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly target?: string | undefined;
}

/** A Dockerfile the scan cannot follow; the message names the line. */
export class DockerfileScanError extends ValidationError {
  constructor(message: string, line?: number) {
    super(line ? `Dockerfile line ${line}: ${message}` : message, 'dockerfile');
  }
}

/** A base image with every name the Dockerfile gives it, as written and as expanded (what a builder matches). */
export interface NamedDependency {
  readonly dependency: BaseImageDependency;
  /** The image's names in the Dockerfile: each FROM, `--from` or `from=` word as written and once expanded. */
  readonly names: readonly string[];
}

type ImageUse = { kind: 'image'; ref: ImageReference; names: string[] };

interface Stage {
  readonly index: number;
  readonly name: string | null;
  readonly line: number;
  /** The stage it is built on, or the external image, or scratch. */
  readonly base: { kind: 'stage'; index: number } | ImageUse | { kind: 'scratch' };
  /** Stages and images it copies or mounts from. */
  readonly uses: ({ kind: 'stage'; index: number } | ImageUse)[];
}

const lineOf = (i: Instruction): number => i.getRange().start.line + 1;

/**
 * Finds the base images of a Dockerfile with BuildKit's semantics: only ARGs before the first FROM are seen by FROM
 * lines (build arguments override their defaults); stage names are case-insensitive and may be referred to by index;
 * only the stages the final (or target) stage needs count. The image behind the final stage is RunTime; every other
 * external image (FROM, `COPY --from`, `RUN --mount=…,from=`) is BuildTime. `scratch` is never a dependency.
 */
export function scanDockerfile(text: string, options: ScanOptions = {}): BaseImageDependency[] {
  return scanDockerfileNames(text, options).map((n) => n.dependency);
}

/** {@link scanDockerfile}, with the names each image goes by in the Dockerfile (to pin them for a build). */
export function scanDockerfileNames(text: string, options: ScanOptions = {}): NamedDependency[] {
  const dockerfile = DockerfileParser.parse(text);
  const froms = dockerfile.getFROMs();
  if (froms.length === 0) throw new DockerfileScanError('the Dockerfile has no FROM instruction');

  const buildArgs = options.buildArgs ?? {};
  const meta = new Map<string, string | undefined>();
  for (const arg of dockerfile.getInitialARGs()) {
    const property = arg.getProperty();
    if (!property) throw new DockerfileScanError('ARG needs a name', lineOf(arg));
    const name = property.getName();
    const fallback = property.getValue();
    let value: string | undefined;
    try {
      // Own keys only: an ARG named `constructor` must not pick up Object's constructor function.
      value = Object.hasOwn(buildArgs, name)
        ? buildArgs[name]
        : fallback === null
          ? undefined
          : expandVariables(fallback, meta);
    } catch (err) {
      throw new DockerfileScanError((err as Error).message, lineOf(arg));
    }
    meta.set(name, value);
  }

  const stages: Stage[] = [];
  const stageByName = new Map<string, number>();
  const resolveName = (
    raw: string,
    line: number,
    what: string,
  ): { kind: 'stage'; index: number } | ImageUse | { kind: 'scratch' } => {
    let value: string;
    try {
      value = expandVariables(raw, meta).trim();
    } catch (err) {
      throw new DockerfileScanError((err as Error).message, line);
    }
    if (!value)
      throw new DockerfileScanError(`${what} '${raw}' is empty once its variables are expanded`, line);
    const stage = stageByName.get(value.toLowerCase());
    if (stage !== undefined) return { kind: 'stage', index: stage };
    if (/^\d+$/.test(value)) {
      const index = Number(value);
      if (index >= stages.length)
        throw new DockerfileScanError(
          `${what} refers to stage ${index}, which is not defined before it`,
          line,
        );
      return { kind: 'stage', index };
    }
    if (value.toLowerCase() === 'scratch') return { kind: 'scratch' };
    try {
      return { kind: 'image', ref: parseImageReference(value), names: [...new Set([raw, value])] };
    } catch (err) {
      throw new DockerfileScanError(
        `${what} '${value}' is not a valid image reference (${(err as Error).message.replace(/^'[^']*' is not a valid image reference: /, '')})`,
        line,
      );
    }
  };

  const instructions = dockerfile.getInstructions();
  froms.forEach((from: From, index) => {
    const line = lineOf(from);
    const image = from.getImage();
    if (!image) throw new DockerfileScanError('FROM names no image', line);
    const words = from
      .getArguments()
      .map((a) => a.getValue())
      .filter((w) => !w.startsWith('--'));
    if (words.length !== 1 && !(words.length === 3 && words[1]!.toLowerCase() === 'as')) {
      throw new DockerfileScanError('FROM takes an image, optionally followed by AS and a stage name', line);
    }
    const base = resolveName(image, line, 'FROM');
    const name = from.getBuildStage();
    const start = instructions.indexOf(from);
    const next = froms[index + 1];
    const end = next ? instructions.indexOf(next) : instructions.length;
    const uses: Stage['uses'] = [];
    for (const instruction of instructions.slice(start + 1, end)) {
      const keyword = instruction.getKeyword();
      if (keyword !== 'COPY' && keyword !== 'RUN' && keyword !== 'ADD') continue;
      for (const flag of (
        instruction as unknown as {
          getFlags(): {
            getName(): string;
            getValue(): string | null;
            getOptions(): { getName(): string; getValue(): string | null }[];
          }[];
        }
      ).getFlags()) {
        const sources =
          flag.getName() === 'from' && keyword !== 'RUN'
            ? [flag.getValue()]
            : flag.getName() === 'mount'
              ? flag
                  .getOptions()
                  .filter((o) => o.getName() === 'from')
                  .map((o) => o.getValue())
              : [];
        for (const source of sources) {
          if (!source) continue;
          const used = resolveName(
            source,
            lineOf(instruction),
            keyword === 'RUN' ? 'RUN --mount from' : `${keyword} --from`,
          );
          if (used.kind !== 'scratch') uses.push(used);
        }
      }
    }
    stages.push({ index, name, line, base, uses });
    if (name) stageByName.set(name.toLowerCase(), index);
  });

  let final = stages[stages.length - 1]!;
  if (options.target) {
    const index = stageByName.get(options.target.toLowerCase());
    if (index === undefined)
      throw new DockerfileScanError(`the target stage '${options.target}' is not defined in the Dockerfile`);
    final = stages[index]!;
  }

  // RunTime: follow the final stage's FROM chain to the image it starts from.
  let runtime: ImageUse | undefined;
  for (let s: Stage | undefined = final; s;) {
    if (s.base.kind === 'image') runtime = s.base;
    s = s.base.kind === 'stage' ? stages[s.base.index] : undefined;
  }

  // BuildTime: every other external image of the stages the final stage needs (BuildKit skips the rest).
  const needed = new Set<number>();
  const visit = (index: number): void => {
    if (needed.has(index)) return;
    needed.add(index);
    const s = stages[index]!;
    if (s.base.kind === 'stage') visit(s.base.index);
    for (const u of s.uses) if (u.kind === 'stage') visit(u.index);
  };
  visit(final.index);

  const key = (r: ImageReference): string => `${r.registry}/${r.repository}:${r.tag ?? ''}@${r.digest ?? ''}`;
  const found = new Map<string, { dependency: BaseImageDependency; names: Set<string> }>();
  if (runtime)
    found.set(key(runtime.ref), {
      dependency: { type: 'RunTime', ...runtime.ref },
      names: new Set(runtime.names),
    });
  for (const s of stages.filter((st) => needed.has(st.index))) {
    for (const u of [s.base, ...s.uses]) {
      if (u.kind !== 'image') continue;
      const known = found.get(key(u.ref));
      if (known) for (const n of u.names) known.names.add(n);
      else found.set(key(u.ref), { dependency: { type: 'BuildTime', ...u.ref }, names: new Set(u.names) });
    }
  }
  return [...found.values()].map((f) => ({ dependency: f.dependency, names: [...f.names] }));
}
