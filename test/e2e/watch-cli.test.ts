import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { refit } from '../support/cli';
import { GitServer } from '../support/git';
import { startRegistry, testPort, type RunningRegistry } from '../support/private-registry';
import { pushScratchImage, watchUntil } from '../support/watches';

// `refit watch list` as a user types it: a task FROM a registry that sends no events, its base watched.
describe('refit watch (e2e)', () => {
  const root = mkdtempSync(join(tmpdir(), 'refit-watch-cli-'));
  const git = new GitServer();
  let other: RunningRegistry;
  beforeAll(async () => {
    await git.start();
    other = await startRegistry(join(root, 'other'), 'other', testPort(965), null);
  });
  afterAll(async () => {
    git.stop();
    await other.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('lists the watched references with their digest, health and registry budget', async () => {
    const digest = await pushScratchImage(
      root,
      { host: other.host, repository: 'cli/base', tag: '7' },
      'cli-base',
    );
    const image = `${other.host}/cli/base:7`;
    git.commit('watch-cli-app', 'main', { Dockerfile: `FROM ${image}\nCOPY Dockerfile /app\n` });
    const create = await refit([
      'task',
      'create',
      '-n',
      'watch-cli',
      '-c',
      `${git.url('watch-cli-app')}#main`,
    ]);
    expect(create.code).toBe(0);
    await watchUntil('the base to be checked', image, (w) => w.indexDigest === digest);

    const listed = await refit(['watch', 'list', '-o', 'table']);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^IMAGE\s+DEPENDENTS\s+DIGEST\s+NEXT CHECK\s+HEALTH\s+BUDGET$/);
    const row = lines.find((l) => l.startsWith(`${image} `));
    expect(row).toMatch(new RegExp(`^\\S+\\s+1\\s+${digest.slice(0, 19)}\\s+\\S+Z\\s+OK\\s+unlimited$`));

    const json = await refit(['watch', 'list']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toContainEqual(
      expect.objectContaining({
        image,
        dependents: 1,
        indexDigest: digest,
        health: expect.objectContaining({ lastError: null, consecutiveFailures: 0 }),
        registry: expect.objectContaining({ name: other.host, budget: null, pausedUntil: null }),
      }),
    );
    expect((await refit(['task', 'delete', '-n', 'watch-cli'])).code).toBe(0);
  });
});
