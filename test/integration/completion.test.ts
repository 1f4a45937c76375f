import { randomUUID } from 'node:crypto';
import { functions, type QueueFunction } from '../../functions/definitions';
import { pollQueue } from '../../src/local/queue-poller';
import { setRefit } from '../../src/refit';
import { RunStore } from '../../src/runs/run-store';
import { names } from '../../src/storage/storage';
import { StorageFaults } from '../../src/storage/storage-faults';
import { TaskStore } from '../../src/tasks/task-store';
import { busyboxBase, call, registry, until, waitForRun } from '../support/api';
import { GitServer } from '../support/git';
import { inProcessRefit, isFinished, startQuickBuild, waitForRecorded } from '../support/in-process';

describe('completion', () => {
  const faults = new StorageFaults();
  const r = inProcessRefit({ faults });
  const tasks = new TaskStore(r.storage);
  const git = new GitServer();
  beforeAll(() => git.start());
  afterEach(() => faults.clear());
  afterAll(async () => {
    git.stop();
    await r.executor.close();
  });

  describe('LocalExecutor.execute', () => {
    it('brings the run to its final status and marks the log complete when recording the outcome fails at first', async () => {
      const runId = await startQuickBuild(r, {
        Dockerfile: `FROM ${busyboxBase()}\nRUN echo building && sleep 3 && echo built\n`,
      });
      await waitForRecorded(r, runId, (run) => run.status === 'Running');
      // From now on, until three writes failed, storage refuses every write of a run record.
      faults.inject({ method: 'PUT', path: new RegExp(`/${names.tables.runs}\\(`), times: 3 });

      const run = await waitForRecorded(r, runId, isFinished, 60000);

      expect(faults.injected).toBe(3);
      expect(run.status).toBe('Succeeded');
      const blob = r.logs.blob(runId);
      expect((await blob.getProperties()).metadata).toEqual({ complete: 'successful' });
      expect((await blob.downloadToBuffer()).toString('utf8')).toContain(`Run ID: ${runId} was successful`);
    });
  });

  describe('RunService.recordDependencies', () => {
    const task = `completion-${randomUUID().slice(0, 8)}`;
    let runId = '';

    beforeAll(async () => {
      git.commit('completion', 'main', { Dockerfile: `FROM ${busyboxBase()}\nRUN echo hello\n` });
      const created = await call('PUT', `/tasks/${task}`, {
        properties: {
          step: { type: 'Docker', contextPath: `${git.url('completion')}#main`, imageNames: [] },
        },
      });
      expect(created.status).toBeLessThan(300);
      const scheduled = await call('POST', '/scheduleRun', { type: 'TaskRunRequest', taskId: task });
      runId = scheduled.body.name as string;
      expect((await waitForRun(runId)).status).toBe('Succeeded');
    });

    it("records what a task's successful run was built from, with the run's ID", async () => {
      // The test stack finished the run, recorded it and handled its message.
      const stored = await until('the recorded dependencies', async () => {
        const found = await tasks.find(task);
        return found?.task.dependenciesFrom?.runId === runId ? found : undefined;
      });

      expect(stored.task.baseImageDependencies).toEqual([
        expect.objectContaining({ registry: registry(), repository: 'refit/busybox', tag: 'stable' }),
      ]);
      const dependents = await r.dependencyIndex.dependents(
        r.dependencyIndex.key(stored.task.baseImageDependencies![0]!),
      );
      expect(dependents).toEqual(expect.arrayContaining([expect.objectContaining({ task })]));
    });

    it('records a run once however often its message is delivered', async () => {
      const stored = await until('the recorded dependencies', async () => {
        const found = await tasks.find(task);
        return found?.task.dependenciesFrom?.runId === runId ? found : undefined;
      });
      const image = r.dependencyIndex.key(stored.task.baseImageDependencies![0]!);
      const rowBefore = (await r.dependencyIndex.dependents(image)).find((d) => d.task === task);

      await r.runs.recordDependencies({ runId });
      await r.runs.recordDependencies({ runId });

      expect((await tasks.find(task))?.etag).toBe(stored.etag);
      expect((await r.dependencyIndex.dependents(image)).find((d) => d.task === task)).toEqual(rowBefore);
    });

    it('records nothing on a task re-created with the name of the task a run belonged to', async () => {
      const store = new RunStore(r.storage, r.config.runIdPrefix);
      const first = (await store.get(runId)).run;
      const other = `completion-re-${randomUUID().slice(0, 8)}`;
      const late = { ...first, runId: await r.runs.nextRunId(), taskName: other };
      await store.create(late);
      // The run's task is deleted and a task of the same name created while the run was still building.
      const created = await call('PUT', `/tasks/${other}`, {
        properties: {
          step: { type: 'Docker', contextPath: `${git.url('completion')}#main`, imageNames: [] },
        },
      });
      expect(created.status).toBeLessThan(300);
      const before = await tasks.find(other);

      await r.runs.recordDependencies({ runId: late.runId });

      expect((await tasks.find(other))?.etag).toBe(before?.etag);
      expect((await tasks.find(other))?.task.dependenciesFrom).toBeUndefined();
    });

    it('leaves the message to a later delivery while the run has not finished, and drops it for a run that failed', async () => {
      const store = new RunStore(r.storage, r.config.runIdPrefix);
      const first = (await store.get(runId)).run;
      const running = { ...first, runId: await r.runs.nextRunId(), status: 'Running' as const };
      const failed = { ...first, runId: await r.runs.nextRunId(), status: 'Failed' as const };
      await Promise.all([store.create(running), store.create(failed)]);
      const before = await tasks.find(task);

      await expect(r.runs.recordDependencies({ runId: running.runId })).rejects.toThrow(
        /has not finished yet/,
      );
      await r.runs.recordDependencies({ runId: failed.runId });
      await r.runs.recordDependencies({ runId: 'not a run' });

      expect((await tasks.find(task))?.etag).toBe(before?.etag);
    });

    it('is retried from the queue when recording fails, and then records', async () => {
      // A later successful run of the task, as the completion path leaves it, whose message is still to handle.
      const store = new RunStore(r.storage, r.config.runIdPrefix);
      const first = (await store.get(runId)).run;
      const later = { ...first, runId: await r.runs.nextRunId(), finishTime: new Date().toISOString() };
      await store.create(later);
      // The local host's poller on a queue of this test's own (the test stack polls the shared one).
      const queueName = `completion-${randomUUID().slice(0, 8)}`;
      const queue = r.storage.queue(queueName);
      const poison = r.storage.queue(`${queueName}-poison`);
      await Promise.all([queue.create(), poison.create()]);
      const fn = functions.find((f) => f.name === 'runDependencies') as QueueFunction;
      setRefit(r);
      faults.inject({ path: new RegExp(`/${names.tables.dependencies}\\(`), times: 1 });
      await queue.sendMessage(JSON.stringify({ runId: later.runId }));
      const poller = pollQueue(
        { ...fn, queueName },
        {
          options: {
            host: '127.0.0.1',
            port: 0,
            apiKey: 'unused',
            maxBodyBytes: 1024,
            allowedOrigins: [],
            publicHost: undefined,
            queue: (name) => r.storage.queue(name),
            retryVisibilitySeconds: 1,
          },
          track: (promise) => promise,
          wake: () => undefined,
        },
      );
      try {
        await until('the recording of the later run', async () => {
          const found = await tasks.find(task);
          return found?.task.dependenciesFrom?.runId === later.runId ? found : undefined;
        });
        await until('the message to be deleted', async () => {
          const props = await queue.getProperties();
          return props.approximateMessagesCount === 0 ? true : undefined;
        });
      } finally {
        poller.stop();
      }

      expect(faults.injected).toBe(1);
      expect((await poison.peekMessages()).peekedMessageItems).toEqual([]);
      await Promise.all([queue.delete(), poison.delete()]);
    });
  });
});
