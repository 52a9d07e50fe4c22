// The decision task on a deployment configured by `ci-config --apply`: the roles, hooks and pools
// come from the in-tree configuration (src/actions/ci-config.ts), the decision task is rendered
// from .taskcluster.yml as the hg-push hook renders it, claimed from its queue like a decision
// worker would, and submits its graph with the temporary credentials of that claim, so the
// deployment's auth (the real one under npm run test:real) enforces exactly the scopes the task and
// the applied roles give it. The next push with the same harness reuses the archive through the
// index (asynchronous on the real services: polled).
import assert from 'node:assert/strict';
import { runDecision } from '../../src/decision/decision.js';
import type { HarnessDigest } from '../../src/decision/digest.js';
import type { Parameters } from '../../src/decision/parameters.js';
import {
  indexClient,
  queueClient,
  slugid,
  type IndexClient,
  type QueueClient,
} from '../../src/taskcluster/client.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { waitFor } from '../helpers/wait.js';
import { setUpDeployment, type Deployment } from '../helpers/deployment.js';

const backendName = process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded';

describe(`integration: the decision task with the scopes of its claim (${backendName} services)`, function () {
  this.timeout(180_000);
  let backend: Backend;
  let d: Deployment;
  let root: QueueClient;
  const digest: HarnessDigest = {
    treeDigest: '7e'.repeat(32),
    sha256: '9a'.repeat(32),
    size: 4242,
    files: 12,
    revision: '1'.repeat(40),
    subdir: 'testing/mozharness',
    formatVersion: 1,
  };

  before(async () => {
    backend = await startBackend();
    d = await setUpDeployment(backend);
    root = d.queue;
  });
  after(async () => {
    await d?.close();
    await backend?.close();
  });

  async function decide(p: Parameters, queue: QueueClient, index: IndexClient) {
    return runDecision({ params: p, root: d.tree.root, digest, queue, index, dryRun: false });
  }

  it('submits its graph with its claim credentials; the next push reuses the archive through the index', async () => {
    const p1 = d.pushParams(1);
    const d1 = await d.decisionTask(p1);
    const first = await decide(p1, d1.queue, d1.index);
    assert.equal(first.optimized.records[0]!.result, 'miss');
    assert.ok(first.submitted!.created.length > 1, JSON.stringify(first.submitted));
    const archive1 = first.labelToTaskId['mozharness-archive']!;
    assert.equal((await root.task(archive1)).payload.treeDigest, digest.treeDigest);
    await d1.queue.reportCompleted(p1.decision_task_id, d1.run.runId);

    // the archive worker's part, with the archive task's own claim credentials
    const a = await d.claim(`${d.tree.trustDomain}-3/archive`, archive1, 'archive');
    const aq = queueClient({ rootUrl: backend.rootUrl, credentials: a.credentials });
    await aq.createArtifact(archive1, a.runId, 'public/build/mozharness.tar.gz', {
      storageType: 'reference',
      url: `http://127.0.0.1:9/mozharness/${digest.sha256}.tar.gz`,
      contentType: 'application/gzip',
      expires: a.task.expires!,
    });
    await aq.reportCompleted(archive1, a.runId);
    const index = indexClient({ rootUrl: backend.rootUrl });
    const cacheNs = `${d.tree.trustDomain}.cache.level-3.mozharness.hash.${digest.treeDigest}`;
    await waitFor(`${cacheNs} indexed`, async () => {
      const r = await index.findTask(cacheNs).catch(() => undefined);
      return r?.taskId === archive1 ? r : undefined;
    });

    // push 2, same harness: the archive is reused and indexed for push 2 by the decision task
    const p2 = d.pushParams(2);
    const d2 = await d.decisionTask(p2);
    const second = await decide(p2, d2.queue, d2.index);
    const rec = second.optimized.records.find((r) => r.label === 'mozharness-archive')!;
    assert.equal(rec.result, 'hit', rec.reason);
    assert.equal(second.labelToTaskId['mozharness-archive'], archive1);
    for (const id of second.submitted!.created) {
      assert.ok((await root.task(id)).dependencies!.includes(archive1));
    }
    const ns = `${d.tree.trustDomain}.v1.${d.project.project}.revision.${p2.head_rev}.mozharness`;
    const byRevision = await waitFor(`${ns} indexed`, () => index.findTask(ns));
    assert.equal(byRevision.taskId, archive1);
    await d2.queue.reportCompleted(p2.decision_task_id, d2.run.runId);
  });

  it('the claim credentials carry no more than the task gives: a task on another level is refused (403)', async () => {
    const p = d.pushParams(3);
    const dt = await d.decisionTask(p);
    const { provisionerId: _p, workerType: _w, ...def } = await root.task(p.decision_task_id);
    await assert.rejects(
      dt.queue.createTask(slugid(), {
        ...def,
        taskGroupId: p.decision_task_id,
        taskQueueId: `${d.tree.trustDomain}-1/archive`,
        schedulerId: `${d.tree.trustDomain}-level-1`,
        routes: [],
        scopes: [],
        dependencies: [],
      } as any),
      (e: any) => e.statusCode === 403,
    );
    await dt.queue.reportCompleted(p.decision_task_id, dt.run.runId);
  });
});
