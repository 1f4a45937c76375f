import { z } from 'zod';
import { secretMatches } from '../secrets';
import type { IgnoredEvent, SourceEvent } from './source-event';

const ZERO = /^0+$/;

/** Azure DevOps service hooks carry no signature: Basic auth whose password is the secret, or the secret in a header. */
export function verifyAzureDevOpsAuth(
  secret: string,
  authorization: string | null,
  secretHeader: string | null,
): boolean {
  if (secretHeader && secretMatches(secretHeader, secret)) return true;
  const m = /^Basic\s+(.+)$/i.exec(authorization ?? '');
  if (!m) return false;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && secretMatches(decoded.slice(colon + 1), secret);
}

// Permissive (a third-party payload): only the fields read; a field of the wrong type counts as absent, so a
// malformed hook builds nothing instead of crashing the decision with a non-string.
const text = z.string().optional().catch(undefined);
const gitPushSchema = z.object({
  id: text,
  eventType: text,
  resource: z
    .object({
      refUpdates: z
        .array(z.object({ name: text, newObjectId: text }).catch({}))
        .optional()
        .catch(undefined),
      repository: z.object({ remoteUrl: text }).optional().catch(undefined),
    })
    .optional()
    .catch(undefined),
});

/** Turns a `git.push` service hook into one source event (or ignored event) per updated ref. */
export function parseAzureDevOpsEvent(payload: unknown): (SourceEvent | IgnoredEvent)[] | null {
  const parsed = gitPushSchema.safeParse(payload);
  if (!parsed.success || parsed.data.eventType !== 'git.push') return null;
  const p = parsed.data;
  const id = p.id ?? '';
  const repositoryUrl = p.resource?.repository?.remoteUrl;
  const updates = p.resource?.refUpdates ?? [];
  if (!repositoryUrl)
    return [{ source: 'azuredevops', deliveryId: id, reason: 'the push names no repository' }];
  return updates.map((u, i): SourceEvent | IgnoredEvent => {
    const deliveryId = updates.length > 1 ? `${id}#${i}` : id;
    const ref = u.name ?? '';
    if (!ref.startsWith('refs/heads/'))
      return { source: 'azuredevops', deliveryId, reason: `a push to ${ref || 'no ref'} builds nothing` };
    const branch = ref.slice(11);
    if (!u.newObjectId || ZERO.test(u.newObjectId))
      return { source: 'azuredevops', deliveryId, reason: `branch ${branch} was deleted` };
    return {
      source: 'azuredevops',
      provider: 'VisualStudioTeamService',
      deliveryId,
      eventType: 'commit',
      repositoryUrl,
      branch,
      commitId: u.newObjectId,
      cloneUrl: repositoryUrl,
      cloneBranch: branch,
    };
  });
}
