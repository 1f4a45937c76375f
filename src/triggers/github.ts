import { createHmac, timingSafeEqual } from 'node:crypto';
import { repositoryKey } from '../tasks/task';
import type { IgnoredEvent, SourceEvent } from './source-event';

const ZERO = /^0+$/;

/** Checks `X-Hub-Signature-256` (`sha256=` + hex HMAC-SHA256 of the raw body) in constant time. */
export function verifyGitHubSignature(secret: string, rawBody: Buffer, header: string | null): boolean {
  if (!header) return false;
  const expected = Buffer.from('sha256=' + createHmac('sha256', secret).update(rawBody).digest('hex'));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Signs a body as GitHub does (for tests and the local git-push example). */
export function signGitHubBody(secret: string, rawBody: Buffer | string): string {
  return 'sha256=' + createHmac('sha256', secret).update(rawBody).digest('hex');
}

interface PushPayload {
  ref?: string;
  after?: string;
  deleted?: boolean;
  repository?: { clone_url?: string; html_url?: string };
}

interface PullRequestPayload {
  action?: string;
  number?: number;
  pull_request?: {
    number?: number;
    head?: { sha?: string; ref?: string; repo?: { clone_url?: string } | null };
    base?: { ref?: string; repo?: { clone_url?: string } };
  };
  repository?: { clone_url?: string };
}

const BUILD_PR_ACTIONS = new Set(['opened', 'synchronize', 'reopened']);

/** A payload field that must be a string: anything else counts as absent (the payload is untrusted JSON). */
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Turns a verified GitHub delivery into what Refit acts on: a source event, an event that builds nothing (with the
 * reason), `ping`, or null for an event type Refit does not handle. Permissive: only the fields used are read.
 */
export function parseGitHubEvent(
  eventName: string,
  deliveryId: string,
  payload: unknown,
): SourceEvent | IgnoredEvent | 'ping' | null {
  const ignore = (reason: string): IgnoredEvent => ({ source: 'github', deliveryId, reason });
  if (eventName === 'ping') return 'ping';
  if (typeof payload !== 'object' || payload === null) return ignore('the payload is not a JSON object');
  if (eventName === 'push') {
    const p = payload as PushPayload;
    const ref = str(p.ref) ?? '';
    const after = str(p.after);
    const repositoryUrl = str(p.repository?.clone_url) ?? str(p.repository?.html_url);
    if (!repositoryUrl) return ignore('the push names no repository');
    if (ref.startsWith('refs/tags/')) return ignore(`a tag push (${ref.slice(10)}) builds nothing`);
    if (!ref.startsWith('refs/heads/')) return ignore(`a push to ${ref || 'no ref'} builds nothing`);
    const branch = ref.slice(11);
    if (p.deleted === true || !after || ZERO.test(after)) return ignore(`branch ${branch} was deleted`);
    return {
      source: 'github',
      provider: 'Github',
      deliveryId,
      eventType: 'commit',
      repositoryUrl,
      branch,
      commitId: after,
      cloneUrl: repositoryUrl,
      cloneBranch: branch,
    };
  }
  if (eventName === 'pull_request') {
    const p = payload as PullRequestPayload;
    const pr = p.pull_request;
    const action = str(p.action) ?? '';
    if (!BUILD_PR_ACTIONS.has(action)) return ignore(`pull request action '${action}' builds nothing`);
    const repositoryUrl = str(pr?.base?.repo?.clone_url) ?? str(p.repository?.clone_url);
    const sha = str(pr?.head?.sha);
    const baseRef = str(pr?.base?.ref);
    const headRef = str(pr?.head?.ref);
    if (!repositoryUrl || !sha || !baseRef || !headRef)
      return ignore('the pull request event lacks its repository, branches or head commit');
    // The head is someone else's code when it lives in another repository (a fork; null once the fork is deleted).
    const headUrl = str(pr?.head?.repo?.clone_url);
    const fromFork = !headUrl || repositoryKey(headUrl) !== repositoryKey(repositoryUrl);
    const number = [pr?.number, p.number].find((n) => typeof n === 'number');
    return {
      source: 'github',
      provider: 'Github',
      deliveryId,
      eventType: 'pullrequest',
      repositoryUrl,
      branch: baseRef,
      commitId: sha,
      pullRequestId: number === undefined ? '' : String(number),
      cloneUrl: headUrl ?? repositoryUrl,
      cloneBranch: headRef,
      ...(fromFork ? { fromFork: true as const } : {}),
    };
  }
  return null;
}
