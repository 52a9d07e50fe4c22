// Gecko's test-linux.sh (taskcluster/scripts/tester/test-linux.sh), step for step, against this
// system: the decision task creates the push's graph in the embedded Queue, the real archive worker
// completes the archive task (from `hg serve`, into s3rver), and a downstream docker-worker test
// task's own payload.env drives the exact shell steps gecko runs: curl the zip from MOZHARNESS_URL,
// Info-ZIP `unzip -q -d mozharness`, then python3 on $MOZHARNESS_SCRIPT with one --config-file per
// word of $MOZHARNESS_CONFIG.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runDecision } from '../src/decision/decision.js';
import { makeParameters } from '../src/decision/parameters.js';
import { renderDecisionTask } from '../src/decision/tcyml.js';
import { createSampleRepo } from '../src/local/sample-repo.js';
import { queueClient, slugid } from '../src/taskcluster/client.js';
import { runWorker } from '../src/worker/index.js';
import {
  checkedQueue,
  startWorkerEnv,
  WORKER_GROUP,
  type WorkerEnv,
} from './helpers/worker-env.js';

const ROOT = path.resolve('taskcluster');

/** The steps of test-linux.sh that fetch mozharness and run its script, as gecko writes them. */
const TEST_LINUX_STEPS = `set -e
curl --fail -o mozharness.zip --retry 10 -L $MOZHARNESS_URL
rm -rf mozharness
unzip -q mozharness.zip -d mozharness
MOZHARNESS_PATH=\`pwd\`/mozharness
config_cmds=""
for cfg in $MOZHARNESS_CONFIG; do
  config_cmds="\${config_cmds} --config-file \${MOZHARNESS_PATH}/configs/\${cfg}"
done
\${PYTHON:-python3} -u \${MOZHARNESS_PATH}/scripts/\${MOZHARNESS_SCRIPT} \${config_cmds}
`;

function sh(
  script: string,
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe("gecko's test-linux.sh steps against the local services", function () {
  this.timeout(180_000);
  let env: WorkerEnv;

  before(async () => {
    env = await startWorkerEnv({
      createRepo: async (dir) => {
        const r = await createSampleRepo(dir, 'hg', path.resolve('.'));
        return { path: r.path, revisions: r.pushes.map((p) => p.revision) };
      },
    });
  });
  after(async () => {
    await env?.close();
  });

  it('curl + unzip -q -d + python3 run a script and configs of the real archive task', async () => {
    const revision = env.repo.revisions.at(-1)!;
    const params = makeParameters({
      project: 'mozilla-central',
      level: '3',
      head_repository: env.hg.url,
      repository_type: 'hg',
      head_rev: revision,
      base_rev: '',
      owner: 'ffxbld@mozilla.com',
      pushlog_id: '3',
      pushdate: Math.floor(Date.now() / 1000) - 60,
      tasks_for: 'hg-push',
      decision_task_id: slugid(),
      taskcluster_root_url: env.embedded.rootUrl,
    });
    // the decision task exactly as the hg-push hook creates it, claimed by a decision worker
    const { taskId: decisionTaskId, ...decisionDef } = renderDecisionTask(
      fs.readFileSync('.taskcluster.yml', 'utf8'),
      'hg-push',
      params,
    );
    await env.root.createTask(decisionTaskId!, decisionDef as any);
    const claim = await env.root.claimWork(decisionDef.taskQueueId!, {
      workerGroup: 'decision',
      workerId: 'decision-1',
      tasks: 1,
    });
    assert.equal(claim.tasks[0]?.status.taskId, decisionTaskId);
    const decision = await runDecision({
      params,
      root: ROOT,
      checkout: env.repo.path,
      queue: env.root,
      index: env.index,
      dryRun: false,
    });
    await env.root.reportCompleted(decisionTaskId!, claim.tasks[0]!.runId);
    assert.ok(decision.digest?.zip, 'the decision task predicts the zip');
    const archiveTaskId = decision.labelToTaskId['mozharness-archive']!;

    // the real worker, on the archive task's own queue, completes it against s3rver
    const archiveQueue = (await env.root.task(archiveTaskId)).taskQueueId!;
    const credentials = env.embedded.createClient(`project/mozharness/test-linux-${slugid()}`, [
      `queue:claim-work:${archiveQueue}`,
      `queue:worker-id:${WORKER_GROUP}/*`,
    ]);
    const summary = await runWorker(
      { ...env.config('unused'), taskQueueId: archiveQueue, credentials, once: true },
      env.deps({
        queue: checkedQueue(queueClient({ rootUrl: env.embedded.rootUrl, credentials }), env),
      }),
    );
    assert.equal(summary.completed, 1, JSON.stringify(summary));
    assert.equal((await env.root.status(archiveTaskId)).status.state, 'completed');

    // a downstream docker-worker test task, as the decision task created it in the queue
    const testTaskId = Object.entries(decision.labelToTaskId).find(([label]) =>
      label.startsWith('test-linux'),
    )?.[1];
    assert.ok(testTaskId, `a linux test task among ${Object.keys(decision.labelToTaskId)}`);
    const testTask = await env.root.task(testTaskId);
    assert.equal(testTask.tags!['worker-implementation'], 'docker-worker');
    const taskEnv = testTask.payload.env as Record<string, string>;
    const artifactUrl = env.root.buildUrl(
      env.root.getLatestArtifact,
      archiveTaskId,
      'public/build/mozharness.zip',
    );
    assert.equal(taskEnv.MOZHARNESS_URL, artifactUrl);
    assert.equal(taskEnv.MOZHARNESS_SHA256, decision.digest.zip.sha256);

    const work = path.join(env.dir, 'test-linux');
    fs.mkdirSync(work);
    const r = await sh(TEST_LINUX_STEPS, work, {
      ...taskEnv,
      PATH: process.env.PATH!,
      HOME: work,
    });
    assert.equal(r.code, 0, r.out);
    // the bytes fetched are the ones the decision task predicted and the worker published
    const zip = fs.readFileSync(path.join(work, 'mozharness.zip'));
    assert.equal(createHash('sha256').update(zip).digest('hex'), taskEnv.MOZHARNESS_SHA256);
    for (const cfg of taskEnv.MOZHARNESS_CONFIG!.split(' '))
      assert.match(r.out, new RegExp(`loaded config .*/mozharness/configs/${cfg}`));
    assert.match(r.out, /TEST-START \| mochitest-plain/);
    assert.match(r.out, /Completed successfully\./);
    // Info-ZIP kept the exec bit of the script
    const mode = fs.statSync(
      path.join(work, 'mozharness/scripts', taskEnv.MOZHARNESS_SCRIPT!),
    ).mode;
    assert.ok(mode & 0o100, 'the script is executable after unzip');
  });
});
