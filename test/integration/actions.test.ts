// In-tree actions through the deployment's hooks service: the action hook and its roles come from
// `ci-config --apply`, the decision task publishes actions.json (and its graph), Treeherder's path
// (triggerAction) renders the hook payload and triggers the hook with a user's narrow
// credentials, the hooks service renders .taskcluster.yml into the action task under the hook
// role, and the action task, claimed like any task, runs its callback with the credentials of its
// claim (the action role of its repository and level).
import assert from 'node:assert/strict';
import path from 'node:path';
import { runActionClaim } from '../../src/local/action-runner.js';
import { triggerAction } from '../../src/actions/trigger.js';
import { runDecision } from '../../src/decision/decision.js';
import type { HarnessDigest } from '../../src/decision/digest.js';
import { publishDirectory, s3Publisher } from '../../src/local/publish.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { setUpDeployment, type Deployment } from '../helpers/deployment.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

const backendName = process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded';

describe(`integration: actions through the hooks service (${backendName} services)`, function () {
  this.timeout(180_000);
  let backend: Backend;
  let d: Deployment;
  let s3: TestS3;
  const digest: HarnessDigest = {
    treeDigest: '5c'.repeat(32),
    sha256: '6d'.repeat(32),
    size: 4242,
    files: 12,
    revision: '1'.repeat(40),
    subdir: 'testing/mozharness',
    formatVersion: 1,
  };

  before(async () => {
    backend = await startBackend();
    d = await setUpDeployment(backend);
    s3 = await startS3();
  });
  after(async () => {
    await s3?.close();
    await d?.close();
    await backend?.close();
  });

  it('retrigger-multiple: the hook creates the action task, which re-creates the label with its claim credentials', async () => {
    const publish = s3Publisher({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      publicBaseUrl: s3.publicBaseUrl,
    });
    // the push: decision task, graph submitted and its artifacts published (public/actions.json...)
    const p = d.pushParams(7);
    const dt = await d.decisionTask(p);
    const out = path.join(d.dir, 'decision-out');
    const decided = await runDecision({
      params: p,
      root: d.tree.root,
      digest,
      queue: dt.queue,
      index: dt.index,
      dryRun: false,
      out,
      tcyml: d.tree.tcyml,
    });
    const published = await publishDirectory(dt.queue, dt.run, out, { publish });
    assert.ok(
      published.some((n) => n.endsWith('actions.json')),
      published.join(' '),
    );
    await dt.queue.reportCompleted(p.decision_task_id, dt.run.runId);
    const label = Object.keys(decided.labelToTaskId).find((l) => l.startsWith('build-'))!;
    assert.ok(label, Object.keys(decided.labelToTaskId).join(' '));

    // a Treeherder user who may trigger this level's action hooks and nothing else
    const hook = d.ci.hooks.find((h) => h.hookId.startsWith('in-tree-action-3-'))!;
    const user = await backend.clientWithScopes(
      [`hooks:trigger-hook:${hook.hookGroupId}/${hook.hookId}`],
      'treeherder-user',
    );
    const triggered = await triggerAction({
      rootUrl: backend.rootUrl,
      credentials: user,
      decisionTaskId: p.decision_task_id,
      action: 'retrigger-multiple',
      input: { requests: [{ tasks: [label], times: 1 }] },
    });
    assert.equal(triggered.action.hookId, hook.hookId);
    const actionTask = await d.queue.task(triggered.actionTaskId);
    assert.equal(actionTask.tags?.kind, 'action-callback');
    assert.equal(actionTask.taskGroupId, p.decision_task_id);
    assert.deepEqual(actionTask.scopes, [
      `assume:repo:${d.project.repository.replace(/^https:\/\//, '')}:action:generic`,
    ]);

    // the action task runs with the credentials of its claim
    const claim = await d.claim(actionTask.taskQueueId!, triggered.actionTaskId, 'action');
    const outcome = await runActionClaim(claim, { rootUrl: backend.rootUrl, publish });
    assert.equal(outcome.state, 'completed', outcome.error);
    assert.equal((await d.queue.status(triggered.actionTaskId)).status.state, 'completed');
    const group = await d.queue.listTaskGroup(p.decision_task_id);
    const copies = group.tasks.filter((t: any) => t.task.metadata.name === label);
    assert.equal(copies.length, 2, 'the label once from the push, once from the action');
  });
});
