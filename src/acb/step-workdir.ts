import { posix } from 'node:path';
import type { AcbStep } from './task-file';

/**
 * A step's working directory inside its container, as acb sets it: the shared workspace unless the step names one (a
 * relative one within the workspace), or undefined to keep the image's own (`disableWorkingDirectoryOverride`).
 */
export function stepWorkdir(step: AcbStep, workspace: string): string | undefined {
  if (step.disableWorkingDirectoryOverride) return undefined;
  if (!step.workingDirectory) return workspace;
  return posix.isAbsolute(step.workingDirectory)
    ? step.workingDirectory
    : posix.join(workspace, step.workingDirectory);
}
