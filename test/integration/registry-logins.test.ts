import { mkdtempSync, readdirSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTH_FILE } from '../../src/executors/local/registry-auth-file';
import { runProcess } from '../../src/process/run-process';
import { RegistryNames } from '../../src/registry/registry-names';
import type { Refit } from '../../src/refit';
import { RunStore } from '../../src/runs/run-store';
import { newTaskFileRun, parseTaskFileRunRequest } from '../../src/runs/task-file-run';
import { requestLogins } from '../../src/tasks/task-credentials';
import { busyboxBase, until } from '../support/api';
import { inProcessRefit, isFinished, startQuickBuild, waitForRecorded } from '../support/in-process';
import { copyBusybox, startRegistry, testPort, type RunningRegistry } from '../support/private-registry';

const USER = 'bob';
const PASSWORD = 'run-logins-s3cret-71';

/**
 * Stores a Queued quick run of `taskFile` with `credentials` and dispatches it to `r`'s own executor, without the
 * runs queue (the test stack polls that queue, and would take the run). Returns the run ID.
 */
async function startTaskFileRun(
  r: Refit,
  taskFile: string,
  credentials?: unknown,
  runId?: string,
): Promise<string> {
  const request = parseTaskFileRunRequest(
    {
      type: 'EncodedTaskRunRequest',
      encodedTaskContent: Buffer.from(taskFile).toString('base64'),
      platform: { os: 'Linux', architecture: 'amd64' },
      ...(credentials ? { credentials } : {}),
    },
    'EncodedTaskRunRequest',
  );
  runId ??= await r.runs.nextRunId();
  const registries = requestLogins(
    request.credentials,
    new RegistryNames(r.config.homeRegistry, r.config.homeRegistryAliases),
  );
  const run = newTaskFileRun(request, {
    runId,
    now: new Date(),
    secretKey: r.config.secretKey,
    runType: 'QuickRun',
    registries,
  });
  await new RunStore(r.storage, r.config.runIdPrefix).create(run);
  await r.runs.dispatch({ runId });
  return runId;
}

/** The run's work folder while it runs. */
function workFolder(r: Refit, runId: string): string | undefined {
  const name = readdirSync(r.config.workDir).find((n) => n.startsWith(`${runId}-`));
  return name ? join(r.config.workDir, name) : undefined;
}

/** The run's work folder, once its auth file is written there (a run that ends first fails the wait, saying how). */
function authFileWritten(r: Refit, runId: string): Promise<string> {
  return until(
    'the run to write its auth file',
    async () => {
      const dir = workFolder(r, runId);
      if (dir && statSync(join(dir, AUTH_FILE), { throwIfNoEntry: false })) return dir;
      const run = await r.runs.get(runId);
      if (isFinished(run)) throw new Error(`run ${runId} ended ${run.status}: ${run.runErrorMessage}`);
      return undefined;
      // A bound, not a timing: the run may wait for a build slot while an earlier run cleans up.
    },
    90000,
  );
}

// A cmd step that waits until the test releases it (a file in the shared workspace), pulled from a private registry.
const waiting = (image: string): string =>
  `version: v1.1.0\nsteps:\n  - cmd: ${image} sh -c "while [ ! -f /workspace/go ]; do sleep 0.2; done; echo released"\n`;

describe('LocalExecutor', () => {
  const root = mkdtempSync(join(tmpdir(), 'refit-logins-'));
  let priv: RunningRegistry;
  let r: Refit;
  let image: string;
  // An image no run here has pulled: the executor's storage does not hold it (see the last test).
  const unpulled = (): string => `${priv.host}/private/unpulled:1`;
  const credentials = () => ({
    customRegistries: {
      [priv.host]: {
        userName: { type: 'Opaque', value: USER },
        password: { type: 'Opaque', value: PASSWORD },
      },
    },
  });
  beforeAll(async () => {
    priv = await startRegistry(join(root, 'private'), 'logins', testPort(970), {
      htpasswd: { user: USER, password: PASSWORD },
    });
    image = `${priv.host}/private/busybox:1`;
    await copyBusybox(root, [image, unpulled()], { username: USER, password: PASSWORD });
    r = inProcessRefit();
  });
  afterAll(async () => {
    await r.executor.close();
    await priv.stop();
    rmSync(root, { recursive: true, force: true });
  });

  describe('registry logins', () => {
    it("pulls a cmd step's image with the run's login, from a 0600 auth file in its work folder that is gone after the run", async () => {
      const runId = await startTaskFileRun(r, waiting(image), credentials());
      const folder = await authFileWritten(r, runId);
      const authFile = join(folder, AUTH_FILE);
      expect(statSync(authFile).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(authFile, 'utf8'))).toEqual({
        auths: { [priv.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } },
      });

      // The step waits for this file in its workspace: the run's own folder, mounted at /workspace.
      await until('the workspace', async () =>
        statSync(join(folder, 'workspace'), { throwIfNoEntry: false }) ? true : undefined,
      );
      writeFileSync(join(folder, 'workspace', 'go'), '');
      const run = await waitForRecorded(r, runId, isFinished);
      // The log is in the failure's message when the run did not succeed: it says why buildah failed.
      const log = (await r.logs.blob(runId).downloadToBuffer()).toString('utf8');
      expect({
        status: run.status,
        error: run.runErrorMessage,
        log: run.status === 'Succeeded' ? '' : log,
      }).toEqual({
        status: 'Succeeded',
        error: undefined,
        log: '',
      });
      await until('the work folder to be removed', async () => (workFolder(r, runId) ? undefined : true));
      expect(() => statSync(authFile)).toThrow();
    });

    it("runs a cmd step whose storage holds a container named after the same run ID (another deployment's)", async () => {
      const runId = await r.runs.nextRunId();
      const taken = `refit-${runId}-acb_step_0-1`;
      // The name may be taken already (a container an earlier test run left): either way, it is in use.
      let output = '';
      const made = await runProcess(
        'buildah',
        [...r.config.buildahGlobalArgs, 'from', '--name', taken, 'scratch'],
        { onOutput: (chunk) => (output += chunk) },
      );
      expect(made.code === 0 || output.includes('already in use') ? '' : output).toBe('');
      try {
        await startTaskFileRun(
          r,
          `version: v1.1.0\nsteps:\n  - cmd: ${image} echo ran\n`,
          credentials(),
          runId,
        );
        const run = await waitForRecorded(r, runId, isFinished);
        expect({ status: run.status, error: run.runErrorMessage }).toEqual({
          status: 'Succeeded',
          error: undefined,
        });
      } finally {
        if (made.code === 0) await runProcess('buildah', [...r.config.buildahGlobalArgs, 'rm', taken]);
      }
    });

    it('removes the auth file when the run is canceled', async () => {
      const runId = await startTaskFileRun(r, waiting(image), credentials());
      const authFile = join(await authFileWritten(r, runId), AUTH_FILE);
      await r.runs.cancel(runId);
      const run = await waitForRecorded(r, runId, isFinished);
      expect(run.status).toBe('Canceled');
      await until(
        'the auth file to be removed',
        async () => (statSync(authFile, { throwIfNoEntry: false }) ? undefined : true),
        90000,
      );
    });

    it('does not run a private image an earlier run left in the storage for a run without the login', async () => {
      // The first test pulled the image with its login: the shared buildah storage holds it.
      const runId = await startTaskFileRun(r, `version: v1.1.0\nsteps:\n  - cmd: ${image} echo leaked\n`);
      const run = await waitForRecorded(r, runId, isFinished);
      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain(`${priv.host} refused the request: unauthorized`);
    });

    it('does not build FROM a private image an earlier run left in the storage for a run without the login', async () => {
      const runId = await startQuickBuild(r, { Dockerfile: `FROM ${image}\nRUN echo leaked\n` });
      const run = await waitForRecorded(r, runId, isFinished);
      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain(`${priv.host} refused the request: unauthorized`);
    });

    it('fails a multi-step build FROM a private base without the login, naming the registry and unauthorized', async () => {
      // The first step writes the Dockerfile into the shared workspace; the build step builds FROM the private base.
      const taskFile = [
        'version: v1.1.0',
        'steps:',
        `  - cmd: ${busyboxBase()} sh -c "printf 'FROM ${image}\\nRUN echo leaked\\n' > /workspace/Dockerfile"`,
        '  - build: -t multi-private:1 .',
        '',
      ].join('\n');
      const runId = await startTaskFileRun(r, taskFile);
      const run = await waitForRecorded(r, runId, isFinished);
      const log = (await r.logs.blob(runId).downloadToBuffer()).toString('utf8');
      expect({ status: run.status, error: run.runErrorMessage, log }).toEqual({
        status: 'Failed',
        error: expect.stringContaining(`${priv.host} refused the request: unauthorized`),
        log: expect.any(String),
      });
    });

    it('fails a cmd step whose image is refused for lack of a login, naming the registry and unauthorized', async () => {
      const runId = await startTaskFileRun(r, `version: v1.1.0\nsteps:\n  - cmd: ${unpulled()} echo never\n`);
      const run = await waitForRecorded(r, runId, isFinished);
      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain(`${priv.host} refused the request: unauthorized`);
    });
  });
});
