import { createServer, type Server } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { GitServer } from '../support/git';
import { packContext } from '../../src/cli/source-archive';
import {
  baseUrl,
  busyboxBase,
  call,
  dockerBuild,
  keyHeader,
  registry,
  registryDigest,
  until,
  uploadContext,
  waitForRun,
  waitForStatus,
  writeContext,
} from '../support/api';

/** The command lines of live processes that contain `text` (read from /proc, so no procps is needed). */
function processesRunning(text: string): string[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    })
    .filter((cmd) => cmd.includes(text));
}

// Quick builds (DockerBuildRequest) through the queue to buildah and the registry, all real.
describe('quick build', () => {
  it('builds, pushes every image name, and records the digests the registry holds', async () => {
    const path = await uploadContext(
      writeContext({
        Dockerfile: `FROM ${busyboxBase()}\nCOPY a.txt /a.txt\nRUN cat /a.txt\n`,
        'a.txt': 'hello\n',
      }),
    );
    const scheduled = await call(
      'POST',
      '/scheduleRun',
      dockerBuild(path, { imageNames: ['qb/app:{{.Run.ID}}', 'qb/app:latest'] }),
    );
    const runId = scheduled.body.name as string;

    const run = await waitForRun(runId);

    expect(run.status).toBe('Succeeded');
    expect(run.startTime).toBeDefined();
    expect(run.finishTime).toBeDefined();
    expect(run.outputImages).toHaveLength(2);
    expect(run.outputImages[0]).toMatchObject({ registry: registry(), repository: 'qb/app', tag: runId });
    expect(run.outputImages[0].digest).toBe(await registryDigest('qb/app', runId));
    expect(run.outputImages[1].digest).toBe(await registryDigest('qb/app', 'latest'));
    const log = (await call('GET', `/runs/${runId}/log`)).text;
    expect(log).toContain('STEP 3/3: RUN cat /a.txt');
    expect(log).toContain(`Run ID: ${runId} was successful after`);
  });

  it('never shows a secret build argument in the log or in any response', async () => {
    const secret = 'pa55-w0rd-xyz-7781';
    const dockerfile = `FROM ${busyboxBase()}\nARG TOKEN\nARG PLAIN\nRUN echo "token is $TOKEN and plain is $PLAIN"\n`;
    const path = await uploadContext(writeContext({ Dockerfile: dockerfile }));
    const scheduled = await call(
      'POST',
      '/scheduleRun',
      dockerBuild(path, {
        arguments: [
          { name: 'TOKEN', value: secret, isSecret: true },
          { name: 'PLAIN', value: 'visible-value' },
        ],
      }),
    );
    const runId = scheduled.body.name as string;
    const run = await waitForRun(runId);

    expect(run.status).toBe('Succeeded');
    const log = (await call('GET', `/runs/${runId}/log`)).text;
    expect(log).toContain('token is ************* and plain is visible-value');
    expect(log).not.toContain(secret);
    for (const res of [
      scheduled,
      await call('GET', `/runs/${runId}`),
      await call('GET', `/runs?$filter=runId eq '${runId}'`.replace(/ /g, '%20')),
    ]) {
      expect(res.text).not.toContain(secret);
    }
  });

  it('builds the --target stage with build arguments, and does not push when push is disabled', async () => {
    const dockerfile = [
      `FROM ${busyboxBase()} AS build`,
      'ARG GREETING=default',
      'RUN echo "stage build says $GREETING"',
      `FROM ${busyboxBase()} AS final`,
      'RUN echo "stage final ran"',
    ].join('\n');
    const path = await uploadContext(
      writeContext({ 'docker/Dockerfile.multi': dockerfile }),
      'docker/Dockerfile.multi',
    );
    const scheduled = await call(
      'POST',
      '/scheduleRun',
      dockerBuild(path, {
        dockerFilePath: 'docker/Dockerfile.multi',
        target: 'build',
        isPushEnabled: false,
        imageNames: ['qb/target:{{.Run.ID}}'],
        arguments: [{ name: 'GREETING', value: 'hi-there' }],
        noCache: true,
      }),
    );
    const runId = scheduled.body.name as string;
    const run = await waitForRun(runId);

    expect(run.status).toBe('Succeeded');
    expect(run.outputImages).toEqual([]);
    const log = (await call('GET', `/runs/${runId}/log`)).text;
    expect(log).toContain('stage build says hi-there');
    expect(log).not.toContain('stage final ran');
    expect(await registryDigest('qb/target', runId)).toBeNull();
  });

  it('fails with the reason when a build step fails or the Dockerfile is missing', async () => {
    const path = await uploadContext(writeContext({ Dockerfile: `FROM ${busyboxBase()}\nRUN exit 3\n` }));
    const failed = await waitForRun((await call('POST', '/scheduleRun', dockerBuild(path))).body.name);
    expect(failed.status).toBe('Failed');
    expect(failed.runErrorMessage).toMatch(/^the build failed with exit code \d+$/);

    const missing = await waitForRun(
      (await call('POST', '/scheduleRun', dockerBuild(path, { dockerFilePath: 'nope/Dockerfile' }))).body
        .name,
    );
    expect(missing.status).toBe('Failed');
    expect(missing.runErrorMessage).toBe("the Dockerfile 'nope/Dockerfile' was not found in the source");
  });

  it('streams the log while the run goes, and ends the stream when it ends', async () => {
    // The build cannot go past early-marker until the test has read early-marker from the stream: its next command
    // waits for this server, which answers only then. A log delivered at the end (not streamed) never gets there.
    let sawEarly: () => void = () => undefined;
    const seen = new Promise<void>((resolve) => (sawEarly = resolve));
    const gate = createServer((_req, res) => void seen.then(() => res.end('go\n')));
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
    const gatePort = (gate.address() as AddressInfo).port;
    try {
      const path = await uploadContext(
        writeContext({
          Dockerfile: `FROM ${busyboxBase()}\nRUN echo early-marker && wget -q -O - http://127.0.0.1:${gatePort}/ && echo late-marker\n`,
        }),
      );
      const runId = (await call('POST', '/scheduleRun', dockerBuild(path))).body.name as string;

      const response = await fetch(`${baseUrl()}/api/runs/${runId}/log?follow=true`, {
        headers: keyHeader(),
      });
      let text = '';
      let statusAtEarly: string | undefined;
      let lateBeforeEarly = false;
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += Buffer.from(chunk).toString();
        // Match the markers as output lines, not inside the echoed `STEP 2/2: RUN echo …` line.
        if (statusAtEarly === undefined && /^early-marker$/m.test(text)) {
          lateBeforeEarly = /^late-marker$/m.test(text);
          statusAtEarly = (await call('GET', `/runs/${runId}`)).body.properties.status as string;
          sawEarly();
        }
      }

      expect(statusAtEarly).toBe('Running');
      expect(lateBeforeEarly).toBe(false);
      expect(text).toMatch(/^go$/m);
      expect(text).toMatch(/^late-marker$/m);
      expect(text).toContain(`Run ID: ${runId} was successful`);
      expect((await call('GET', `/runs/${runId}`)).body.properties.status).toBe('Succeeded');
    } finally {
      sawEarly();
      gate.closeAllConnections();
      await new Promise((resolve) => gate.close(resolve));
    }
    // A log delivered only at the end leaves the build waiting at the gate: the bound fails the test.
  }, 60000);

  it('cancels a running build and kills its process', async () => {
    // A sleep of its own length, so that no other build on this machine is taken for it.
    const step = `sleep ${4000 + Math.floor(Math.random() * 5000)}`;
    const path = await uploadContext(writeContext({ Dockerfile: `FROM ${busyboxBase()}\nRUN ${step}\n` }));
    const runId = (await call('POST', '/scheduleRun', dockerBuild(path))).body.name as string;
    await waitForStatus(runId, 'Running');
    await until('the build step to be running', async () =>
      processesRunning(step).length > 0 ? true : undefined,
    );

    const canceled = await call('POST', `/runs/${runId}/cancel`);

    expect(canceled.status).toBe(200);
    expect(canceled.body.properties.status).toBe('Canceled');
    const run = await waitForRun(runId);
    expect(run.status).toBe('Canceled');
    // Stopping gives the process group SIGTERM and, after a 10 s grace, SIGKILL: it must be gone within that.
    await until(
      'the build process to be gone',
      async () => (processesRunning(step).length === 0 ? true : undefined),
      15000,
    );
    const log = await fetch(`${baseUrl()}/api/runs/${runId}/log?follow=true`, { headers: keyHeader() }).then(
      (r) => r.text(),
    );
    expect(log).toContain(`Run ID: ${runId} was canceled`);
  });

  it('cancels a queued run before it starts', async () => {
    // A run with an unreachable source parks no build, so cancel it straight after scheduling.
    const path = await uploadContext(writeContext({ Dockerfile: `FROM ${busyboxBase()}\n` }));
    const runId = (await call('POST', '/scheduleRun', dockerBuild(path))).body.name as string;
    const res = await call('POST', `/runs/${runId}/cancel`);
    // Either it was still Queued, or it had just started: both end Canceled, never Succeeded.
    expect([200, 409]).toContain(res.status);
    const run = await waitForRun(runId);
    expect(res.status === 200 ? run.status : 'Canceled').toBe('Canceled');
  });

  describe('remote sources', () => {
    const git = new GitServer();
    let server: Server;
    let gitPort: number;
    let httpPort: number;
    let tarball: Buffer;

    beforeAll(async () => {
      await git.start();
      gitPort = git.port;
      git.commit('app', 'dev', {
        'app/Dockerfile': `FROM ${busyboxBase()}\nCOPY msg.txt /msg.txt\nRUN cat /msg.txt\n`,
        'app/msg.txt': 'from-git-dev-branch\n',
      });
      const ctx = writeContext({
        Dockerfile: `FROM ${busyboxBase()}\nCOPY msg.txt /msg.txt\nRUN cat /msg.txt\n`,
        'msg.txt': 'from-a-tarball\n',
      });
      tarball = await packContext(ctx, 'Dockerfile');
      server = createServer((req, res) => {
        if (req.url === '/src.tar.gz') {
          res.writeHead(200, { 'content-type': 'application/gzip' });
          res.end(tarball);
        } else {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      httpPort = (server.address() as { port: number }).port;
    });

    afterAll(() => {
      git.stop();
      server?.close();
    });

    it('refuses a Dockerfile that links to a file of this machine, and never shows that file', async () => {
      // An upload cannot carry such a link (its extraction refuses it); a git repository can.
      const sha = git.commit('linked', 'main', {}, { Dockerfile: '../'.repeat(12) + 'etc/passwd' });
      const run = await waitForRun(
        (await call('POST', '/scheduleRun', dockerBuild(`${git.url('linked')}#${sha}`))).body.name,
      );
      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toBe("dockerFilePath 'Dockerfile' is a link to outside the source");
      expect((await call('GET', `/runs/${run.runId}/log`)).text).not.toContain('root:x:0:0');
    });

    it('builds from a git:// URL with #branch:folder', async () => {
      const runId = (
        await call(
          'POST',
          '/scheduleRun',
          dockerBuild(`git://127.0.0.1:${gitPort}/app.git#dev:app`, { imageNames: ['qb/git:{{.Run.ID}}'] }),
        )
      ).body.name as string;
      const run = await waitForRun(runId);
      expect(run.status).toBe('Succeeded');
      expect(run.outputImages[0].digest).toBe(await registryDigest('qb/git', runId));
      expect((await call('GET', `/runs/${runId}/log`)).text).toContain('from-git-dev-branch');
    });

    it('fails clearly when the branch does not exist', async () => {
      const run = await waitForRun(
        (await call('POST', '/scheduleRun', dockerBuild(`git://127.0.0.1:${gitPort}/app.git#nope:app`))).body
          .name,
      );
      expect(run.status).toBe('Failed');
      expect(run.runErrorMessage).toContain(`git clone of git://127.0.0.1:${gitPort}/app.git failed`);
    });

    it('builds from a tarball URL', async () => {
      const run = await waitForRun(
        (await call('POST', '/scheduleRun', dockerBuild(`http://127.0.0.1:${httpPort}/src.tar.gz`))).body
          .name,
      );
      expect(run.status).toBe('Succeeded');
      const missing = await waitForRun(
        (await call('POST', '/scheduleRun', dockerBuild(`http://127.0.0.1:${httpPort}/missing.tar.gz`))).body
          .name,
      );
      expect(missing.status).toBe('Failed');
      expect(missing.runErrorMessage).toContain('HTTP 404');
    });
  });
});
