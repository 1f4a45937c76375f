import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAzureDevOpsEvent, verifyAzureDevOpsAuth } from '../../../src/triggers/azure-devops';

const sample = JSON.parse(
  readFileSync(join(__dirname, '../../fixtures/azure-devops/git-push.json'), 'utf8'),
) as Record<string, any>;

describe('azure-devops', () => {
  describe('verifyAzureDevOpsAuth', () => {
    const basic = (user: string, pass: string): string =>
      `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    it.each([
      ['Basic auth with the secret as password', basic('refit', 'hook-secret'), null, true],
      ['any user name', basic('someone', 'hook-secret'), null, true],
      ['the secret header', null, 'hook-secret', true],
      ['a wrong password', basic('refit', 'nope'), null, false],
      ['no credentials', null, null, false],
      ['a bearer token', 'Bearer hook-secret', null, false],
    ])('%s → %s', (_what, auth, header, ok) => {
      expect(verifyAzureDevOpsAuth('hook-secret', auth, header)).toBe(ok);
    });
  });

  describe('parseAzureDevOpsEvent', () => {
    it("turns the documented git.push sample into a commit event on the ref's branch", () => {
      expect(parseAzureDevOpsEvent(sample)).toEqual([
        {
          source: 'azuredevops',
          provider: 'VisualStudioTeamService',
          deliveryId: sample.id,
          eventType: 'commit',
          repositoryUrl: 'https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git',
          branch: 'main',
          commitId: sample.resource.refUpdates[0].newObjectId,
          cloneUrl: 'https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git',
          cloneBranch: 'main',
        },
      ]);
    });

    it('builds nothing for a deleted branch or a tag', () => {
      const payload = {
        ...sample,
        resource: {
          ...sample.resource,
          refUpdates: [
            { name: 'refs/heads/old', oldObjectId: 'a'.repeat(40), newObjectId: '0'.repeat(40) },
            { name: 'refs/tags/v1', oldObjectId: '0'.repeat(40), newObjectId: 'b'.repeat(40) },
          ],
        },
      };
      expect(parseAzureDevOpsEvent(payload)?.map((e) => ('reason' in e ? e.reason : e.eventType))).toEqual([
        'branch old was deleted',
        'a push to refs/tags/v1 builds nothing',
      ]);
    });

    it('ignores other event types', () => {
      expect(parseAzureDevOpsEvent({ ...sample, eventType: 'build.complete' })).toBeNull();
    });
  });
});
