// A worker whose claimWork long poll goes away (timeout, crash) must not be handed a task: the
// embedded queue stops waiting for it when the connection closes, so the next worker gets the task.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import { queueClient } from '../src/taskcluster/client.js';
import { waitFor } from './helpers/wait.js';

describe('embedded queue: claimWork of a client that went away', function () {
  this.timeout(60_000);
  let tmp: string;
  let embedded: Embedded;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-claimwork-'));
    embedded = await startEmbedded({
      stateDir: tmp,
      s3: false,
      sweepIntervalMs: 0,
      claimWorkPollMs: 30_000,
    });
  });
  after(async () => {
    await embedded?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('hands the task to the next worker, not to the poll that was abandoned', async () => {
    const o = { rootUrl: embedded.rootUrl, credentials: embedded.credentials };
    const impatient = queueClient({ ...o, timeout: 300, retries: 0 });
    const queue = queueClient(o);
    const taskQueueId = 'proj-mozharness/disconnect';
    await assert.rejects(
      impatient.claimWork(taskQueueId, { workerGroup: 'g', workerId: 'gone', tasks: 1 }),
    );
    // the queue notices the closed connection and stops waiting for it before work arrives
    await waitFor(
      'the abandoned poll to stop waiting',
      () => embedded.queue.waitingPolls(taskQueueId) === 0,
    );
    const now = new Date();
    const taskId = 'fN2wvtyQRKmw1JU1pVXY3w';
    await queue.createTask(taskId, {
      taskQueueId,
      schedulerId: 'mozharness-level-1',
      created: now.toISOString(),
      deadline: new Date(now.getTime() + 3600e3).toISOString(),
      payload: {},
      metadata: { name: 't', description: 'd', owner: 'a@example.com', source: 'https://e.com/x' },
    });
    const res = await queue.claimWork(taskQueueId, {
      workerGroup: 'g',
      workerId: 'next',
      tasks: 1,
    });
    assert.equal(res.tasks[0]?.status.taskId, taskId);
    assert.equal(res.tasks[0]?.workerId, 'next');
  });
});
