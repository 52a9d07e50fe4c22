// The worker's workerManager configuration and its registration against the embedded
// worker-manager: exactly one source of the static secret, never together with static
// credentials; no secret (static, reregistration, access token) in any log line, at debug level,
// in text or JSON; the worker's own errors reported with reportWorkerError.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tc from 'taskcluster-client';
import { workerManagerClient, type Credentials } from '../src/taskcluster/client.js';
import { ArchiveError } from '../src/util/errors.js';
import { createLogger } from '../src/util/log.js';
import {
  describeConfig,
  readStaticSecret,
  reregisterDelayMs,
  runWorker,
  validateWorkerConfig,
  type Registration,
} from '../src/worker/index.js';
import { startBackend, type Backend } from './helpers/backend.js';
import { waitFor } from './helpers/wait.js';

const slug = (): string => tc.slugid();
const base = {
  rootUrl: 'http://127.0.0.1:1',
  taskQueueId: 'proj-mozharness/archive',
  workerGroup: 'wg',
  workerId: 'w1',
  s3: { bucket: 'archives' },
  allowRepos: ['https://hg.mozilla.org/'],
};

function configError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ArchiveError, String(e));
    assert.equal(e.code, 'invalid-config');
    return e.message;
  }
  throw new Error('expected invalid-config');
}

describe('worker: workerManager configuration', () => {
  it('takes exactly one source of the static secret, and not together with credentials', () => {
    const staticSecret = slug() + slug();
    const c = validateWorkerConfig({
      ...base,
      workerManager: { workerPoolId: 'proj-mozharness/archive', staticSecret },
    });
    assert.equal(c.workerManager?.staticSecret, staticSecret);
    assert.ok(!JSON.stringify(describeConfig(c)).includes(staticSecret));
    const both = configError(() =>
      validateWorkerConfig({
        ...base,
        credentials: { clientId: 'c', accessToken: 'token-123456' },
        workerManager: { workerPoolId: 'proj-mozharness/archive', staticSecret },
      }),
    );
    assert.match(both, /credentials and config\.workerManager are both given/);
    configError(() =>
      validateWorkerConfig({
        ...base,
        workerManager: {
          workerPoolId: 'proj-mozharness/archive',
          staticSecret,
          staticSecretEnv: 'X',
        },
      }),
    );
    configError(() =>
      validateWorkerConfig({ ...base, workerManager: { workerPoolId: 'proj-mozharness/archive' } }),
    );
  });

  it('reads the secret from a file or a variable; a malformed one is refused without echoing it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-secret-'));
    try {
      const secret = slug() + slug();
      const file = path.join(dir, 'secret');
      fs.writeFileSync(file, secret + '\n', { mode: 0o600 });
      const pool = { workerPoolId: 'proj-mozharness/archive' };
      assert.equal(readStaticSecret({ ...pool, staticSecretFile: file }), secret);
      assert.equal(
        readStaticSecret({ ...pool, staticSecretEnv: 'WM_SECRET' }, { WM_SECRET: secret }),
        secret,
      );
      const bad = 'not-a-44-character-secret-xyz';
      const message = configError(() => readStaticSecret({ ...pool, staticSecret: bad }));
      assert.match(message, /44 characters/);
      assert.ok(!message.includes(bad));
      assert.match(
        configError(() => readStaticSecret({ ...pool, staticSecretEnv: 'UNSET' }, {})),
        /UNSET/,
      );
      assert.match(
        configError(() => readStaticSecret({ ...pool, staticSecretFile: path.join(dir, 'none') })),
        /cannot read/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reregisters at 80% of the time left, within 1 s and the interval', () => {
    const now = 1_000_000;
    assert.equal(reregisterDelayMs(new Date(now + 100_000), 3_600_000, now), 80_000);
    assert.equal(reregisterDelayMs(new Date(now + 100_000), 10_000, now), 10_000);
    assert.equal(reregisterDelayMs(new Date(now - 5_000), 10_000, now), 1000);
  });
});

describe('worker: registration with the embedded worker-manager', function () {
  this.timeout(60_000);
  let backend: Backend;
  let admin: any;
  let workerPoolId: string;

  before(async () => {
    backend = await startBackend();
    workerPoolId = `proj-mozharness/${backend.unique('wm-unit')}`;
    admin = new tc.WorkerManager({ rootUrl: backend.rootUrl, credentials: backend.root });
    await admin.createWorkerPool(workerPoolId, {
      providerId: 'static',
      description: 'unit test',
      owner: 'release@example.com',
      emailOnError: false,
      config: { lifecycle: { reregistrationTimeout: 3600 }, workerConfig: {} },
    });
  });
  after(async () => {
    await admin?.deleteWorkerPool(workerPoolId).catch(() => {});
    await backend?.close();
  });

  async function worker(workerId: string) {
    const staticSecret = slug() + slug();
    await admin.createWorker(workerPoolId, 'wg', workerId, {
      providerInfo: { staticSecret },
      expires: new Date(Date.now() + 3600e3).toISOString(),
    });
    return staticSecret;
  }

  function config(workerId: string, overrides: Record<string, unknown> = {}) {
    return validateWorkerConfig({
      ...base,
      rootUrl: backend.rootUrl,
      taskQueueId: workerPoolId,
      workerId,
      pollIntervalSeconds: 0.05,
      testIsolation: 'best-effort',
      workerManager: {
        workerPoolId,
        staticSecretEnv: 'MOZHARNESS_TEST_WM_SECRET',
        reregisterIntervalSeconds: 1,
      },
      ...overrides,
    });
  }

  it('no secret in any log line (text and JSON, debug level) through register, reregister and removal', async () => {
    for (const json of [false, true]) {
      const workerId = `logs-${json}`;
      const staticSecret = await worker(workerId);
      const lines: string[] = [];
      const log = createLogger({ write: (l) => lines.push(l), json, level: 'debug' });
      const registrations: Registration[] = [];
      const secrets: string[] = [staticSecret];
      const done = runWorker(config(workerId), {
        store: {} as any,
        log,
        env: { MOZHARNESS_TEST_WM_SECRET: staticSecret },
        onRegistered: (r) => registrations.push(r),
      });
      await waitFor('registered', async () => (registrations.length ? true : undefined));
      const r = registrations[0]!;
      secrets.push(r.currentSecret(), r.credentials.accessToken);
      await waitFor('reregistered', async () =>
        r.currentSecret() !== secrets[1] ? true : undefined,
      );
      secrets.push(r.currentSecret(), r.credentials.accessToken);
      await admin.removeWorker(workerPoolId, 'wg', workerId);
      const summary = await done;
      assert.match(summary.stopReason ?? '', /refused reregistration/);
      const text = lines.join('\n');
      for (const event of ['registered', 'reregistered', 'worker-removed', 'worker-stopped']) {
        assert.ok(text.includes(event), `${event} is logged`);
      }
      for (const s of secrets) assert.ok(!text.includes(s), 'a secret was logged');
    }
  });

  it("reports the worker's own error (claimWork refused) to worker-manager, not a task's", async () => {
    const workerId = 'refused';
    const staticSecret = await worker(workerId);
    // the real client, recording what reportWorkerError sent and what worker-manager answered
    const reported: any[] = [];
    const wm = (credentials?: Credentials) => {
      const c = workerManagerClient({ rootUrl: backend.rootUrl, credentials });
      const report = c.reportWorkerError.bind(c);
      c.reportWorkerError = async (pool, body) => {
        const answer = await report(pool, body);
        reported.push({ pool, body, answer });
        return answer;
      };
      return c;
    };
    const e = await runWorker(
      // the issued credentials may claim only from the pool's own task queue
      config(workerId, { taskQueueId: 'proj-mozharness/elsewhere' }),
      {
        store: {} as any,
        env: { MOZHARNESS_TEST_WM_SECRET: staticSecret },
        workerManager: wm,
      },
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(e instanceof ArchiveError && e.code === 'not-allowed', String(e));
    assert.equal(reported.length, 1, JSON.stringify(reported));
    const [{ pool, body, answer }] = reported;
    assert.equal(pool, workerPoolId);
    assert.deepEqual(
      [body.workerGroup, body.workerId, body.kind],
      ['wg', workerId, 'worker-error'],
    );
    assert.match(body.description, /claimWork on proj-mozharness\/elsewhere was refused/);
    assert.equal(answer.workerPoolId, workerPoolId);
    assert.ok(answer.errorId);
  });
});
