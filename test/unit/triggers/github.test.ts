import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseGitHubEvent, signGitHubBody, verifyGitHubSignature } from '../../../src/triggers/github';

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(join(__dirname, '../../fixtures/github', name), 'utf8'));

describe('github', () => {
  describe('verifyGitHubSignature', () => {
    const body = Buffer.from('{"zen":"Design for failure."}');

    it("accepts GitHub's sha256= HMAC of the raw body", () => {
      expect(verifyGitHubSignature('s3cret', body, signGitHubBody('s3cret', body))).toBe(true);
    });

    it("matches the example in GitHub's docs", () => {
      // docs.github.com "Validating webhook deliveries": secret "It's a Secret to Everybody", payload "Hello, World!"
      expect(
        verifyGitHubSignature(
          "It's a Secret to Everybody",
          Buffer.from('Hello, World!'),
          'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
        ),
      ).toBe(true);
    });

    it.each([
      ['a missing header', null],
      ['another secret', signGitHubBody('other', body)],
      ['another body', signGitHubBody('s3cret', '{"zen":"x"}')],
      ['the legacy sha1 form', 'sha1=0123456789abcdef0123456789abcdef01234567'],
      ['a truncated signature', signGitHubBody('s3cret', body).slice(0, 20)],
    ])('refuses %s', (_what, header) => {
      expect(verifyGitHubSignature('s3cret', body, header)).toBe(false);
    });
  });

  describe('parseGitHubEvent', () => {
    it('turns a push to a branch into a commit event for the pushed head', () => {
      expect(parseGitHubEvent('push', 'd1', fixture('push-new-branch.json'))).toEqual({
        source: 'github',
        provider: 'Github',
        deliveryId: 'd1',
        eventType: 'commit',
        repositoryUrl: 'https://github.com/Codertocat/Hello-World.git',
        branch: 'master',
        commitId: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
        cloneUrl: 'https://github.com/Codertocat/Hello-World.git',
        cloneBranch: 'master',
      });
    });

    it.each([
      ['push-tag.json', 'a tag push (v1.0.0) builds nothing'],
      ['push-tag-deleted.json', 'a tag push (simple-tag) builds nothing'],
      ['push-branch-deleted.json', 'branch feature was deleted'],
    ])('builds nothing for %s, saying why', (name, reason) => {
      expect(parseGitHubEvent('push', 'd2', fixture(name))).toEqual({
        source: 'github',
        deliveryId: 'd2',
        reason,
      });
    });

    it('answers ping', () => {
      expect(parseGitHubEvent('ping', 'd3', fixture('ping.json'))).toBe('ping');
    });

    it('turns an opened pull request into a pull-request event on its base branch, cloning its head', () => {
      expect(parseGitHubEvent('pull_request', 'd4', fixture('pull-request-opened.json'))).toMatchObject({
        eventType: 'pullrequest',
        branch: 'master',
        commitId: 'ec26c3e57ca3a959ca5aad62de7213c562f8c821',
        pullRequestId: '2',
        cloneBranch: 'changes',
        cloneUrl: 'https://github.com/Codertocat/Hello-World.git',
      });
    });

    it('marks nothing as a fork when head and base are the same repository', () => {
      const event = parseGitHubEvent('pull_request', 'd7', fixture('pull-request-opened.json'));
      expect(event).not.toHaveProperty('fromFork');
    });

    it.each([
      ['in a fork', { clone_url: 'https://github.com/Octocoders/Hello-World.git' }],
      ['in a deleted fork (head.repo null)', null],
    ])('marks a pull request whose head is %s as from a fork', (_what, headRepo) => {
      const payload = fixture('pull-request-opened.json') as { pull_request: { head: { repo: unknown } } };
      payload.pull_request.head.repo = headRepo;
      expect(parseGitHubEvent('pull_request', 'd8', payload)).toMatchObject({
        eventType: 'pullrequest',
        repositoryUrl: 'https://github.com/Codertocat/Hello-World.git',
        fromFork: true,
      });
    });

    it('builds nothing for a closed pull request', () => {
      const closed = { ...(fixture('pull-request-opened.json') as object), action: 'closed' };
      expect(parseGitHubEvent('pull_request', 'd5', closed)).toEqual({
        source: 'github',
        deliveryId: 'd5',
        reason: "pull request action 'closed' builds nothing",
      });
    });

    it('ignores event types it does not handle', () => {
      expect(parseGitHubEvent('issues', 'd6', {})).toBeNull();
    });
  });
});
