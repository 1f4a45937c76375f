import { z } from 'zod';

/**
 * What a group's reporter sends (REPORT_SCRIPT in builder-scripts.ts), checked: the build or step can write the files
 * it is made from. A Docker build's group sends these fields.
 */
export const builderReport = z.object({
  token: z.string().max(200),
  exitCode: z.number().int(),
  images: z.array(z.string().max(2000)).max(100),
  restarted: z.boolean(),
  error: z.string().max(2000),
  dockerfile: z.string().max(64 * 1024),
});

/** A multi-step run's group sends these too: which step and attempt, whether it saved its workspace, its output's tail. */
export const stepReport = builderReport.extend({
  step: z.string().min(1).max(200),
  attempt: z.string().max(50),
  saved: z.boolean(),
  output: z.string().max(16 * 1024),
  commit: z.string().max(64),
  branch: z.string().max(200),
});
/** A step group's report, read. */
export type StepReport = z.infer<typeof stepReport>;
