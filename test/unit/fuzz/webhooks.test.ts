// Property-based tests of every webhook payload parser: GitHub, Azure DevOps, and the registry events
// (distribution envelope, Docker Hub, Harbor, Event Grid in both schemas). They are permissive by design (take the
// fields used, ignore the rest), so they must never throw, and what they return must be well-typed: a number where a
// branch name should be would crash the decision later, outside the request.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { RefitError } from '../../../src/errors';
import { parseAzureDevOpsEvent, verifyAzureDevOpsAuth } from '../../../src/triggers/azure-devops';
import { parseGitHubEvent, signGitHubBody, verifyGitHubSignature } from '../../../src/triggers/github';
import type { ImagePush } from '../../../src/triggers/image-update';
import {
  distributionPushes,
  dockerHubPush,
  harborPushes,
  imagePushOfGridEvent,
} from '../../../src/triggers/registry-events';
import type { IgnoredEvent, SourceEvent } from '../../../src/triggers/source-event';
import {
  corpus,
  fixture,
  itReplaysCorpus,
  mutated,
  nastyString,
  nastyValue,
  params,
  printCounts,
  refusesCleanly,
} from '../../support/fuzz';

afterAll(() => printCounts('webhooks'));

const seedsOf = (name: string): unknown[] => corpus(name).map((c) => c.input);

function expectString(value: unknown, what: string): void {
  if (typeof value !== 'string') throw new Error(`${what} is ${JSON.stringify(value)}, not a string`);
}

/** A source event or an ignored one, with every field the decision reads of the right type. */
function expectWellTyped(event: SourceEvent | IgnoredEvent): void {
  expectString(event.deliveryId, 'deliveryId');
  if ('reason' in event) return expectString(event.reason, 'reason');
  for (const k of ['repositoryUrl', 'branch', 'commitId', 'cloneUrl', 'cloneBranch'] as const)
    expectString(event[k], k);
  if (event.pullRequestId !== undefined) expectString(event.pullRequestId, 'pullRequestId');
}

/** A push with every field the image-update decision reads of the right type. */
function expectPush(push: ImagePush): void {
  for (const k of ['source', 'eventId', 'registry', 'repository', 'tag', 'digest', 'timestamp'] as const)
    expectString(push[k], k);
}

const githubSeeds = readdirSync(join(__dirname, '..', '..', 'fixtures', 'github')).map((file) => ({
  event: file.startsWith('ping') ? 'ping' : file.startsWith('pull-request') ? 'pull_request' : 'push',
  payload: fixture(`github/${file}`),
}));

describe('github (fuzzed)', () => {
  const check = (input: unknown) =>
    refusesCleanly(input, () => {
      const { event, payload } = input as { event: string; payload: unknown };
      const parsed = parseGitHubEvent(event, 'delivery-1', payload);
      if (parsed !== null && parsed !== 'ping') expectWellTyped(parsed);
    }, []);

  describe('parseGitHubEvent', () => {
    itReplaysCorpus('github', 'parseGitHubEvent', check);

    it('returns a well-typed event, an ignored event, ping or null for any payload of push, pull_request and ping', async () => {
      const event = fc.constantFrom('push', 'pull_request', 'ping', 'issues');
      const input = fc.oneof(
        fc.record({ event, payload: nastyValue }),
        // The real deliveries, mutated: the event name stays, the payload changes.
        mutated(githubSeeds).map((doc) => {
          const d = doc as { event?: unknown; payload?: unknown } | null;
          return { event: typeof d?.event === 'string' ? d.event : 'push', payload: d?.payload ?? d };
        }),
      );
      await fc.assert(
        fc.asyncProperty(input, async (i) => {
          await check(i);
        }),
        params('parseGitHubEvent', 400),
      );
    });
  });

  describe('verifyGitHubSignature', () => {
    it('answers true or false for any header, and true only for the right signature', () => {
      fc.assert(
        fc.property(
          nastyString,
          fc.uint8Array({ maxLength: 256 }),
          fc.option(nastyString),
          (secret, body, header) => {
            const raw = Buffer.from(body);
            const ok = verifyGitHubSignature(secret || 's', raw, header);
            expect(ok).toBe(header === signGitHubBody(secret || 's', raw));
          },
        ),
        params('verifyGitHubSignature', 200),
      );
    });
  });
});

describe('azure-devops (fuzzed)', () => {
  const seeds = [fixture('azure-devops/git-push.json'), ...seedsOf('azure-devops')];
  const check = (payload: unknown) =>
    refusesCleanly(payload, () => {
      const events = parseAzureDevOpsEvent(payload);
      if (events !== null) events.forEach(expectWellTyped);
    }, []);

  describe('parseAzureDevOpsEvent', () => {
    itReplaysCorpus('azure-devops', 'parseAzureDevOpsEvent', check);

    it('returns well-typed events or null for any payload and for mutated git.push hooks', async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(nastyValue, mutated(seeds), mutated(seeds)), async (p) => {
          await check(p);
        }),
        params('parseAzureDevOpsEvent', 400),
      );
    });
  });

  describe('verifyAzureDevOpsAuth', () => {
    it('answers true or false for any Authorization and secret header', () => {
      fc.assert(
        fc.property(fc.option(nastyString), fc.option(nastyString), (authorization, header) => {
          expect(typeof verifyAzureDevOpsAuth('the-secret', authorization, header)).toBe('boolean');
        }),
        params('verifyAzureDevOpsAuth', 200),
      );
    });
  });
});

describe('registry-events (fuzzed)', () => {
  /** What POST /hooks/registry does with a body, in its order: Docker Hub, Harbor, then a distribution envelope. */
  const registryHook = (body: unknown) =>
    refusesCleanly(body, () => {
      const hub = dockerHubPush(body);
      if (hub) return expectPush(hub);
      const harbor = harborPushes(body);
      if (harbor) return harbor.forEach(expectPush);
      const events = (body as { events?: unknown } | null)?.events;
      if (Array.isArray(events)) distributionPushes(events, '127.0.0.1:5000').forEach(expectPush);
    }, [RefitError]);
  const seeds = [...seedsOf('distribution'), ...seedsOf('docker-hub'), ...seedsOf('harbor')];

  describe('dockerHubPush › harborPushes › distributionPushes', () => {
    itReplaysCorpus('distribution', 'registry hook bodies', registryHook);
    itReplaysCorpus('docker-hub', 'registry hook bodies', registryHook);
    itReplaysCorpus('harbor', 'registry hook bodies', registryHook);

    it('return well-typed pushes or nothing for any body and for mutated distribution, Docker Hub and Harbor hooks', async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(nastyValue, mutated(seeds), mutated(seeds), mutated(seeds)), async (b) => {
          await registryHook(b);
        }),
        params('registry hook bodies', 600),
      );
    });
  });

  describe('imagePushOfGridEvent', () => {
    const check = (event: unknown) =>
      refusesCleanly(event, () => {
        const push = imagePushOfGridEvent(event);
        if (push) expectPush(push);
      }, []);
    itReplaysCorpus('event-grid', 'imagePushOfGridEvent', check);

    it('returns a well-typed push or null for any event, in the Event Grid and the CloudEvents schema', async () => {
      const seeds = seedsOf('event-grid');
      await fc.assert(
        fc.asyncProperty(fc.oneof(nastyValue, mutated(seeds), mutated(seeds)), async (e) => {
          await check(e);
        }),
        params('imagePushOfGridEvent', 400),
      );
    });
  });
});
