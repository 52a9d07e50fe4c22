// The payload's test command is code a push controls. Run by the worker, it runs as the
// unprivileged task user, in its own scratch directory, without network: it can read neither the
// worker's /proc/<pid>/environ nor the worker's configuration file, and cannot connect to a
// loopback server this test starts. Needs root (CI runs as root); skipped, saying why, otherwise.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ensureTaskUser, isRoot, TASK_USER } from './helpers/task-user.js';
import { startWorkerEnv, type WorkerEnv } from './helpers/worker-env.js';
import { waitFor } from './helpers/wait.js';

describe('worker: the test command is isolated from the worker', function () {
  this.timeout(120_000);
  let env: WorkerEnv | undefined;
  let server: net.Server | undefined;
  const connections: string[] = [];

  before(async function () {
    if (!isRoot) {
      console.log(
        '    (skipped: the worker can only switch the test command to another user as root; ' +
          'run as root, as CI does, to test the isolation)',
      );
      this.skip();
    }
    ensureTaskUser();
    env = await startWorkerEnv({ variants: [undefined] });
    server = net.createServer((socket) => {
      connections.push(`${socket.remoteAddress}:${socket.remotePort}`);
      socket.end('hello\n');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    server?.close();
    await env?.close();
  });

  it('runs as the task user in a scratch directory it owns: no worker environ, no config file, no network', async () => {
    const port = (server!.address() as net.AddressInfo).port;
    // The server answers the worker's own user, so a refusal below is the isolation's doing.
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve();
      });
      c.on('error', reject);
    });
    assert.equal(await waitForConnections(1), 1);

    const configFile = path.join(env!.dir, 'worker-config.yml');
    fs.writeFileSync(configFile, 'credentials: {clientId: x, accessToken: config-secret}\n', {
      mode: 0o600,
    });
    const script = [
      'if cat /proc/$WORKER_PID/environ >/dev/null 2>&1; then echo probe environ=READABLE; else echo probe environ=denied; fi',
      'if cat "$CONFIG" >/dev/null 2>&1; then echo probe config=READABLE; else echo probe config=denied; fi',
      'if bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then echo probe network=OPEN; else echo probe network=refused; fi',
      'echo probe user=$(id -un)',
      'if [ -O . ] && [ -O "$HOME" ] && [ -w "$TMPDIR" ]; then echo probe scratch=owned; fi',
      'echo probe tree=$(ls scripts | head -1)',
    ].join('\n');
    const q = 'isolation';
    const taskId = await env!.createTask(q, {
      repository: env!.hg.url,
      revision: env!.repo.revisions[0],
      test: {
        command: ['sh', '-c', script],
        env: { WORKER_PID: String(process.pid), CONFIG: configFile, PORT: String(port) },
        maxRunTime: 60,
      },
    });
    const summary = await env!.runOnce(q);
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    const log = await taskLog(taskId);
    const probes = Object.fromEntries(
      [...log.matchAll(/OUT +probe (\w+)=(\S+)/g)].map((m) => [m[1], m[2]]),
    );
    assert.deepEqual(
      probes,
      {
        environ: 'denied',
        config: 'denied',
        network: 'refused',
        user: TASK_USER,
        scratch: 'owned',
        tree: 'desktop_unittest.py',
      },
      log,
    );
    assert.match(log, /test-start .*user=mozharness-test network=none/);
    assert.equal(connections.length, 1, 'the test command reached the loopback server');
    // nothing of the scratch directory is left behind
    const left = fs
      .readdirSync(process.env.TMPDIR || '/tmp')
      .filter((n) => n.startsWith(`mozharness-test-${taskId}-`));
    assert.deepEqual(left, []);
  });

  async function waitForConnections(n: number): Promise<number> {
    await waitFor(`${n} connection(s)`, () => connections.length >= n, { intervalMs: 25 });
    return connections.length;
  }

  async function taskLog(taskId: string): Promise<string> {
    const url = `${env!.embedded.rootUrl}/api/queue/v1/task/${taskId}/artifacts/${encodeURIComponent('public/logs/live_backing.log')}`;
    const res = await fetch(url);
    assert.equal(res.status, 200);
    return res.text();
  }
});
