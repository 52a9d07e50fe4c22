// A trust domain of its own on the test backend, configured the way a release engineer would:
// `ci-config --apply` (src/actions/ci-config.ts) on a copy of the in-tree configuration
// (isolated-tree.ts), plus a decision-worker client and helpers to create and claim decision
// tasks the way the hg-push hook and a decision worker do.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tc from 'taskcluster-client';
import {
  applyCiConfig,
  ciConfig,
  decisionTaskQueueId,
  type CiConfig,
  type CiProject,
  type WorkerManagerClient,
} from '../../src/actions/ci-config.js';
import { loadGraphConfig, type GraphConfig } from '../../src/decision/config.js';
import { makeParameters, type Parameters } from '../../src/decision/parameters.js';
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
import type { ClaimedTask } from '../../src/taskcluster/types.js';
import { type Backend } from './backend.js';
import { waitFor } from './wait.js';
import { isolatedTree, type IsolatedTree } from './isolated-tree.js';

export interface Deployment {
  backend: Backend;
  dir: string;
  tree: IsolatedTree;
  config: GraphConfig;
  ci: CiConfig;
  /** The level-3 hg project of this trust domain. */
  project: CiProject;
  /** Root queue client. */
  queue: QueueClient;
  /** A client holding claim-work on every queue of this trust domain. */
  worker: Credentials;
  pushParams(n: number): Parameters;
  claim(taskQueueId: string, taskId: string, workerGroup: string): Promise<ClaimedTask>;
  /** Create the push's decision task as the hg-push hook would and claim it. */
  decisionTask(p: Parameters): Promise<{
    run: ClaimedTask;
    queue: QueueClient;
    index: IndexClient;
  }>;
  close(): Promise<void>;
}

export async function setUpDeployment(backend: Backend): Promise<Deployment> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'it-deployment-'));
  const td = backend.unique('td');
  const tree = isolatedTree(path.join(dir, 'tree'), td);
  const config = await loadGraphConfig(tree.root);
  const project: CiProject = {
    project: td,
    repository: `https://hg.example.com/${td}`,
    repositoryType: 'hg',
    level: '3',
    branch: 'default',
  };
  const o = { rootUrl: backend.rootUrl, credentials: backend.root };
  const queue = queueClient(o);
  const ci = ciConfig({ tcyml: tree.tcyml, config, projects: [project], onlyGiven: true });
  await applyCiConfig(ci, {
    auth: authClient(o),
    hooks: hooksClient(o),
    workerManager: new tc.WorkerManager(o) as WorkerManagerClient,
  });
  const worker = await backend.clientWithScopes(
    [`queue:claim-work:${td}-*`, 'queue:worker-id:*'],
    'deployment-worker',
  );
  const d: Deployment = {
    backend,
    dir,
    tree,
    config,
    ci,
    project,
    queue,
    worker,
    pushParams(n) {
      return makeParameters({
        project: project.project,
        level: '3',
        head_repository: project.repository,
        repository_type: 'hg',
        head_rev: String(n).repeat(40).slice(0, 40),
        base_rev: '',
        owner: 'ffxbld@mozilla.com',
        pushlog_id: String(1000 + n),
        pushdate: Math.floor(Date.now() / 1000) - 600 + n,
        tasks_for: 'hg-push',
        decision_task_id: slugid(),
        taskcluster_root_url: backend.rootUrl,
      });
    },
    async claim(taskQueueId, taskId, workerGroup) {
      const q = queueClient({ rootUrl: backend.rootUrl, credentials: worker });
      return waitFor(`a claim of ${taskId} on ${taskQueueId}`, async () => {
        const r = await q.claimWork(taskQueueId, { workerGroup, workerId: 'w1', tasks: 1 });
        const t = r.tasks[0];
        if (!t) return undefined;
        assert.equal(t.status.taskId, taskId, 'claimed a task of this test');
        return t;
      });
    },
    async decisionTask(p) {
      const { taskId, ...def } = renderDecisionTask(tree.tcyml, 'hg-push', p);
      assert.equal(taskId, p.decision_task_id);
      await queue.createTask(taskId!, def as any);
      const c = await d.claim(decisionTaskQueueId(tree.tcyml, config, '3'), taskId!, 'decision');
      const co = { rootUrl: backend.rootUrl, credentials: c.credentials, retries: 0 };
      return { run: c, queue: queueClient(co), index: indexClient(co) };
    },
    async close() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return d;
}
