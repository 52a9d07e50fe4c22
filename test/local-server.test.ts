// The embedded HTTP framework: route table built from taskcluster-client's API references and
// checked against the upstream references, 501 for unimplemented methods, upstream error format,
// URL-decoded parameters, body limits, built-in ping/version/heartbeat.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HawkAuthenticator } from '../src/local/auth.js';
import { rootCredentials } from '../src/local/auth-store.js';
import { openDatabase, type Database } from '../src/local/db.js';
import { ApiError, type RequestContext } from '../src/local/framework.js';
import { EMBEDDED_SERVICES, UPSTREAM_ADDITIONS } from '../src/local/routes.js';
import { ApiServer } from '../src/local/server.js';
import { apiEntries } from '../src/taskcluster/references.js';
import { queueClient, slugid } from '../src/taskcluster/client.js';
import { upstreamReference } from './helpers/upstream.js';

/** Methods taskcluster-client@87.1.3 still ships that upstream (v106) removed. */
const REMOVED_UPSTREAM: Record<string, string[]> = {
  queue: ['declareProvisioner', 'declareWorkerType'],
};

/** Services whose upstream API reference ../shared/taskcluster/references holds. */
const SHARED_REFERENCES: string[] = ['queue', 'index', 'hooks', 'auth'];

const json = (r: Response): Promise<any> => r.json();
const JSON_TYPE = { 'content-type': 'application/json' };

const SAMPLE: Record<string, string> = {
  taskId: 'fN1SbArXTPSVFNUvaOlinQ',
  taskGroupId: 'fN1SbArXTPSVFNUvaOlinQ',
  runId: '0',
  taskQueueId: 'proj-x/worker',
  provisionerId: 'proj-x',
  workerType: 'worker',
  workerGroup: 'wg',
  workerId: 'wi',
  name: 'public/dir/a b.txt',
  indexPath: 'a.b.c',
  namespace: 'a.b',
  workerPoolId: 'proj-x/worker',
};

describe('embedded server framework', function () {
  let dir: string;
  let db: Database;
  let server: ApiServer;
  let rootUrl: string;
  const seen: RequestContext[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-server-'));
    db = openDatabase(dir);
    const auth = new HawkAuthenticator(db);
    server = new ApiServer(auth, { bodyLimit: 1024 });
    // a test service implementing a few queue methods
    server.register({
      name: 'queue',
      handlers: {
        getLatestArtifact: (ctx) => {
          seen.push(ctx);
          return { status: 303, headers: { location: 'http://127.0.0.1:1/x' }, body: { url: 'x' } };
        },
        createTask: (ctx) => {
          seen.push(ctx);
          if ((ctx.body as any)?.boom) throw new Error('kaboom');
          throw new ApiError('RequestConflict', 'conflicting task', { taskId: ctx.params.taskId });
        },
        claimWork: (ctx) => {
          seen.push(ctx);
          return { body: { tasks: [] } };
        },
        listArtifacts: (ctx) => {
          seen.push(ctx);
          return { body: { artifacts: [], query: ctx.query } };
        },
      },
    });
    rootUrl = await server.listen();
  });

  after(async () => {
    await server.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves every method of the four services at the upstream verb and route', () => {
    for (const service of EMBEDDED_SERVICES) {
      const ours = new Map(server.routeTable(service).map((r) => [r.name, r]));
      // ../shared holds no worker-manager reference: its table is the client's (apis.js) as is
      const reference = SHARED_REFERENCES.includes(service)
        ? upstreamReference(service)
        : { entries: apiEntries(service) };
      const upstream = reference.entries.filter((e: any) => e.type === 'function');
      for (const e of upstream) {
        const r = ours.get(e.name);
        assert.ok(r, `${service}.${e.name} is missing from the route table`);
        assert.equal(r.method, e.method, `${service}.${e.name} verb`);
        assert.equal(r.route, e.route, `${service}.${e.name} route`);
      }
      const extra = [...ours.keys()].filter((n) => !upstream.some((e: any) => e.name === n));
      assert.deepEqual(extra.sort(), REMOVED_UPSTREAM[service] ?? []);
    }
  });

  it('routes a real request to every method (501 naming it when no handler exists)', async () => {
    for (const service of EMBEDDED_SERVICES) {
      for (const e of [...apiEntries(service), ...(UPSTREAM_ADDITIONS[service] ?? [])]) {
        const route = e.route.replace(/<([^<>]+)>/g, (_, p: string) =>
          encodeURIComponent(SAMPLE[p] ?? 'x'),
        );
        const res = await fetch(`${rootUrl}/api/${service}/v1${route}`, {
          method: e.method.toUpperCase(),
          redirect: 'manual',
          ...(e.input ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}),
        });
        const text = await res.text();
        const body = text ? JSON.parse(text) : undefined;
        if (['ping', 'lbheartbeat', 'version', 'heartbeat'].includes(e.name)) {
          assert.equal(res.status, 200, `${service}.${e.name}`);
          continue;
        }
        const handled = service === 'queue' && seen.some((c) => c.entry.name === e.name);
        if (handled || (service === 'queue' && e.name === 'createTask')) continue;
        if (
          service === 'queue' &&
          ['getLatestArtifact', 'claimWork', 'listArtifacts'].includes(e.name)
        )
          continue;
        assert.equal(res.status, 501, `${service}.${e.name}: ${text}`);
        assert.equal(body.code, 'NotImplemented');
        assert.equal(
          body.message,
          `${service}.${e.name} is not implemented by the embedded services`,
        );
        assert.equal(body.requestInfo.method, e.name);
      }
    }
  });

  it('answers ping, version and heartbeat for every service', async () => {
    for (const service of EMBEDDED_SERVICES) {
      const ping = await json(await fetch(`${rootUrl}/api/${service}/v1/ping`));
      assert.equal(ping.alive, true);
      assert.equal((await fetch(`${rootUrl}/api/${service}/v1/__heartbeat__`)).status, 200);
      assert.equal((await fetch(`${rootUrl}/api/${service}/v1/__lbheartbeat__`)).status, 200);
      const version = await json(await fetch(`${rootUrl}/api/${service}/v1/__version__`));
      assert.equal(typeof version.version, 'string');
    }
  });

  it('decodes parameters: %2F in an artifact name and in a task queue id', async () => {
    seen.length = 0;
    const q = queueClient({ rootUrl, retries: 0 });
    const taskId = slugid();
    const out = await q.getLatestArtifact(taskId, 'public/logs/live backing.log');
    assert.deepEqual(out, { url: 'x' });
    assert.equal(seen[0]!.params.name, 'public/logs/live backing.log');
    assert.equal(seen[0]!.params.taskId, taskId);
    // raw slashes are accepted too for the `{*name}` parameters
    const raw = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}/artifacts/public/a/b.txt`, {
      redirect: 'manual',
    });
    assert.equal(raw.status, 303);
    assert.equal(raw.headers.get('location'), 'http://127.0.0.1:1/x');
    assert.equal(seen[1]!.params.name, 'public/a/b.txt');
    await fetch(`${rootUrl}/api/queue/v1/claim-work/proj-x%2Fworker`, {
      method: 'POST',
      body: '{"workerGroup":"g","workerId":"w","tasks":1}',
      headers: JSON_TYPE,
    });
    assert.equal(seen[2]!.params.taskQueueId, 'proj-x/worker');
    assert.deepEqual(seen[2]!.body, { workerGroup: 'g', workerId: 'w', tasks: 1 });
  });

  it('passes query parameters and rejects malformed URL parameters', async () => {
    seen.length = 0;
    const q = queueClient({ rootUrl, retries: 0, credentials: rootCredentials(db) });
    const out = await q.listArtifacts(slugid(), 0, { limit: 5, continuationToken: 'abc' });
    assert.deepEqual((out as any).query, { limit: '5', continuationToken: 'abc' });
    const res = await fetch(`${rootUrl}/api/queue/v1/task/not-a-slug/artifacts/public%2Fx`);
    assert.equal(res.status, 400);
    const body = await json(res);
    assert.equal(body.code, 'InvalidRequestArguments');
    assert.match(body.message, /taskId/);
  });

  it('reports errors in the upstream format', async () => {
    const taskId = slugid();
    const res = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`, {
      method: 'PUT',
      body: JSON.stringify({ a: 1 }),
      headers: JSON_TYPE,
    });
    assert.equal(res.status, 409);
    const body = await json(res);
    assert.equal(body.code, 'RequestConflict');
    assert.equal(body.message, 'conflicting task');
    assert.equal(body.requestInfo.method, 'createTask');
    assert.deepEqual(body.requestInfo.params, { taskId });
    assert.deepEqual(body.requestInfo.payload, { a: 1 });
    assert.ok(!Number.isNaN(Date.parse(body.requestInfo.time)));

    const crash = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`, {
      method: 'PUT',
      body: JSON.stringify({ boom: true }),
      headers: JSON_TYPE,
    });
    assert.equal(crash.status, 500);
    assert.equal((await json(crash)).code, 'InternalServerError');

    const bad = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`, {
      method: 'PUT',
      body: '{not json',
      headers: JSON_TYPE,
    });
    assert.equal(bad.status, 400);
    assert.equal((await json(bad)).code, 'MalformedPayload');

    const big = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`, {
      method: 'PUT',
      body: JSON.stringify({ x: 'y'.repeat(4096) }),
      headers: JSON_TYPE,
    });
    assert.equal(big.status, 413);
    assert.equal((await json(big)).code, 'InputTooLarge');

    for (const p of ['/api/nope/v1/ping', '/api/queue/v1/no/such/route', '/elsewhere']) {
      const nf = await fetch(`${rootUrl}${p}`);
      assert.equal(nf.status, 404, p);
      assert.equal((await json(nf)).code, 'ResourceNotFound');
    }
    // right path, wrong verb
    const verb = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}/status`, { method: 'DELETE' });
    assert.equal(verb.status, 404);
  });

  it('the client surfaces errors with the upstream code and status', async () => {
    const q = queueClient({ rootUrl, retries: 0 });
    await assert.rejects(
      q.createTask(slugid(), {} as any),
      (e: any) => e.statusCode === 409 && e.code === 'RequestConflict',
    );
  });

  it('refuses a body that is not application/json as upstream does (400 MalformedPayload)', async () => {
    const taskId = slugid();
    const res = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`, {
      method: 'PUT',
      body: '{"a":1}',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(res.status, 400);
    const body = await json(res);
    assert.equal(body.code, 'MalformedPayload');
    assert.equal(
      body.message,
      'Payload must be JSON with content-type: application/json got content-type: text/plain',
    );
    assert.deepEqual(body.requestInfo, { ...body.requestInfo, method: 'createTask', payload: {} });
    // parameters on the media type are fine
    const charset = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`, {
      method: 'PUT',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    assert.equal(charset.status, 409);
    // invalid JSON and JSON that is not an object or array: the raw text is echoed
    for (const [text, reason] of [
      ['{"a":', /^Failed to parse JSON: /],
      ['17', /^Failed to parse JSON: Must be an object or array$/],
    ] as const) {
      const bad = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`, {
        method: 'PUT',
        body: text,
        headers: JSON_TYPE,
      });
      assert.equal(bad.status, 400, text);
      const b = await json(bad);
      assert.equal(b.code, 'MalformedPayload');
      assert.match(b.message, reason);
      assert.equal(b.requestInfo.payload, text);
    }
  });
});

describe('embedded server framework: scopes from the API references', function () {
  let dir: string;
  let db: Database;
  let server: ApiServer;
  let rootUrl: string;
  let ran = 0;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-server-scopes-'));
    db = openDatabase(dir);
    server = new ApiServer(new HawkAuthenticator(db));
    server.register({
      name: 'queue',
      handlers: {
        task: () => {
          ran++;
          return { body: {} };
        },
        createTask: (ctx) => {
          ran++;
          ctx.authorize({
            priority: 'lowest',
            provisionerId: 'proj-x',
            workerType: 'w',
            projectId: 'none',
            schedulerId: '-',
            routes: ['index.a.b'],
            scopes: [],
            priorities: ['lowest'],
          });
          return { body: {} };
        },
      },
    });
    rootUrl = await server.listen();
  });

  after(async () => {
    await server.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('checks a method whose scopes use only URL parameters before its handler runs', async () => {
    const taskId = slugid();
    const res = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`);
    assert.equal(res.status, 403);
    const body = await json(res);
    assert.equal(body.code, 'InsufficientScopes');
    assert.match(body.message, new RegExp(`queue:get-task:${taskId}`));
    assert.equal(ran, 0, 'the handler did not run');
    const q = queueClient({ rootUrl, retries: 0, credentials: rootCredentials(db) });
    await q.task(taskId);
    assert.equal(ran, 1);
  });

  it('renders for/each and parameters from the handler, as upstream req.authorize(params)', async () => {
    const taskId = slugid();
    const res = await fetch(`${rootUrl}/api/queue/v1/task/${taskId}`, {
      method: 'PUT',
      body: '{}',
      headers: JSON_TYPE,
    });
    assert.equal(res.status, 403);
    const body = await json(res);
    assert.ok(body.details.missing, 'names what is missing');
    assert.match(JSON.stringify(body.details.required), /queue:route:index\.a\.b/);
    assert.match(JSON.stringify(body.details.required), /queue:scheduler-id:-/);
  });
});
