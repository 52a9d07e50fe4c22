// No secret reaches anything the worker logs or publishes. One worker process (the CLI) runs with
// distinctive secrets in its repository allow-list, its S3 credentials and its Taskcluster
// credentials, and gets tasks whose repository URLs carry secrets too. Then every artifact of
// every task, every S3 object, the task logs, and the worker's stdout and stderr are searched for
// each secret: zero hits. The refusals name the offending value (redacted), never the allow-list.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { PROJECT_ROOT } from './helpers/cli.js';
import { ensureTaskUser, TASK_USER } from './helpers/task-user.js';
import { startWorkerEnv, WORKER_GROUP, type WorkerEnv } from './helpers/worker-env.js';
import { waitFor } from './helpers/wait.js';

const secret = (what: string) => `${what}-${randomBytes(9).toString('hex')}`;

describe('worker: no secret in any log, artifact or S3 object', function () {
  this.timeout(180_000);
  let env: WorkerEnv;

  before(async () => {
    env = await startWorkerEnv({ variants: [undefined] });
  });
  after(async () => {
    await env?.close();
  });

  it('one run with secrets in the repository URL, allow-list, S3 and Taskcluster credentials: zero hits', async () => {
    const secrets = {
      repositoryUrl: secret('repo-password'),
      repositoryUser: secret('repo-user'),
      allowList: secret('allow-password'),
      s3: secret('s3-secret-key'),
      taskcluster: env.workerCredentials.accessToken,
    };
    const q = 'secrets';
    const hgUrl = new URL(env.hg.url);
    const withUserinfo = `http://${secrets.repositoryUser}:${secrets.repositoryUrl}@${hgUrl.host}${hgUrl.pathname}`;
    const configFile = path.join(env.dir, 'secrets-worker.yml');
    fs.writeFileSync(
      configFile,
      yaml.dump({
        taskQueueId: `proj-mozharness/${q}`,
        workerGroup: WORKER_GROUP,
        workerId: 'secrets',
        allowRepos: [env.hg.url, `https://releng:${secrets.allowList}@hg.example.invalid/private/`],
        s3: {
          bucket: env.s3.bucket,
          prefix: 'mozharness',
          publicBaseUrl: env.s3.publicBaseUrl,
        },
        pollIntervalSeconds: 0.05,
        shutdownGraceSeconds: 5,
        workDir: path.join(env.dir, 'work'),
        ...(ensureTaskUser() ? { taskUser: TASK_USER } : { testIsolation: 'best-effort' }),
      }),
      { mode: 0o600 },
    );

    const tasks = {
      credentialsInUrl: await env.createTask(q, {
        repository: withUserinfo,
        revision: env.repo.revisions[0],
      }),
      notAllowed: await env.createTask(q, {
        repository: 'http://127.0.0.1:9/elsewhere',
        revision: env.repo.revisions[0],
      }),
      built: await env.createTask(q, {
        repository: env.hg.url,
        revision: env.repo.revisions[0],
        test: { command: ['sh', '-c', 'env | sort; cat /proc/$PPID/environ; exit 0'] },
      }),
    };

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--config', configFile, '--json'],
      {
        cwd: PROJECT_ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          TASKCLUSTER_ROOT_URL: env.embedded.rootUrl,
          TASKCLUSTER_CLIENT_ID: env.workerCredentials.clientId,
          TASKCLUSTER_ACCESS_TOKEN: env.workerCredentials.accessToken,
          ...env.s3.env,
          AWS_SECRET_ACCESS_KEY: secrets.s3,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor(
        'every task to resolve',
        async () => {
          const states = await Promise.all(
            Object.values(tasks).map(async (id) => (await env.root.status(id)).status.state),
          );
          if (states.every((s) => s !== 'pending' && s !== 'running')) return true;
          throw new Error(`still unresolved: ${states.join(', ')}; worker stderr: ${stderr}`);
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);

    const state = async (id: string) => (await env.root.status(id)).status.runs[0]!;
    assert.equal((await state(tasks.credentialsInUrl)).reasonResolved, 'malformed-payload');
    assert.equal((await state(tasks.notAllowed)).reasonResolved, 'malformed-payload');
    assert.equal((await state(tasks.built)).state, 'completed', stderr);

    // Everything published: each artifact of each task (error artifacts' bodies, references
    // followed to their S3 objects), then every object in the bucket, then the worker's output.
    const published: Record<string, string> = {};
    for (const [what, taskId] of Object.entries(tasks)) {
      const { artifacts } = await env.root.listArtifacts(taskId, 0);
      assert.ok(artifacts.length >= 2, `${what}: ${JSON.stringify(artifacts)}`);
      for (const a of artifacts) {
        const url = `${env.embedded.rootUrl}/api/queue/v1/task/${taskId}/runs/0/artifacts/${encodeURIComponent(a.name)}`;
        const res = await fetch(url);
        published[`${what} ${a.name}`] = await res.text();
      }
    }
    for (const key of await env.s3.listKeys()) {
      const res = await fetch(`${env.s3.publicBaseUrl}/${key}`);
      published[`s3 ${key}`] = Buffer.from(await res.arrayBuffer()).toString('latin1');
    }
    published.stdout = stdout;
    published.stderr = stderr;
    assert.ok(
      Object.keys(published).some((k) => k.includes('/logs/')),
      'task logs in S3',
    );

    for (const [where, text] of Object.entries(published)) {
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(!text.includes(value), `the ${name} secret appears in ${where}`);
      }
      assert.ok(!text.includes('hg.example.invalid'), `the allow-list is quoted in ${where}`);
    }

    // The refusals name the offending value, redacted.
    const refusal = published['credentialsInUrl public/errors/malformed-payload']!;
    assert.ok(
      refusal.includes(`http://[redacted]@${hgUrl.host}`) &&
        /must not contain credentials/.test(refusal),
      refusal,
    );
    const notAllowed = published['notAllowed public/errors/malformed-payload']!;
    assert.match(
      notAllowed,
      /http:\/\/127\.0\.0\.1:9\/elsewhere\\?" is not on this worker's allow-list/,
    );
    // The worker's log of the build and the test command's output went through the same scrub.
    assert.match(published['built public/logs/live_backing.log']!, /OUT +PATH=/);
  });
});
