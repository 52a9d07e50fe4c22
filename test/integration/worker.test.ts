// The archive worker against a Taskcluster deployment: the embedded services (npm test) and the
// real Taskcluster services (npm run test:real), same assertions. The archive store is a real
// s3rver, the repository a real `hg serve`, the worker the real code (in process, or the CLI as a
// subprocess for SIGTERM).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildArchive } from '../../src/archive/index.js';
import { waitFor } from '../helpers/wait.js';
import { PROJECT_ROOT } from '../helpers/cli.js';
import {
  startIntegrationEnv,
  WORKER_GROUP,
  type IntegrationEnv,
} from '../helpers/integration-env.js';
import { SAMPLE_SUBDIR } from '../helpers/repos.js';
import { ensureTaskUser, TASK_USER } from '../helpers/task-user.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const backendName = process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded';

describe(`integration: the archive worker (${backendName} services)`, function () {
  this.timeout(180_000);
  let env: IntegrationEnv;
  let expected: { sha256: string; size: number; treeDigest: string }[];

  before(async () => {
    env = await startIntegrationEnv();
    expected = [];
    for (const revision of env.repo.revisions) {
      expected.push(
        await buildArchive({
          source: { kind: 'hg', path: env.repo.path },
          revision,
          subdir: SAMPLE_SUBDIR,
        }),
      );
    }
  });
  after(async () => {
    await env?.close();
  });

  const latest = (q: string) => `${env.namespace}.${q}.latest`;
  async function taskLog(taskId: string, runId?: number): Promise<string> {
    return (await env.follow(taskId, 'public/logs/live_backing.log', runId)).toString('utf8');
  }
  /** Only completed tasks are indexed; a failed one must leave its route empty. */
  async function assertNotIndexed(q: string) {
    assert.equal(await env.indexed(latest(q)), undefined, latest(q));
  }

  it('good: completes, the artifact is the archive built locally, routes are indexed', async () => {
    const q = 'good';
    const taskId = await env.createTask(
      q,
      {
        repository: env.hg.url,
        revision: env.repo.revisions[0],
        treeDigest: expected[0]!.treeDigest,
      },
      { routes: [`index.${latest(q)}`] },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    assert.equal((await env.queue.status(taskId)).status.state, 'completed');
    const bytes = await env.follow(taskId, 'public/build/mozharness.tar.gz');
    assert.equal(sha256(bytes), expected[0]!.sha256);
    assert.equal(bytes.length, expected[0]!.size);
    const meta = JSON.parse((await env.follow(taskId, 'public/build/mozharness.json')).toString());
    assert.equal(meta.treeDigest, expected[0]!.treeDigest);
    await env.waitIndexed(latest(q), taskId);
  });

  it('malformed payload: exception/malformed-payload, an error artifact (424) names the field', async () => {
    const q = 'malformed';
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision: 'abc123', colour: 'red' },
      { routes: [`index.${latest(q)}`] },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.exception, 1, JSON.stringify(summary.results));
    const status = (await env.queue.status(taskId)).status;
    assert.equal(status.state, 'exception');
    assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
    assert.equal(status.runs.length, 1, 'malformed-payload is final: no rerun');
    const err = await env.artifact(taskId, 'public/errors/malformed-payload');
    assert.equal(err.status, 424);
    assert.match(err.body, /payload\.revision must be the full 40-hex revision/);
    assert.match(err.body, /payload\.colour is not a known field/);
    await assertNotIndexed(q);
  });

  it('unknown revision (404): failed, no retry, the log names repository and revision', async () => {
    const q = 'unknown-rev';
    const revision = 'f'.repeat(40);
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision },
      { routes: [`index.${latest(q)}`], retries: 3 },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.failed, 1, JSON.stringify(summary.results));
    const status = (await env.queue.status(taskId)).status;
    assert.equal(status.state, 'failed');
    assert.equal(status.runs.length, 1);
    const log = await taskLog(taskId);
    assert.ok(log.includes(revision) && log.includes(env.hg.url), log);
    await assertNotIndexed(q);
  });

  it('tree digest mismatch: failed, the message shows both digests, no archive stored', async () => {
    const q = 'digest';
    const wrong = '0'.repeat(64);
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision: env.repo.revisions[1], treeDigest: wrong },
      { routes: [`index.${latest(q)}`] },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.failed, 1, JSON.stringify(summary.results));
    const log = await taskLog(taskId);
    assert.ok(log.includes(wrong) && log.includes(expected[1]!.treeDigest), log);
    assert.ok(!(await env.s3.listKeys()).some((k) => k.includes(expected[1]!.sha256)));
    await assertNotIndexed(q);
  });

  it('lost claim: the task is canceled under the worker, the reclaim is refused (409), nothing is published', async () => {
    const q = 'claim-lost';
    const taskId = await env.createTask(q, {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
      test: { command: ['sh', '-c', 'sleep 5'] },
    });
    const done = env.runOnce(q, { reclaimIntervalSeconds: 0.3 });
    await waitFor('a reclaim', async () =>
      env.logLines.some((l) => l.includes('"reclaimed"') && l.includes(taskId)) ? true : undefined,
    );
    await env.queue.cancelTask(taskId);
    const summary = await done;
    assert.equal(summary.abandoned, 1, JSON.stringify(summary.results));
    const names = (await env.queue.listArtifacts(taskId, 0)).artifacts.map((a: any) => a.name);
    assert.ok(!names.includes('public/build/mozharness.tar.gz'), names.join(' '));
    assert.equal((await env.queue.status(taskId)).status.runs[0]!.reasonResolved, 'canceled');
  });

  it('SIGTERM mid-task (the CLI): exception/worker-shutdown, exit 0, the queue reruns it and the rerun completes', async () => {
    const q = 'sigterm';
    const mark = path.join(env.dir, 'shared', 'sigterm.mark');
    const taskId = await env.createTask(
      q,
      {
        repository: env.hg.url,
        revision: env.repo.revisions[0],
        test: {
          command: [
            'sh',
            '-c',
            'if [ -e "$MARK" ]; then exit 0; fi; echo $$ > "$MARK"; exec sleep 60',
          ],
          env: { MARK: mark },
        },
      },
      { retries: 2 },
    );
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'worker',
        '--task-queue-id',
        env.taskQueueId(q),
        '--worker-group',
        WORKER_GROUP,
        '--worker-id',
        'sigterm-cli',
        '--s3-bucket',
        env.s3.bucket,
        '--s3-prefix',
        'mozharness',
        '--s3-public-base-url',
        env.s3.publicBaseUrl,
        '--allow-repo',
        env.hg.url,
        '--work-dir',
        path.join(env.dir, 'work-cli'),
        '--shutdown-grace',
        '1',
        ...(ensureTaskUser() ? ['--task-user', TASK_USER] : ['--test-isolation', 'best-effort']),
        '--once',
        '--json',
      ],
      {
        cwd: PROJECT_ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          TASKCLUSTER_ROOT_URL: env.backend.rootUrl,
          TASKCLUSTER_CLIENT_ID: env.workerCredentials.clientId,
          TASKCLUSTER_ACCESS_TOKEN: env.workerCredentials.accessToken,
          ...env.s3.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    try {
      await waitFor('the test step to start', async () => (fs.existsSync(mark) ? true : undefined));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    const status = (await env.queue.status(taskId)).status;
    assert.equal(status.runs[0]!.reasonResolved, 'worker-shutdown');
    assert.equal(status.runs[1]?.reasonCreated, 'retry');
    assert.ok(!stderr.includes(env.workerCredentials.accessToken), 'credential in the worker log');
    const rerun = await env.runOnce(q);
    assert.equal(rerun.completed, 1, JSON.stringify(rerun.results));
    assert.equal(rerun.results[0]!.runId, 1);
    assert.equal(rerun.results[0]!.archive!.sha256, expected[0]!.sha256);
  });
});
