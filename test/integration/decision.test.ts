// The decision task on a deployment configured by `ci-config --apply`: the roles, hooks and pools
// come from the in-tree configuration (src/actions/ci-config.ts), the decision task is rendered
// from .taskcluster.yml as the hg-push hook renders it, claimed from its queue like a decision
// worker would, and submits its graph with the temporary credentials of that claim, so the
// deployment's auth (the real one under npm run test:real) enforces exactly the scopes the task and
// the applied roles give it. The next push with the same harness reuses the archive through the
// index (asynchronous on the real services: polled).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tc from 'taskcluster-client';
import {
  applyCiConfig,
  ciConfig,
  decisionTaskQueueId,
  type CiProject,
  type WorkerManagerClient,
} from '../../src/actions/ci-config.js';
import { loadGraphConfig, type GraphConfig } from '../../src/decision/config.js';
import { runDecision } from '../../src/decision/decision.js';
import type { HarnessDigest } from '../../src/decision/digest.js';
import type { Parameters } from '../../src/decision/parameters.js';
import { renderDecisionTask } from '../../src/decision/tcyml.js';
import {
  authClient,
  hooksClient,
  indexClient,
  queueClient,
  slugid,
  type Credentials,
  type IndexClient,
  type QueueClient,
} from '../../src/taskcluster/client.js';
import { startBackend, waitFor, type Backend } from '../helpers/backend.js';
import { isolatedTree, type IsolatedTree } from '../helpers/isolated-tree.js';

const backendName = process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded';

describe(`integration: the decision task with the scopes of its claim (${backendName} services)`, function () {
  this.timeout(180_000);
  let backend: Backend;
  let tmp: string;
  let tree: IsolatedTree;
  let config: GraphConfig;
  let project: CiProject;
  let root: QueueClient;
  let worker: Credentials;
  let digest: HarnessDigest;

  before(async () => {
    backend = await startBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'it-decision-'));
    const td = backend.unique('td');
    tree = isolatedTree(path.join(tmp, 'tree'), td);
    config = await loadGraphConfig(tree.root);
    project = {
      project: td,
      repository: `https://hg.example.com/${td}`,
      repositoryType: 'hg',
      level: '3',
      branch: 'default',
    };
    const o = { rootUrl: backend.rootUrl, credentials: backend.root };
    root = queueClient(o);
    const c = ciConfig({ tcyml: tree.tcyml, config, projects: [project], onlyGiven: true });
    await applyCiConfig(c, {
      auth: authClient(o),
      hooks: hooksClient(o),
      // the embedded services have no worker manager
      ...(backend.kind === 'real'
        ? { workerManager: new tc.WorkerManager(o) as WorkerManagerClient }
        : {}),
    });
    worker = await backend.clientWithScopes(
      [`queue:claim-work:${td}-*`, 'queue:worker-id:decision/*', 'queue:worker-id:archive/*'],
      'decision-worker',
    );
    digest = {
      treeDigest: '7e'.repeat(32),
      sha256: '9a'.repeat(32),
      size: 4242,
      files: 12,
      revision: '1'.repeat(40),
      subdir: 'testing/mozharness',
      formatVersion: 1,
    };
  });
  after(async () => {
    await backend?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  function pushParams(n: number): Parameters {
    return {
      project: project.project,
      level: '3',
      repository: project.repository,
      repository_type: 'hg',
      revision: String(n).repeat(40).slice(0, 40),
      base_revision: '',
      owner: 'ffxbld@mozilla.com',
      pushlog_id: String(1000 + n),
      pushdate: Math.floor(Date.now() / 1000) - 600 + n,
      tasks_for: 'hg-push',
      decision_task_id: slugid(),
      taskcluster_root_url: backend.rootUrl,
    };
  }

  async function claim(taskQueueId: string, taskId: string, workerGroup: string) {
    const q = queueClient({ rootUrl: backend.rootUrl, credentials: worker });
    return waitFor(`a claim of ${taskId} on ${taskQueueId}`, async () => {
      const r = await q.claimWork(taskQueueId, { workerGroup, workerId: 'w1', tasks: 1 });
      const t = r.tasks[0];
      if (!t) return undefined;
      assert.equal(t.status.taskId, taskId, 'claimed a task of this test');
      return t;
    });
  }

  /** Render and create the decision task as the push hook would, claim it: its queue client. */
  async function decisionTask(p: Parameters) {
    const { taskId, ...def } = renderDecisionTask(tree.tcyml, 'hg-push', p);
    assert.equal(taskId, p.decision_task_id);
    await root.createTask(taskId!, def as any);
    const c = await claim(decisionTaskQueueId(tree.tcyml, config, '3'), taskId!, 'decision');
    const o = { rootUrl: backend.rootUrl, credentials: c.credentials, retries: 0 };
    return { run: c, queue: queueClient(o), index: indexClient(o) };
  }

  async function decide(p: Parameters, queue: QueueClient, index: IndexClient) {
    return runDecision({ params: p, root: tree.root, digest, queue, index, dryRun: false });
  }

  it('submits its graph with its claim credentials; the next push reuses the archive through the index', async () => {
    const p1 = pushParams(1);
    const d1 = await decisionTask(p1);
    const first = await decide(p1, d1.queue, d1.index);
    assert.equal(first.optimized.records[0]!.result, 'miss');
    assert.ok(first.submitted!.created.length > 1, JSON.stringify(first.submitted));
    const archive1 = first.labelToTaskId['mozharness-archive']!;
    assert.equal((await root.task(archive1)).payload.treeDigest, digest.treeDigest);
    await d1.queue.reportCompleted(p1.decision_task_id, d1.run.runId);

    // the archive worker's part, with the archive task's own claim credentials
    const a = await claim(`${tree.trustDomain}-3/archive`, archive1, 'archive');
    const aq = queueClient({ rootUrl: backend.rootUrl, credentials: a.credentials });
    await aq.createArtifact(archive1, a.runId, 'public/build/mozharness.tar.gz', {
      storageType: 'reference',
      url: `http://127.0.0.1:9/mozharness/${digest.sha256}.tar.gz`,
      contentType: 'application/gzip',
      expires: a.task.expires!,
    });
    await aq.reportCompleted(archive1, a.runId);
    const index = indexClient({ rootUrl: backend.rootUrl });
    const cacheNs = `${tree.trustDomain}.cache.level-3.mozharness.hash.${digest.treeDigest}`;
    await waitFor(`${cacheNs} indexed`, async () => {
      const r = await index.findTask(cacheNs).catch(() => undefined);
      return r?.taskId === archive1 ? r : undefined;
    });

    // push 2, same harness: the archive is reused and indexed for push 2 by the decision task
    const p2 = pushParams(2);
    const d2 = await decisionTask(p2);
    const second = await decide(p2, d2.queue, d2.index);
    const rec = second.optimized.records.find((r) => r.label === 'mozharness-archive')!;
    assert.equal(rec.result, 'hit', rec.reason);
    assert.equal(second.labelToTaskId['mozharness-archive'], archive1);
    for (const id of second.submitted!.created) {
      assert.ok((await root.task(id)).dependencies!.includes(archive1));
    }
    const ns = `${tree.trustDomain}.v1.${project.project}.revision.${p2.revision}.mozharness`;
    const byRevision = await waitFor(`${ns} indexed`, () => index.findTask(ns));
    assert.equal(byRevision.taskId, archive1);
    await d2.queue.reportCompleted(p2.decision_task_id, d2.run.runId);
  });

  it('the claim credentials carry no more than the task gives: a task on another level is refused (403)', async () => {
    const p = pushParams(3);
    const d = await decisionTask(p);
    const { provisionerId: _p, workerType: _w, ...def } = await root.task(p.decision_task_id);
    await assert.rejects(
      d.queue.createTask(slugid(), {
        ...def,
        taskGroupId: p.decision_task_id,
        taskQueueId: `${tree.trustDomain}-1/archive`,
        schedulerId: `${tree.trustDomain}-level-1`,
        routes: [],
        scopes: [],
        dependencies: [],
      } as any),
      (e: any) => e.statusCode === 403,
    );
    await d.queue.reportCompleted(p.decision_task_id, d.run.runId);
  });
});
