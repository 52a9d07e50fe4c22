// The worker as a subprocess (`mozharness-archive worker --once`): SIGTERM mid-task (grace period,
// then exception/worker-shutdown and exit 0), SIGTERM with a task finishing within the grace, and
// SIGKILL mid-task: the claim expires, the queue retries, the rerun stores the same bytes and key.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildArchive } from '../src/archive/index.js';
import { SAMPLE_SUBDIR } from './helpers/repos.js';
import { ensureTaskUser, processesWithEnv, TASK_USER } from './helpers/task-user.js';
import { waitFor } from './helpers/wait.js';
import { startWorkerEnv, WORKER_GROUP, type WorkerEnv } from './helpers/worker-env.js';

const MAIN = path.resolve('src/cli/main.ts');

interface WorkerProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];

function startWorker(
  env: WorkerEnv,
  queue: string,
  extra: string[] = [],
  extraEnv: Record<string, string> = {},
): WorkerProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'worker',
      '--task-queue-id',
      `proj-mozharness/${queue}`,
      '--worker-group',
      WORKER_GROUP,
      '--worker-id',
      `sub-${queue}`,
      '--s3-bucket',
      env.s3.bucket,
      '--s3-prefix',
      'mozharness',
      '--s3-public-base-url',
      env.s3.publicBaseUrl,
      '--allow-repo',
      env.hg.url,
      '--work-dir',
      path.join(env.dir, 'work'),
      ...(ensureTaskUser() ? ['--task-user', TASK_USER] : ['--test-isolation', 'best-effort']),
      '--once',
      '--json',
      ...extra,
    ],
    {
      cwd: path.resolve('.'),
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        TASKCLUSTER_ROOT_URL: env.embedded.rootUrl,
        TASKCLUSTER_CLIENT_ID: env.workerCredentials.clientId,
        TASKCLUSTER_ACCESS_TOKEN: env.workerCredentials.accessToken,
        ...env.s3.env,
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.on('data', (d) => stdout.push(String(d)));
  child.stderr!.on('data', (d) => stderr.push(String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout, stderr, exited };
}

describe('worker subprocess: SIGTERM and SIGKILL mid-task', function () {
  this.timeout(120_000);
  let env: WorkerEnv;
  let expected: { sha256: string };

  before(async () => {
    env = await startWorkerEnv({ variants: [undefined] });
    expected = await buildArchive({
      source: { kind: 'hg', path: env.repo.path },
      revision: env.repo.revisions[0]!,
      subdir: SAMPLE_SUBDIR,
    });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await env?.close();
  });

  /** A test step that blocks the first time (recording its pid) and passes on a rerun. */
  function blockingTest(mark: string) {
    return {
      command: ['sh', '-c', 'if [ -e "$MARK" ]; then exit 0; fi; echo $$ > "$MARK"; exec sleep 60'],
      env: { MARK: mark },
    };
  }

  it('SIGTERM mid-task: stops claiming, resolves exception/worker-shutdown after the grace, exits 0; the rerun completes', async () => {
    const q = 'sigterm';
    const mark = path.join(env.sharedDir, 'sigterm.mark');
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision: env.repo.revisions[0], test: blockingTest(mark) },
      { retries: 2 },
    );
    const w = startWorker(env, q, ['--shutdown-grace', '1']);
    await waitFor('the test step to start', () => fs.existsSync(mark));
    w.child.kill('SIGTERM');
    const { code } = await w.exited;
    assert.equal(code, 0, w.stderr.join(''));
    const status = (await env.root.status(taskId)).status;
    assert.equal(status.runs[0]!.state, 'exception');
    assert.equal(status.runs[0]!.reasonResolved, 'worker-shutdown');
    assert.equal(status.runs[1]?.reasonCreated, 'retry');
    assert.equal(status.runs[1]?.state, 'pending');
    const summary = JSON.parse(w.stdout.join(''));
    assert.equal(summary.exception, 1);
    const stderr = w.stderr.join('');
    assert.match(stderr, /"event":"grace-period-over"/);
    assert.ok(!stderr.includes(env.workerCredentials.accessToken), 'credential in the worker log');
    // nothing was published for the archive, and the test process is gone
    const names = (await env.root.listArtifacts(taskId, 0)).artifacts.map((a: any) => a.name);
    assert.ok(!names.includes('public/build/mozharness.tar.gz'), names.join(' '));
    assert.ok(names.includes('public/logs/live_backing.log'));
    assert.deepEqual(processesWithEnv('MARK', mark), [], 'the test process outlived the worker');

    const rerun = await env.runOnce(q);
    assert.equal(rerun.completed, 1, JSON.stringify(rerun.results));
    assert.equal(rerun.results[0]!.runId, 1);
    assert.equal(rerun.results[0]!.archive!.sha256, expected.sha256);
  });

  it('SIGTERM with a task that finishes within the grace period: completed, exit 0', async () => {
    const q = 'sigterm-grace';
    const mark = path.join(env.sharedDir, 'grace.mark');
    const taskId = await env.createTask(q, {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
      test: { command: ['sh', '-c', 'touch "$MARK"; sleep 1'], env: { MARK: mark } },
    });
    const w = startWorker(env, q, ['--shutdown-grace', '30']);
    await waitFor('the test step to start', () => fs.existsSync(mark));
    w.child.kill('SIGTERM');
    const { code } = await w.exited;
    assert.equal(code, 0, w.stderr.join(''));
    assert.equal((await env.root.status(taskId)).status.state, 'completed');
  });

  it('SIGKILL mid-task: the claim expires, the queue retries, the rerun stores the same bytes under the same key', async () => {
    const q = 'sigkill';
    const mark = path.join(env.sharedDir, 'sigkill.mark');
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision: env.repo.revisions[0], test: blockingTest(mark) },
      { retries: 2 },
    );
    const keysBefore = await env.s3.listKeys();
    const w = startWorker(env, q);
    await waitFor('the test step to start', () => fs.existsSync(mark));
    w.child.kill('SIGKILL');
    await w.exited;
    for (const pid of processesWithEnv('MARK', mark)) process.kill(pid, 'SIGKILL'); // orphans
    assert.equal((await env.root.status(taskId)).status.runs[0]!.state, 'running');

    // 21 minutes later the claim has expired (takenUntil = claim + 20 min)
    env.clock.offsetMs = 21 * 60_000;
    try {
      await env.embedded.sweep();
    } finally {
      env.clock.offsetMs = 0;
    }
    const status = (await env.root.status(taskId)).status;
    assert.equal(status.runs[0]!.reasonResolved, 'claim-expired');
    assert.equal(status.runs[1]?.state, 'pending');
    assert.deepEqual(await env.s3.listKeys(), keysBefore, 'the killed run stored nothing');

    const rerun = await env.runOnce(q);
    assert.equal(rerun.completed, 1, JSON.stringify(rerun.results));
    const archive = rerun.results[0]!.archive!;
    assert.equal(archive.sha256, expected.sha256);
    assert.equal(archive.key, `mozharness/sha256/${expected.sha256}.tar.gz`);
    const res = await fetch(archive.url);
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(createHash('sha256').update(bytes).digest('hex'), expected.sha256);
    assert.deepEqual(await env.s3.pendingMultipartUploads(), []);
    assert.equal((await env.root.status(taskId)).status.state, 'completed');
  });
});

describe('worker subprocess: SIGTERM on an idle worker', function () {
  this.timeout(120_000);
  let env: WorkerEnv;

  before(async () => {
    // claimWork long polls last a minute here: a worker that waited one out could not pass.
    env = await startWorkerEnv({ variants: [undefined], claimWorkPollMs: 60_000 });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await env?.close();
  });

  it('drops the pending claimWork long poll at once, exits 0, and claims nothing', async () => {
    const q = 'sigterm-idle';
    const w = startWorker(env, q, ['--shutdown-grace', '30'], {
      MOZHARNESS_ARCHIVE_LOG_LEVEL: 'debug',
    });
    await waitFor('the claimWork long poll', () =>
      w.stderr.join('').includes('"event":"claim-work"'),
    );
    await new Promise((r) => setTimeout(r, 300)); // let the request reach the queue
    const t0 = Date.now();
    w.child.kill('SIGTERM');
    const { code } = await w.exited;
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(code, 0, w.stderr.join(''));
    assert.ok(seconds < 15, `the worker took ${seconds} s to stop (the poll lasts 60 s)`);
    assert.equal(JSON.parse(w.stdout.join('')).claimed, 0);

    // The queue stopped claiming for the closed poll: a task created now is claimed, run 0, by
    // the next worker, not held by the stopped one or handed back as worker-shutdown.
    const taskId = await env.createTask(q, {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
    });
    const next = await env.runOnce(q);
    assert.equal(next.completed, 1, JSON.stringify(next.results));
    const status = (await env.root.status(taskId)).status;
    assert.equal(status.runs.length, 1, JSON.stringify(status.runs));
    assert.equal(status.runs[0]!.reasonCreated, 'scheduled');
  });
});
