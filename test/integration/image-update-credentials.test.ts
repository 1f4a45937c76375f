import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRefit, imageUpdateDeps } from '../../src/refit';
import { handleImagePush } from '../../src/triggers/image-update';
import { stackConfig } from '../support/api';
import { copyBusybox, startRegistry, testPort, type RunningRegistry } from '../support/private-registry';

const USER = 'carol';
const PASSWORD = 'decision-pw-884';
const OLD = `sha256:${'c'.repeat(64)}`;
const UNREACHABLE = 'https://127.0.0.1:9/unreachable.git';

// The base-image decision looks a base's platform digest up once per platform AND login: a task with credentials for
// a private registry sees the digest, a task without them does not, and neither gets the other's answer.
describe('handleImagePush', () => {
  const root = mkdtempSync(join(tmpdir(), 'refit-decision-'));
  const refit = createRefit(stackConfig());
  let priv: RunningRegistry;
  beforeAll(async () => {
    priv = await startRegistry(join(root, 'private'), 'decision', testPort(980), {
      htpasswd: { user: USER, password: PASSWORD },
    });
    await copyBusybox(root, [`${priv.host}/private/base:1`], { username: USER, password: PASSWORD });
  });
  afterAll(async () => {
    await priv.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("looks a private base up with each task's own login: no task gets an answer another login got", async () => {
    const base = { registry: priv.host, repository: 'private/base', tag: '1' };
    const current = await refit.registry.resolve(
      { ...base, digest: null },
      { os: 'Linux', architecture: 'amd64' },
      { username: USER, password: PASSWORD },
    );
    expect(current?.platformDigest).toMatch(/^sha256:/);
    const suffix = randomUUID().slice(0, 8);
    const withLogin = `decision-login-${suffix}`;
    const withoutLogin = `decision-none-${suffix}`;
    for (const name of [withLogin, withoutLogin]) {
      await refit.tasks.create(name, {
        properties: {
          step: { type: 'Docker', contextPath: UNREACHABLE, imageNames: [] },
          trigger: { baseImageTrigger: { name: 'base', baseImageTriggerType: 'All' } },
          ...(name === withLogin
            ? {
                credentials: {
                  customRegistries: {
                    [priv.host]: {
                      userName: { type: 'Opaque', value: USER },
                      password: { type: 'Opaque', value: PASSWORD },
                    },
                  },
                },
              }
            : {}),
        },
      });
      // Both last built from the base's current platform digest, under an older index digest.
      await refit.dependencyIndex.record(
        name,
        [{ type: 'RunTime', ...base, digest: OLD, platformDigest: current!.platformDigest }],
        [],
      );
    }

    const record = await handleImagePush(
      {
        source: 'decision-test',
        eventId: randomUUID(),
        ...base,
        digest: current!.digest,
        timestamp: new Date().toISOString(),
      },
      imageUpdateDeps(refit),
    );

    const decisionOf = (task: string) => record?.decisions.find((d) => d.task === task);
    // The task with the login sees that its platform did not change; the other cannot see it, so it rebuilds.
    expect(decisionOf(withLogin)).toMatchObject({
      decision: 'skipped',
      reason: expect.stringMatching(/^platform unchanged/),
    });
    expect(decisionOf(withoutLogin)).toMatchObject({ decision: 'triggered' });
  });
});
