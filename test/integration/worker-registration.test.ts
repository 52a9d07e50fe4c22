// The archive worker registered with worker-manager's static provider, against the embedded
// services and the real worker-manager (MOZHARNESS_TEST_BACKEND=real): it registers with its
// static secret from a file, claims and completes an archive task with the credentials
// worker-manager issued, reregisters before they expire (the reregistration secret rotates), and
// stops cleanly, exit 0 with a reason, once worker-manager removed it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import * as yaml from 'js-yaml';
import tc from 'taskcluster-client';
import { buildArchive } from '../../src/archive/index.js';
import type { Credentials } from '../../src/taskcluster/client.js';
import { runWorker, type Registration, type WorkerSummary } from '../../src/worker/index.js';
import { waitFor } from '../helpers/wait.js';
import {
  startIntegrationEnv,
  WORKER_GROUP,
  type IntegrationEnv,
} from '../helpers/integration-env.js';
import { PROJECT_ROOT } from '../helpers/cli.js';
import { SAMPLE_SUBDIR } from '../helpers/repos.js';

const slug = (): string => tc.slugid();
const backendName = process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded';

describe(`integration: the archive worker registered with worker-manager (${backendName} services)`, function () {
  this.timeout(180_000);
  let env: IntegrationEnv;
  let admin: any;
  let treeDigest: string;
  const pools: string[] = [];

  before(async () => {
    env = await startIntegrationEnv({ variants: [undefined] });
    treeDigest = (
      await buildArchive({
        source: { kind: 'hg', path: env.repo.path },
        revision: env.repo.revisions[0]!,
        subdir: SAMPLE_SUBDIR,
      })
    ).treeDigest;
    const poolGlob = `proj-mozharness/${env.queuePrefix}-*`;
    const creds = await env.backend.clientWithScopes(
      [
        `worker-manager:manage-worker-pool:${poolGlob}`,
        'worker-manager:provider:static',
        `worker-manager:create-worker:${poolGlob}`,
        `worker-manager:get-worker:${poolGlob}`,
        `worker-manager:list-worker-pool-errors:${poolGlob}`,
        `worker-manager:remove-worker:${poolGlob}`,
      ],
      'wm-admin',
    );
    admin = new tc.WorkerManager({ rootUrl: env.backend.rootUrl, credentials: creds, retries: 0 });
  });

  after(async () => {
    for (const p of pools) await admin?.deleteWorkerPool(p).catch(() => {});
    await env?.close();
  });

  /** A static pool named like the task queue, and one worker in it with a fresh static secret. */
  async function poolWithWorker(name: string, reregistrationTimeout: number) {
    const workerPoolId = env.taskQueueId(name);
    await admin.createWorkerPool(workerPoolId, {
      providerId: 'static',
      description: 'mozharness-archive worker registration test',
      owner: 'release@example.com',
      emailOnError: false,
      config: { lifecycle: { reregistrationTimeout }, workerConfig: {} },
    });
    pools.push(workerPoolId);
    const workerId = `reg-${name}`;
    const staticSecret = slug() + slug();
    await admin.createWorker(workerPoolId, WORKER_GROUP, workerId, {
      providerInfo: { staticSecret },
      expires: new Date(Date.now() + 3600e3).toISOString(),
    });
    const secretFile = path.join(env.dir, `${name}.secret`);
    fs.writeFileSync(secretFile, staticSecret + '\n', { mode: 0o600 });
    return { workerPoolId, workerId, staticSecret, secretFile };
  }

  /** Run the worker with the workerManager config; records each claim queue's credentials. */
  function startWorker(
    name: string,
    w: { workerPoolId: string; workerId: string; secretFile: string },
    overrides: Record<string, unknown> = {},
  ) {
    const controller = new AbortController();
    const claimedWith: Credentials[] = [];
    const registrations: Registration[] = [];
    const config = env.config(name, {
      credentials: undefined,
      workerId: w.workerId,
      workerManager: { workerPoolId: w.workerPoolId, staticSecretFile: w.secretFile },
      ...overrides,
    });
    const base = env.deps();
    const done: Promise<WorkerSummary> = runWorker(config, {
      ...base,
      queue: undefined,
      taskQueue: (credentials: Credentials) => {
        claimedWith.push(credentials);
        return base.taskQueue!(credentials);
      },
      signal: controller.signal,
      onRegistered: (r) => registrations.push(r),
    });
    return { done, controller, claimedWith, registrations };
  }

  it('registers with the secret file, claims with the issued credentials and completes a task', async () => {
    const name = 'reg';
    const w = await poolWithWorker(name, 3600);
    const taskId = await env.createTask(name, {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
      treeDigest,
    });
    const run = startWorker(name, w, { once: true });
    const summary = await run.done;
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    const status = (await env.queue.status(taskId)).status;
    assert.equal(status.state, 'completed');
    assert.equal(status.runs[0]!.workerId, w.workerId);
    const clientId = `worker/static/${w.workerPoolId}/${WORKER_GROUP}/${w.workerId}`;
    assert.equal(run.registrations.length, 1);
    assert.equal(run.registrations[0]!.credentials.clientId, clientId);
    assert.ok(run.claimedWith.some((c) => c.clientId === clientId));
    // the static secret never changes (worker-manager checks registerWorker against it): the file
    // is left as it was and a restarted worker registers again with it
    assert.equal(fs.readFileSync(w.secretFile, 'utf8').trim(), w.staticSecret);
    assert.equal((await admin.worker(w.workerPoolId, WORKER_GROUP, w.workerId)).state, 'running');
    const again = startWorker(name, w, { once: true });
    await waitFor('registered again', async () => (again.registrations.length ? true : undefined));
    again.controller.abort();
    assert.equal((await again.done).claimed, 0);
    const logText = env.logLines.join('\n');
    assert.ok(!logText.includes(w.staticSecret), 'the static secret is never logged');
    for (const r of [...run.registrations, ...again.registrations]) {
      assert.ok(!logText.includes(r.currentSecret()), 'the reregistration secret is never logged');
      assert.ok(!logText.includes(r.credentials.accessToken), 'no access token is logged');
    }
  });

  it('reregisters before a short reregistrationTimeout expires (the secret rotates), then claims with the new credentials', async () => {
    const name = 'rereg';
    const w = await poolWithWorker(name, 10);
    const run = startWorker(name, w);
    await waitFor('registered', async () => (run.registrations.length ? true : undefined));
    const registration = run.registrations[0]!;
    const first = registration.currentSecret();
    const firstExpires = registration.expires.getTime();
    assert.ok(firstExpires - Date.now() <= 10_000, 'the pool lifecycle sets expires');
    const seen = await waitFor(
      'reregistered',
      async () =>
        registration.currentSecret() !== first ? registration.currentSecret() : undefined,
      { timeoutMs: 60_000 },
    );
    assert.equal(seen.length, 44);
    assert.ok(registration.expires.getTime() > firstExpires);
    assert.ok(!env.logLines.join('\n').includes(seen), 'the new secret is never logged');
    // polls run one after the other: once one holds the new credentials, every later one does
    const renewed = registration.credentials.accessToken;
    await waitFor('claiming with the credentials of the reregistration', async () =>
      run.claimedWith.some((c) => c.accessToken === renewed) ? true : undefined,
    );
    const taskId = await env.createTask(name, {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
      treeDigest,
    });
    await waitFor('completed', async () =>
      (await env.queue.status(taskId)).status.state === 'completed' ? true : undefined,
    );
    assert.equal(
      (await env.queue.status(taskId)).status.runs[0]!.workerId,
      w.workerId,
      'claimed by the reregistered worker',
    );
    run.controller.abort();
    const summary = await run.done;
    assert.equal(summary.completed, 1);
    assert.equal(summary.stopReason, undefined);
  });

  it('stops cleanly once worker-manager removed it: no new claims, exit with a reason', async () => {
    const name = 'removed';
    const w = await poolWithWorker(name, 3600);
    const run = startWorker(name, w, {
      workerManager: {
        workerPoolId: w.workerPoolId,
        staticSecretFile: w.secretFile,
        reregisterIntervalSeconds: 1,
      },
    });
    await waitFor('registered', async () => (run.registrations.length ? true : undefined));
    const first = run.registrations[0]!.currentSecret();
    await waitFor('reregistered on the interval', async () =>
      run.registrations[0]!.currentSecret() !== first ? true : undefined,
    );
    await admin.removeWorker(w.workerPoolId, WORKER_GROUP, w.workerId);
    const summary = await run.done; // ends on its own: nobody aborts it
    assert.match(summary.stopReason ?? '', /refused reregistration \(400\)/);
    assert.equal(summary.claimed, 0);
    const stopped = env.logLines
      .map((l) => JSON.parse(l))
      .find((l) => l.event === 'worker-stopped' && l.workerId === w.workerId);
    assert.match(stopped?.reason ?? '', /refused reregistration/);
    assert.equal((await admin.worker(w.workerPoolId, WORKER_GROUP, w.workerId)).state, 'stopped');
  });

  it('the CLI: the secret from a variable, removed by worker-manager, exits 0 saying why, no secret logged', async () => {
    const name = 'cli';
    const w = await poolWithWorker(name, 3600);
    const configFile = path.join(env.dir, 'cli-worker.yml');
    fs.writeFileSync(
      configFile,
      yaml.dump({
        ...env.config(name, { credentials: undefined, workerId: w.workerId }),
        credentials: undefined,
        workerManager: {
          workerPoolId: w.workerPoolId,
          staticSecretEnv: 'ARCHIVE_WORKER_SECRET',
          reregisterIntervalSeconds: 1,
        },
      }),
    );
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--config', configFile, '--json'],
      {
        cwd: PROJECT_ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ARCHIVE_WORKER_SECRET: w.staticSecret,
          ...env.s3.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    try {
      await waitFor('reregistered', async () =>
        stderr.includes('reregistered') ? true : undefined,
      );
      await admin.removeWorker(w.workerPoolId, WORKER_GROUP, w.workerId);
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    assert.match(JSON.parse(stdout).stopReason, /refused reregistration/);
    assert.match(stderr, /worker-removed/);
    assert.ok(!stderr.includes(w.staticSecret) && !stdout.includes(w.staticSecret));
  });
});
