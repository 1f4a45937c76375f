import { randomUUID } from 'node:crypto';
import { busyboxBase, registry, registryDigest, until } from '../support/api';
import { FakeAci } from '../support/fake-aci';
import { validateAciTraffic } from '../support/aci-traffic';
import { isFinished, waitForRecorded } from '../support/in-process';
import { aciSuite, api, completeLogOf, API_KEY, logOf, STAND_IN, upload } from '../support/aci-refit';
import { testPort } from '../support/private-registry';

/** The digest the registry holds for `registry/repository:tag`. */
function manifestDigest(image: string): Promise<string | null> {
  const [repository, tag] = image.slice(registry().length + 1).split(':');
  return registryDigest(repository!, tag!);
}

describe('AciExecutor', () => {
  const fake = new FakeAci({ play: { programs: { '/kaniko/executor': STAND_IN, '/busybox/sh': 'sh' } } });
  const suite = aciSuite(fake, testPort(600));

  describe('a quick build', () => {
    it('goes from Queued to Succeeded in a container group, with the digest the builder pushed and its log in the run blob', async () => {
      const image = `${registry()}/aci/quick-${randomUUID().slice(0, 8)}:{{.Run.ID}}`;
      const sourceLocation = await upload(suite.r, {
        Dockerfile: `FROM ${busyboxBase()}\nRUN echo built-in-aci > /built.txt\n`,
      });
      const scheduled = await api(suite.url, 'POST', '/scheduleRun', {
        type: 'DockerBuildRequest',
        sourceLocation,
        dockerFilePath: 'Dockerfile',
        imageNames: [image],
        platform: { os: 'Linux', architecture: 'amd64' },
      });
      expect(scheduled.status).toBe(200);
      const runId = scheduled.body.properties.runId as string;

      const run = await waitForRecorded(suite.r, runId, isFinished);

      const pushed = image.replace('{{.Run.ID}}', runId);
      expect({ status: run.status, error: run.runErrorMessage }).toEqual({
        status: 'Succeeded',
        error: undefined,
      });
      const [repository] = pushed.slice(registry().length + 1).split(':');
      expect(run.outputImages).toEqual([
        { registry: registry(), repository, tag: runId, digest: await manifestDigest(pushed) },
      ]);
      expect(run.baseImageDependencies).toEqual([
        expect.objectContaining({
          repository: 'refit/busybox',
          tag: 'stable',
          digest: expect.stringMatching(/^sha256:/),
        }),
      ]);
      expect(run.costEstimate).toMatchObject({ currency: 'USD', cores: 2.25, memoryGb: 2.5 });
      const log = await completeLogOf(suite.r, runId);
      expect(log).toContain('Source fetched');
      expect(log).toContain(`INFO Pushed ${pushed}`);
      expect(log).toContain(`Run ID: ${runId} was successful`);
      expect((await suite.r.logs.blob(runId).getProperties()).metadata).toEqual({ complete: 'successful' });
      // The group is deleted once the run is recorded.
      await until('the group to be deleted', async () =>
        fake.groups().some((g) => g.name.includes(runId)) ? undefined : true,
      );
    });
  });

  describe('the log', () => {
    it('streams to a follower while the group builds, with the secret build argument masked before it leaves the group', async () => {
      const secret = `aci-secret-${randomUUID().slice(0, 8)}`;
      const sourceLocation = await upload(suite.r, {
        Dockerfile: `FROM ${busyboxBase()}\nARG TOKEN\nRUN echo "token is $TOKEN" && sleep 2 && echo done-sleeping\n`,
      });
      const scheduled = await api(suite.url, 'POST', '/scheduleRun', {
        type: 'DockerBuildRequest',
        sourceLocation,
        dockerFilePath: 'Dockerfile',
        imageNames: [],
        isPushEnabled: false,
        platform: { os: 'Linux', architecture: 'amd64' },
        arguments: [{ name: 'TOKEN', value: secret, isSecret: true }],
      });
      expect(scheduled.status).toBe(200);
      const runId = scheduled.body.properties.runId as string;

      // Followed from the start: the response ends when the run's log is marked complete.
      const followed = await fetch(`${suite.url}/api/runs/${runId}/log?follow=true`, {
        headers: { 'x-functions-key': API_KEY },
      }).then((res) => res.text());

      const run = await waitForRecorded(suite.r, runId, isFinished);
      expect(run.status).toBe('Succeeded');
      expect(followed).toContain('token is ***');
      expect(followed).toContain('done-sleeping');
      expect(followed).toContain(`Run ID: ${runId} was successful`);
      expect(followed).not.toContain(secret);
      expect(await logOf(suite.r, runId)).not.toContain(secret);
      // The secret reached the build (the group's secure value), and no request to ARM showed it in a plain value.
      const put = fake.requests.find((p) => p.request.method === 'PUT' && p.request.url.includes(runId));
      expect(JSON.stringify(put?.request.body)).toContain(secret);
      expect(
        JSON.stringify(put?.request.body, (key, value: unknown) =>
          key === 'secureValue' ? undefined : value,
        ),
      ).not.toContain(secret);
    });
  });

  describe('a Docker task', () => {
    it('runs from its git source and ends Succeeded with the image pushed', async () => {
      const task = `aci-task-${randomUUID().slice(0, 8)}`;
      suite.git.commit(task, 'main', {
        'app/Dockerfile': `FROM ${busyboxBase()}\nRUN echo from-git > /git.txt\n`,
      });
      const image = `${registry()}/aci/${task}:{{.Run.ID}}`;
      const created = await api(suite.url, 'PUT', `/tasks/${task}`, {
        properties: {
          platform: { os: 'Linux', architecture: 'amd64' },
          step: {
            type: 'Docker',
            contextPath: `${suite.git.url(task)}#main:app`,
            dockerFilePath: 'Dockerfile',
            imageNames: [image],
          },
        },
      });
      expect(created.status).toBe(201);
      const scheduled = await api(suite.url, 'POST', '/scheduleRun', {
        type: 'TaskRunRequest',
        taskId: task,
      });
      expect(scheduled.status).toBe(200);
      const runId = scheduled.body.properties.runId as string;

      const run = await waitForRecorded(suite.r, runId, isFinished);

      expect({ status: run.status, error: run.runErrorMessage }).toEqual({
        status: 'Succeeded',
        error: undefined,
      });
      const pushed = image.replace('{{.Run.ID}}', runId);
      expect(run.outputImages.map((o) => o.digest)).toEqual([await manifestDigest(pushed)]);
    });
  });

  describe('its traffic', () => {
    it('holds to the ACI OpenAPI spec: every request it sent validates with oav', async () => {
      expect(fake.requests.length).toBeGreaterThan(0);
      expect(await validateAciTraffic(fake.requests)).toEqual([]);
    });
  });
});
