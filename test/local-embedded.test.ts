// startEmbedded as a whole: persistence across a restart on the same state directory (clients,
// roles, hooks, index entries, tasks, S3 objects, ports), port conflicts, and `local up` as a
// subprocess printing one JSON line and exiting 0 on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import { isArchiveError } from '../src/util/errors.js';
import { makeClients, slugid } from '../src/taskcluster/client.js';
import { assertUpstream, upstreamMethodSchema } from './helpers/upstream.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOUR = 3600e3;

describe('embedded services: startEmbedded', function () {
  const dirs: string[] = [];
  const running: Embedded[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'local-embedded-'));
    dirs.push(d);
    return d;
  };

  after(async () => {
    for (const e of running) await e.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('keeps everything across a restart on the same state directory', async () => {
    const stateDir = tmp();
    let e = await startEmbedded({ stateDir, sweepIntervalMs: 0 });
    running.push(e);
    const first = { rootUrl: e.rootUrl, credentials: e.credentials, s3: e.s3! };
    assert.match(e.rootUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(e.archiveTaskQueueId, 'proj-mozharness/archive');
    assert.equal(e.credentials.clientId, 'static/taskcluster/root');
    let root = makeClients({ rootUrl: e.rootUrl, credentials: e.credentials, retries: 0 });

    const taskId = slugid();
    const expires = new Date(Date.now() + HOUR).toISOString();
    await root.index.insertTask('persist.me', { taskId, rank: 3, data: { a: 1 }, expires });
    const limited = e.createClient('project/persist', ['auth:current-scopes', 'assume:project:p']);
    e.setRole('project:p', ['index:insert-task:persist.*']);
    e.hooks.configureHook('project-p', 'h', {
      metadata: { name: 'n', description: 'd', owner: 'o@example.com' },
      task: { payload: {} },
    });
    const now = new Date();
    const task = {
      taskQueueId: 'proj-test/persist',
      created: now.toISOString(),
      deadline: new Date(now.getTime() + HOUR).toISOString(),
      payload: {},
      metadata: {
        name: 'p',
        description: 'p',
        owner: 'o@example.com',
        source: 'https://example.com/',
      },
    };
    assertUpstream(upstreamMethodSchema('queue', 'createTask', 'input')!, task);
    await root.queue.createTask(taskId, task);
    const put = await fetch(`${first.s3.publicBaseUrl}/persist/object.txt`, {
      method: 'PUT',
      body: 'kept',
    });
    assert.equal(put.status, 200);

    await e.close();
    await e.close(); // idempotent
    running.pop();
    await assert.rejects(fetch(`${first.rootUrl}/api/queue/v1/ping`));

    e = await startEmbedded({ stateDir, sweepIntervalMs: 0 });
    running.push(e);
    assert.equal(e.rootUrl, first.rootUrl, 'the port is persisted');
    assert.deepEqual(e.credentials, first.credentials);
    assert.deepEqual(e.s3, first.s3);
    root = makeClients({ rootUrl: e.rootUrl, credentials: e.credentials, retries: 0 });
    const found = await root.index.findTask('persist.me');
    assert.deepEqual(found, { namespace: 'persist.me', taskId, rank: 3, data: { a: 1 }, expires });
    const c = makeClients({ rootUrl: e.rootUrl, credentials: limited, retries: 0 });
    await c.index.insertTask('persist.again', { taskId, rank: 0, data: {}, expires });
    assert.equal(e.hooks.get('project-p', 'h')?.metadata.name, 'n');
    assert.equal((await root.queue.status(taskId)).status.state, 'pending');
    assert.equal((await root.queue.task(taskId)).metadata.name, 'p');
    const got = await fetch(`${e.s3!.publicBaseUrl}/persist/object.txt`);
    assert.equal(got.status, 200);
    assert.equal(await got.text(), 'kept');
    await e.sweep();
  });

  it('falls back to a free port when the persisted one is taken, refuses an explicit busy port', async () => {
    const a = await startEmbedded({ stateDir: tmp(), s3: false, sweepIntervalMs: 0 });
    running.push(a);
    const port = Number(new URL(a.rootUrl).port);
    await assert.rejects(
      startEmbedded({ stateDir: tmp(), s3: false, port }),
      (err: unknown) => isArchiveError(err, 'unavailable') && /cannot listen/.test(err.message),
    );
    // a state directory whose persisted port is now taken by someone else
    const stateDir = tmp();
    const b = await startEmbedded({ stateDir, s3: false, sweepIntervalMs: 0 });
    const persisted = Number(new URL(b.rootUrl).port);
    await b.close();
    const squatter = http.createServer((_req, res) => res.end());
    await new Promise<void>((resolve) => squatter.listen(persisted, '127.0.0.1', () => resolve()));
    try {
      const c = await startEmbedded({ stateDir, s3: false, sweepIntervalMs: 0 });
      running.push(c);
      assert.notEqual(Number(new URL(c.rootUrl).port), persisted);
      const ping: any = await (await fetch(`${c.rootUrl}/api/index/v1/ping`)).json();
      assert.equal(ping.alive, true);
    } finally {
      squatter.close();
    }
  });

  it('falls back to a free S3 port when the remembered one is taken', async () => {
    const stateDir = tmp();
    const b = await startEmbedded({ stateDir, sweepIntervalMs: 0 });
    const remembered = Number(new URL(b.s3!.endpoint).port);
    await b.close();
    const squatter = http.createServer((_req, res) => res.end('squatter'));
    await new Promise<void>((resolve) => squatter.listen(remembered, '127.0.0.1', () => resolve()));
    try {
      const c = await startEmbedded({ stateDir, sweepIntervalMs: 0 });
      running.push(c);
      const port = Number(new URL(c.s3!.endpoint).port);
      assert.notEqual(port, remembered);
      assert.equal((await fetch(`${c.s3!.endpoint}/${c.s3!.bucket}`)).status, 200);
      await c.close();
      // the new port is remembered for the next start
      squatter.close();
      const d = await startEmbedded({ stateDir, sweepIntervalMs: 0 });
      running.push(d);
      assert.equal(Number(new URL(d.s3!.endpoint).port), port);
    } finally {
      squatter.close();
    }
  });

  it('one instance per state directory: a second is refused naming the pid, a stale lock is taken over', async () => {
    const stateDir = tmp();
    const a = await startEmbedded({ stateDir, s3: false, sweepIntervalMs: 0 });
    running.push(a);
    const settings = () =>
      a.db.prepare("SELECT key, value FROM settings WHERE key LIKE '%port'").all();
    const before = settings();
    await assert.rejects(
      startEmbedded({ stateDir, s3: false, sweepIntervalMs: 0 }),
      (err: unknown) =>
        isArchiveError(err, 'conflict') &&
        err.message.includes(`in use by process ${process.pid}`) &&
        err.details.pid === process.pid,
    );
    assert.deepEqual(settings(), before, 'the refused instance changed no setting');
    assert.equal((await fetch(`${a.rootUrl}/api/queue/v1/ping`)).status, 200);
    await a.close();
    assert.ok(!fs.existsSync(path.join(stateDir, 'local.lock')), 'close releases the lock');

    // a lock left by a process that has exited is taken over
    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = await new Promise<number>((resolve) =>
      dead.on('exit', () => resolve(dead.pid!)),
    );
    fs.writeFileSync(
      path.join(stateDir, 'local.lock'),
      JSON.stringify({ pid: deadPid, hostname: os.hostname(), startedAt: 'then' }),
    );
    const b = await startEmbedded({ stateDir, s3: false, sweepIntervalMs: 0 });
    running.push(b);
    const owner = JSON.parse(fs.readFileSync(path.join(stateDir, 'local.lock'), 'utf8'));
    assert.equal(owner.pid, process.pid);
    await b.close();
  });

  it("`local up` twice on one --state-dir: the second exits non-zero naming the first one's pid", async () => {
    const stateDir = tmp();
    const first = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'local', 'up', '--json', '--state-dir', stateDir],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } },
    );
    const firstExit = new Promise<number | null>((resolve) => first.on('exit', (c) => resolve(c)));
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        first.stdout.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve();
        });
        first.on('exit', () => reject(new Error('the first local up exited early')));
      });
      const second = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'local', 'up', '--json', '--state-dir', stateDir],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } },
      );
      let stderr = '';
      second.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((resolve) =>
        second.on('exit', (c) => resolve(c)),
      );
      assert.notEqual(code, 0);
      assert.match(stderr, new RegExp(`in use by process ${first.pid}\\b`));
      assert.doesNotMatch(stderr, /EADDRINUSE|Unhandled|at .*\.ts:\d+/);
    } finally {
      first.kill('SIGTERM');
    }
    assert.equal(await firstExit, 0);
  });

  it('`local up --json` prints one JSON line, serves, and exits 0 on SIGTERM', async () => {
    const stateDir = tmp();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'local', 'up', '--json', '--state-dir', stateDir],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d) => {
          stdout += d;
          if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')));
        });
        child.on('exit', () => reject(new Error(`local up exited early: ${stderr}`)));
      });
      const info = JSON.parse(line);
      assert.deepEqual(Object.keys(info).sort(), [
        'archiveTaskQueueId',
        'credentials',
        'dashboardUrl',
        'repository',
        'rootUrl',
        's3',
        'taskQueueIds',
      ]);
      assert.deepEqual(Object.keys(info.s3).sort(), [
        'accessKeyId',
        'bucket',
        'endpoint',
        'publicBaseUrl',
        'region',
        'secretAccessKey',
      ]);
      assert.equal(info.archiveTaskQueueId, 'proj-mozharness/archive');
      const c = makeClients({ rootUrl: info.rootUrl, credentials: info.credentials, retries: 0 });
      assert.deepEqual((await c.auth.currentScopes()).scopes, ['*']);
      assert.equal((await fetch(`${info.s3.endpoint}/${info.s3.bucket}`)).status, 200);
      assert.ok(!stderr.includes(info.credentials.accessToken), 'no credential in the log');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    assert.equal(stdout.trim().split('\n').length, 1);
    assert.ok(fs.existsSync(path.join(stateDir, 'taskcluster.sqlite')));
  });

  it('`local up` prints human hints (export TASKCLUSTER_ROOT_URL=…) and stops on SIGINT', async () => {
    const stateDir = tmp();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'local', 'up', '--state-dir', stateDir, '--port', '0'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d) => {
          stdout += d;
          if (stdout.includes('Stop with Ctrl-C.')) resolve();
        });
        child.on('exit', () => reject(new Error(`local up exited early: ${stderr}`)));
      });
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, stderr);
    const rootUrl = /export TASKCLUSTER_ROOT_URL=(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
    assert.ok(rootUrl, stdout);
    assert.match(stdout, /export TASKCLUSTER_CLIENT_ID=static\/taskcluster\/root/);
    assert.match(stdout, /export TASKCLUSTER_ACCESS_TOKEN=\S{20,}/);
    assert.match(stdout, /export AWS_ENDPOINT_URL_S3=http:\/\/127\.0\.0\.1:\d+/);
    assert.match(stdout, /Archive task queue: proj-mozharness\/archive/);
  });

  it('`local up` refuses a bad --port with a usage error', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'local',
        'up',
        '--port',
        'eighty',
        '--state-dir',
        tmp(),
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /--port must be an integer/);
  });
});
