import { HELD_CLAIM_WAIT_MS } from '../storage/claims';
import { UpstreamUnavailableError } from '../errors';
import { repositoryKey } from '../tasks/task';
import type { TaskService } from '../tasks/task-service';
import type { DecisionLog, TriggerDecision } from './decisions';
import type { Dedupe } from './dedupe';

/** A commit pushed or a pull request opened or updated, from any git host, normalised. */
export interface SourceEvent {
  readonly source: 'github' | 'azuredevops';
  readonly provider: 'Github' | 'VisualStudioTeamService';
  /** The delivery's identity: redeliveries carry the same one. */
  readonly deliveryId: string;
  readonly eventType: 'commit' | 'pullrequest';
  /** The repository the task must watch (its clone URL). */
  readonly repositoryUrl: string;
  /** For a commit: the pushed branch; for a pull request: the base branch. */
  readonly branch: string;
  readonly commitId: string;
  readonly pullRequestId?: string;
  /** Where the commit is cloned from and on which branch (a pull request's head may be in a fork). */
  readonly cloneUrl: string;
  readonly cloneBranch: string;
  /** A pull request whose head is in another repository than its base (a fork): its code is not trusted. */
  readonly fromFork?: true;
}

/** Why an event builds nothing for any task (a tag push, a branch delete, …). */
export interface IgnoredEvent {
  readonly source: 'github' | 'azuredevops';
  readonly deliveryId: string;
  readonly reason: string;
}

/**
 * The one decision for source events: every task whose enabled source trigger watches this repository, branch and
 * event type gets one run of the pushed commit, once per delivery however often it is redelivered.
 */
export async function handleSourceEvent(
  event: SourceEvent,
  deps: { tasks: TaskService; dedupe: Dedupe; decisions: DecisionLog },
): Promise<TriggerDecision[]> {
  const key = repositoryKey(event.repositoryUrl);
  const decisions: TriggerDecision[] = [];
  const record = async (d: Omit<TriggerDecision, 'source' | 'eventId'>): Promise<void> => {
    decisions.push(await deps.decisions.record({ source: event.source, eventId: event.deliveryId, ...d }));
  };
  for await (const stored of deps.tasks.store.all()) {
    const task = stored.task;
    const trigger = task.trigger.sourceTriggers.find(
      (t) =>
        repositoryKey(t.sourceRepository.repositoryUrl) === key && t.sourceRepository.branch === event.branch,
    );
    if (!trigger) continue;
    if (!trigger.sourceTriggerEvents.includes(event.eventType)) {
      await record({
        task: task.name,
        decision: 'skipped',
        reason:
          event.eventType === 'pullrequest'
            ? 'pull-request builds are not enabled for this task'
            : 'commit builds are not enabled for this task',
      });
      continue;
    }
    if (trigger.status === 'Disabled') {
      await record({
        task: task.name,
        decision: 'skipped',
        reason: `source trigger '${trigger.name}' is disabled`,
      });
      continue;
    }
    if (task.status === 'Disabled') {
      await record({ task: task.name, decision: 'skipped', reason: 'the task is disabled' });
      continue;
    }
    // Claim, queue, confirm: a failure before the run is queued leaves the delivery to its redelivery.
    const claimed = await deps.dedupe.once(
      event.source,
      `${event.deliveryId} ${task.name.toLowerCase()}`,
      () =>
        deps.tasks.startRun(stored, {
          kind: 'source',
          triggerName: trigger.name,
          cloneUrl: event.cloneUrl,
          ...(event.fromFork ? { untrusted: true as const } : {}),
          descriptor: {
            id: event.deliveryId,
            eventType: event.eventType,
            commitId: event.commitId,
            ...(event.pullRequestId ? { pullRequestId: event.pullRequestId } : {}),
            repositoryUrl: event.repositoryUrl,
            branchName: event.eventType === 'pullrequest' ? event.cloneBranch : event.branch,
            providerType: event.provider,
          },
        }),
      { detail: { task: task.name }, confirmed: (run) => ({ runId: run.runId }), waitMs: HELD_CLAIM_WAIT_MS },
    );
    if (claimed.status === 'held') {
      // Another delivery of the same event is queueing this run right now (or died doing so): the sender retries.
      throw new UpstreamUnavailableError(
        `delivery ${event.deliveryId} is being handled for task '${task.name}'; retry later`,
        'deliveryId',
      );
    }
    if (claimed.status === 'done') {
      await record({
        task: task.name,
        decision: 'skipped',
        reason: 'this delivery was already handled (a redelivery)',
      });
      continue;
    }
    const run = claimed.value;
    await record({
      task: task.name,
      decision: 'triggered',
      reason: `${event.eventType} ${event.commitId.slice(0, 12)} on ${event.branch}`,
      runId: run.runId,
    });
  }
  if (decisions.length === 0)
    await record({
      decision: 'skipped',
      reason: `no task watches ${event.repositoryUrl} on branch ${event.branch}`,
    });
  return decisions;
}

/** Records why an event built nothing. */
export async function ignoreSourceEvent(
  event: IgnoredEvent,
  decisions: DecisionLog,
): Promise<TriggerDecision[]> {
  return [
    await decisions.record({
      source: event.source,
      eventId: event.deliveryId,
      decision: 'skipped',
      reason: event.reason,
    }),
  ];
}
