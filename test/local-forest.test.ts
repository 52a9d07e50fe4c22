// `local up --repo`: a developer pushes to the local forest's git repository over smart HTTP, and
// every task of each push runs; a push that leaves the harness alone reuses the archive; a
// retrigger through the API (Treeherder's path) makes new tasks that the worker pools run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { triggerAction } from '../src/actions/trigger.js';
import { ARCHIVE_LABEL } from '../src/contract/index.js';
import { loadGraphConfig } from '../src/decision/config.js';
import type { Forest } from '../src/local/forest.js';
import { pushArchive, pushLabels, type PushRecord } from '../src/local/pushes.js';
import { listTaskGroup } from '../src/taskcluster/listing.js';
import { indexClient, queueClient } from '../src/taskcluster/client.js';
import { FOREST_WAIT, gitClone, pushOf, settled, startSampleForest } from './helpers/forest.js';
import { waitFor } from './helpers/wait.js';

describe('local up --repo (the local forest, git)', function () {
  this.timeout(900_000);
  let tmp: string;
  let forest: Forest;
  const events: string[] = [];
  let pushes: PushRecord[] = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-forest-'));
    forest = await startSampleForest(tmp, 'git', (l) => events.push(l));
  });
  after(async () => {
    await forest?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('prints a loopback URL that accepts pushes, and runs every task of each push', async () => {
    assert.match(forest.repository!.url, /^http:\/\/127\.0\.0\.1:\d+\/mozilla-central$/);
    const queue = queueClient({
      rootUrl: forest.embedded.rootUrl,
      credentials: forest.embedded.credentials,
    });
    const dev = await gitClone(forest.repository!.url, path.join(tmp, 'dev'));
    const harness = await dev.commitAndPush(
      {
        'testing/mozharness/configs/unittests/linux_unittest.py':
          'config = {"suites": ["xpcshell"]}\n',
      },
      'Bug 10 - Run only xpcshell on Linux (harness change)',
    );
    const p1 = await pushOf(forest.pushLog, harness);
    assert.equal(p1.author, 'Forest Developer <forest@example.com>');
    assert.match(p1.message, /^Bug 10/);
    const t1 = await settled(queue, p1.decisionTaskId);
    for (const t of t1) assert.equal(t.status.state, 'completed', t.task.metadata.name);
    assert.ok(
      t1.some((t) => t.task.metadata.name === ARCHIVE_LABEL),
      'the archive task ran',
    );

    const other = await dev.commitAndPush(
      { 'browser/app/moz.build': "DIRS += ['profile', 'themes', 'branding']\n" },
      'Bug 11 - Branding (no harness change)',
    );
    const p2 = await pushOf(forest.pushLog, other);
    assert.equal(p2.baseRevision, harness);
    const t2 = await settled(queue, p2.decisionTaskId);
    for (const t of t2) assert.equal(t.status.state, 'completed', t.task.metadata.name);
    assert.ok(!t2.some((t) => t.task.metadata.name === ARCHIVE_LABEL), 'no archive task');
    assert.ok(
      t2.some((t) => /^test-/.test(t.task.metadata.name)),
      'downstream tasks ran',
    );

    const clients = { queue, index: indexClient({ rootUrl: forest.embedded.rootUrl }) };
    const config = await loadGraphConfig(path.resolve('taskcluster'));
    const a1 = await pushArchive(clients, p1, config);
    const a2 = await pushArchive(clients, p2, config);
    assert.equal(a1.reused, false);
    assert.equal(a2.reused, true, 'the second push reused the archive');
    assert.equal(a2.taskId, a1.taskId);
    assert.equal(a2.sha256, a1.sha256);
    pushes = [p1, p2];
  });

  it('runs a retrigger made through the API: running, then completed', async () => {
    assert.equal(pushes.length, 2, 'the pushes ran');
    const p2 = pushes[1]!;
    const queue = queueClient({
      rootUrl: forest.embedded.rootUrl,
      credentials: forest.embedded.credentials,
    });
    const labels = await pushLabels(queue, p2.decisionTaskId);
    const label = Object.keys(labels).find((l) => l.startsWith('test-'))!;
    const before = new Set(
      (await listTaskGroup(queue, p2.decisionTaskId)).map((t) => t.status.taskId),
    );
    const r = await triggerAction({
      rootUrl: forest.embedded.rootUrl,
      credentials: forest.embedded.credentials,
      decisionTaskId: p2.decisionTaskId,
      action: 'retrigger-multiple',
      input: { requests: [{ tasks: [label], times: 1 }] },
    });
    const added = await waitFor(
      'the retriggered task to complete',
      async () => {
        const tasks = (await listTaskGroup(queue, p2.decisionTaskId)).filter(
          (t) => !before.has(t.status.taskId),
        );
        const retriggered = tasks.filter((t) => t.task.metadata.name === label);
        const resolved = (id: string) =>
          events.some((e) => e.startsWith('completed') && e.includes(id));
        return retriggered.length &&
          tasks.every((t) => t.status.state === 'completed' && resolved(t.status.taskId))
          ? tasks
          : undefined;
      },
      FOREST_WAIT,
    );
    const ids = added.map((t) => t.status.taskId);
    assert.ok(ids.includes(r.actionTaskId), 'the action task ran');
    for (const id of ids) {
      // the worker pools claimed each (running) before it resolved (completed)
      const i = events.findIndex((e) => e.startsWith('running') && e.includes(id));
      const j = events.findIndex((e) => e.startsWith('completed') && e.includes(id));
      assert.ok(i >= 0 && j > i, `${id}: ${events.filter((e) => e.includes(id)).join(' | ')}`);
      const status = await queue.status(id);
      assert.ok(status.status.runs[0]!.started, 'the run started');
      assert.equal(status.status.runs[0]!.state, 'completed');
    }
  });
});
