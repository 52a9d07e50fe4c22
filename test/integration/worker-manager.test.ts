// Worker Manager's static provider, the same steps against the embedded services and the real
// worker-manager (MOZHARNESS_TEST_BACKEND=real): create a pool and a worker with a 44-character
// secret, register with {staticSecret} and no credentials, claim work with the credentials it
// returns, reregister (each secret works once), report an error, list, remove, delete the pool.
// The shapes asserted here are the real service's answers (v106); each difference found while
// writing this test was changed in the embedded service to match.
import assert from 'node:assert/strict';
import taskcluster from 'taskcluster-client';
import { startBackend, type Backend } from '../helpers/backend.js';

/** The untyped client library, as the tests call methods the typed wrapper does not declare. */
const tc = taskcluster as any;

const slug = (): string => tc.slugid();
const secret44 = () => slug() + slug();
const POOL_KEYS = [
  'config',
  'created',
  'currentCapacity',
  'description',
  'emailOnError',
  'lastModified',
  'owner',
  'providerId',
  'requestedCapacity',
  'requestedCount',
  'runningCapacity',
  'runningCount',
  'stoppedCapacity',
  'stoppedCount',
  'stoppingCapacity',
  'stoppingCount',
  'workerPoolId',
];
const WORKER_KEYS = [
  'capacity',
  'created',
  'expires',
  'lastChecked',
  'lastModified',
  'providerId',
  'state',
  'workerGroup',
  'workerId',
  'workerPoolId',
];

async function refusal(
  p: Promise<unknown>,
): Promise<{ status: number; code: string; message: string }> {
  try {
    await p;
  } catch (e: any) {
    return { status: e.statusCode, code: e.code, message: String(e.body?.message ?? e.message) };
  }
  throw new Error('expected the call to be refused');
}

describe(`integration: worker-manager static provider (${process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded'})`, function () {
  this.timeout(120_000);
  let backend: Backend;
  let admin: any;
  let anonymous: any;
  let pool: string;
  const staticSecret = secret44();
  const expires = () => new Date(Date.now() + 3600e3).toISOString();

  before(async () => {
    backend = await startBackend();
    pool = `proj-mozharness/${backend.unique('wm')}`;
    const creds = await backend.clientWithScopes(
      [
        `worker-manager:manage-worker-pool:${pool}`,
        'worker-manager:provider:static',
        `worker-manager:create-worker:${pool}/*`,
        `worker-manager:get-worker:${pool}/*`,
        `worker-manager:get-worker-pool:${pool}`,
        `worker-manager:list-workers:${pool}`,
        `worker-manager:remove-worker:${pool}/*`,
      ],
      'wm-admin',
    );
    admin = new tc.WorkerManager({ rootUrl: backend.rootUrl, credentials: creds, retries: 0 });
    anonymous = new tc.WorkerManager({ rootUrl: backend.rootUrl, retries: 0 });
  });

  after(async () => {
    if (admin && pool) await admin.deleteWorkerPool(pool).catch(() => {});
    await backend?.close();
  });

  it('creates a static pool (idempotent; another definition is a 409) and needs the provider scope', async () => {
    const def = {
      providerId: 'static',
      description: 'mozharness-archive conformance test',
      owner: 'release@example.com',
      emailOnError: false,
      config: { lifecycle: { reregistrationTimeout: 3600 }, workerConfig: { taskQueue: pool } },
    };
    const created = await admin.createWorkerPool(pool, def);
    assert.deepEqual(Object.keys(created).sort(), POOL_KEYS);
    assert.equal(created.providerId, 'static');
    assert.deepEqual(created.config, def.config);
    assert.deepEqual(await admin.createWorkerPool(pool, def), created);
    const conflict = await refusal(admin.createWorkerPool(pool, { ...def, description: 'other' }));
    assert.deepEqual([conflict.status, conflict.code], [409, 'RequestConflict']);
    const badConfig = await refusal(
      admin.createWorkerPool(pool, { ...def, config: { unknown: 1 } }),
    );
    assert.deepEqual([badConfig.status, badConfig.code], [400, 'InputValidationError']);
    const other = await refusal(admin.createWorkerPool(pool, { ...def, providerId: 'aws' }));
    assert.equal(other.status, 403, 'worker-manager:provider:aws is not held');
  });

  it('creates a worker only with a 44-character secret; it is running at once', async () => {
    const short = await refusal(
      admin.createWorker(pool, 'wg', 'short', {
        providerInfo: { staticSecret: 'x' },
        expires: expires(),
      }),
    );
    assert.deepEqual([short.status, short.code], [400, 'InputValidationError']);
    const none = await refusal(admin.createWorker(pool, 'wg', 'none', { expires: expires() }));
    assert.deepEqual([none.status, none.code], [400, 'InputError']);
    const w = await admin.createWorker(pool, 'wg', 'w1', {
      providerInfo: { staticSecret },
      expires: expires(),
    });
    assert.deepEqual(Object.keys(w).sort(), WORKER_KEYS);
    assert.deepEqual([w.state, w.providerId, w.capacity], ['running', 'static', 1]);
    assert.ok(!JSON.stringify(w).includes(staticSecret), 'the secret is never answered');
    const again = await admin.createWorker(pool, 'wg', 'w1', {
      providerInfo: { staticSecret },
      expires: w.expires,
    });
    assert.equal(again.state, 'running');
  });

  it('registers without credentials, claims with what it gets, reregisters once per secret', async () => {
    const body = {
      workerPoolId: pool,
      providerId: 'static',
      workerGroup: 'wg',
      workerId: 'w1',
    };
    const schema = await refusal(
      anonymous.registerWorker({ ...body, workerIdentityProof: { secret: staticSecret } }),
    );
    assert.deepEqual([schema.status, schema.code], [400, 'InputValidationError']);
    const wrong = await refusal(
      anonymous.registerWorker({ ...body, workerIdentityProof: { staticSecret: secret44() } }),
    );
    assert.deepEqual([wrong.status, wrong.code], [400, 'InputError']);
    assert.match(wrong.message, /bad staticSecret/);
    const unknown = await refusal(
      anonymous.registerWorker({
        ...body,
        workerId: 'nobody',
        workerIdentityProof: { staticSecret },
      }),
    );
    assert.deepEqual([unknown.status, unknown.code], [404, 'ResourceNotFound']);

    const before = Date.now();
    const reg = await anonymous.registerWorker({ ...body, workerIdentityProof: { staticSecret } });
    assert.deepEqual(Object.keys(reg).sort(), ['credentials', 'expires', 'secret', 'workerConfig']);
    assert.deepEqual(reg.workerConfig, { taskQueue: pool });
    const lifetime = Date.parse(reg.expires) - before;
    assert.ok(
      lifetime > 3500e3 && lifetime < 3700e3,
      `expires after reregistrationTimeout: ${lifetime}`,
    );
    assert.match(reg.secret, /^[a-zA-Z0-9_-]{44}$/);
    assert.equal(reg.credentials.clientId, `worker/static/${pool}/wg/w1`);
    const cert = JSON.parse(reg.credentials.certificate);
    for (const scope of [
      `assume:worker-type:${pool}`,
      `assume:worker-pool:${pool}`,
      `assume:worker-id:wg/w1`,
      `queue:claim-work:${pool}`,
      `queue:worker-id:wg/w1`,
      `worker-manager:reregister-worker:${pool}/wg/w1`,
      `worker-manager:remove-worker:${pool}/wg/w1`,
    ]) {
      assert.ok(cert.scopes.includes(scope), `${scope} in ${cert.scopes.join(' ')}`);
    }

    // the credentials work: the queue's claimWork accepts them (an empty queue answers at once
    // on neither backend, so only the scope check is asserted through a refused sibling queue)
    const queue = new tc.Queue({
      rootUrl: backend.rootUrl,
      credentials: reg.credentials,
      retries: 0,
    });
    const otherQueue = await refusal(
      queue.claimWork(`proj-mozharness/${backend.unique('other')}`, {
        workerGroup: 'wg',
        workerId: 'w1',
        tasks: 1,
      }),
    );
    assert.equal(otherQueue.status, 403);

    // registering again is accepted and issues a new reregistration secret
    const reg2 = await anonymous.registerWorker({ ...body, workerIdentityProof: { staticSecret } });
    assert.notEqual(reg2.secret, reg.secret);
    const asWorker = new tc.WorkerManager({
      rootUrl: backend.rootUrl,
      credentials: reg2.credentials,
      retries: 0,
    });
    const ids = { workerPoolId: pool, workerGroup: 'wg', workerId: 'w1' };
    const replaced = await refusal(asWorker.reregisterWorker({ ...ids, secret: reg.secret }));
    assert.deepEqual([replaced.status, replaced.code], [400, 'InputError']);
    const rr = await asWorker.reregisterWorker({ ...ids, secret: reg2.secret });
    assert.deepEqual(Object.keys(rr).sort(), ['credentials', 'expires', 'secret']);
    assert.notEqual(rr.secret, reg2.secret);
    assert.equal(rr.credentials.clientId, `worker/static/${pool}/wg/w1`);
    const used = await refusal(asWorker.reregisterWorker({ ...ids, secret: reg2.secret }));
    assert.deepEqual([used.status, used.code], [400, 'InputError']);
    assert.match(used.message, /Could not generate credentials for this secret/);
    const anon = await refusal(anonymous.reregisterWorker({ ...ids, secret: rr.secret }));
    assert.equal(anon.status, 403);

    const renewed = new tc.WorkerManager({
      rootUrl: backend.rootUrl,
      credentials: rr.credentials,
      retries: 0,
    });
    const error = await renewed.reportWorkerError(pool, {
      workerGroup: 'wg',
      workerId: 'w1',
      kind: 'worker-error',
      title: 'Archive worker error',
      description: 'S3 refused the upload',
      extra: { attempt: 1 },
    });
    assert.deepEqual(Object.keys(error).sort(), [
      'description',
      'errorId',
      'extra',
      'kind',
      'reported',
      'title',
      'workerPoolId',
    ]);
    assert.deepEqual(error.extra, { attempt: 1, workerGroup: 'wg', workerId: 'w1' });
    const notMine = await refusal(
      renewed.reportWorkerError(pool, {
        workerGroup: 'wg',
        workerId: 'someone-else',
        kind: 'worker-error',
        title: 't',
        description: 'd',
        extra: {},
      }),
    );
    assert.equal(notMine.status, 403);

    // the worker may remove itself; it is then stopped and can no longer register
    await renewed.removeWorker(pool, 'wg', 'w1');
    assert.equal((await admin.worker(pool, 'wg', 'w1')).state, 'stopped');
    const stopped = await refusal(
      anonymous.registerWorker({ ...body, workerIdentityProof: { staticSecret } }),
    );
    assert.deepEqual([stopped.status, stopped.code], [400, 'InputError']);
    assert.match(stopped.message, /worker is not running/);
  });

  it('lists workers by state and pages them, then deleting the pool hands it to null-provider', async () => {
    await admin.createWorker(pool, 'wg', 'w2', {
      providerInfo: { staticSecret: secret44() },
      expires: expires(),
    });
    const all = await admin.listWorkersForWorkerPool(pool);
    // the real service's order is not by id; compare sorted
    assert.deepEqual(all.workers.map((w: any) => [w.workerId, w.state]).sort(), [
      ['w1', 'stopped'],
      ['w2', 'running'],
    ]);
    for (const w of all.workers) assert.deepEqual(Object.keys(w).sort(), WORKER_KEYS);
    const running = await admin.listWorkersForWorkerPool(pool, { state: 'running' });
    assert.deepEqual(
      running.workers.map((w: any) => w.workerId),
      ['w2'],
    );
    const first = await admin.listWorkersForWorkerPool(pool, { limit: 1 });
    assert.equal(first.workers.length, 1);
    assert.ok(first.continuationToken);
    const second = await admin.listWorkersForWorkerPool(pool, {
      limit: 1,
      continuationToken: first.continuationToken,
    });
    assert.deepEqual([...first.workers, ...second.workers].map((w: any) => w.workerId).sort(), [
      'w1',
      'w2',
    ]);
    const missing = await refusal(admin.worker(pool, 'wg', 'nobody'));
    assert.deepEqual([missing.status, missing.code], [404, 'ResourceNotFound']);

    const deleted = await admin.deleteWorkerPool(pool);
    assert.equal(deleted.providerId, 'null-provider');
    assert.equal((await admin.workerPool(pool)).providerId, 'null-provider');
    const after = await refusal(
      admin.createWorker(pool, 'wg', 'w3', {
        providerInfo: { staticSecret: secret44() },
        expires: expires(),
      }),
    );
    assert.deepEqual([after.status, after.code], [400, 'InputError']);
  });
});
