import { DockerfileParser } from 'dockerfile-ast';

/** The instruction that closes an empty stage: an ARG changes nothing in the image (ARGs are not kept in it). */
export const EMPTY_STAGE_ARG = 'ARG REFIT_EMPTY_STAGE';

/**
 * The Dockerfile with {@link EMPTY_STAGE_ARG} after the FROM of the stage a build ends with (`target`, else the
 * last) when that stage has no instruction but its FROM; null when it has some. buildah 1.28 leaves the working
 * container of such a build behind in its storage (pinned with --build-context or not, with --layers or not); one
 * instruction is enough for it to remove it.
 */
export function closeEmptyTargetStage(text: string, target?: string): string | null {
  const dockerfile = DockerfileParser.parse(text);
  const froms = dockerfile.getFROMs();
  const instructions = dockerfile.getInstructions();
  const index = target
    ? froms.findIndex((f) => f.getBuildStage()?.toLowerCase() === target.toLowerCase())
    : froms.length - 1;
  const from = froms[index];
  if (!from) return null;
  const next = froms[index + 1];
  if ((next ? instructions.indexOf(next) : instructions.length) - instructions.indexOf(from) !== 1)
    return null;
  const lines = text.split('\n');
  const after = from.getRange().end.line + 1;
  return [...lines.slice(0, after), EMPTY_STAGE_ARG, ...lines.slice(after)].join('\n');
}
