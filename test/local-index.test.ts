// The embedded Index service with the real taskcluster-client over HTTP: rank semantics, scopes,
// namespace rules, paging, expiry, artifact redirects, and auto-indexing of completed tasks.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import { ManualClock } from '../src/local/framework.js';
import { makeClients, slugid, type Clients } from '../src/taskcluster/client.js';
import { assertUpstream, upstreamMethodSchema } from './helpers/upstream.js';

const HOUR = 3600e3;
const schema = (method: string, which: 'input' | 'output') =>
  upstreamMethodSchema('index', method, which)!;

describe('embedded services: index', function () {
  let dir: string;
  let e: Embedded;
  let clock: ManualClock;
  let root: Clients;
  let anon: Clients;

  const entry = (rank = 0, ttl = HOUR, taskId = slugid()) => {
    const body = {
      taskId,
      rank,
      data: { rank },
      expires: new Date(clock.now().getTime() + ttl).toISOString(),
    };
    assertUpstream(schema('insertTask', 'input'), body);
    return body;
  };
  const insert = async (ns: string, body: ReturnType<typeof entry>) => {
    const out = await root.index.insertTask(ns, body);
    assertUpstream(schema('insertTask', 'output'), out);
    return out;
  };
  const status = (code: number, errCode?: string) => (err: any) => {
    assert.equal(err.statusCode, code, err.message);
    if (errCode) assert.equal(err.code, errCode);
    return true;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-index-'));
    clock = new ManualClock(new Date());
    e = await startEmbedded({ stateDir: dir, s3: false, clock, sweepIntervalMs: 0 });
    root = makeClients({ rootUrl: e.rootUrl, credentials: e.credentials, retries: 0 });
    anon = makeClients({ rootUrl: e.rootUrl, retries: 0 });
  });

  after(async () => {
    await e.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('replaces an entry when the new rank is >= the old one, keeps it otherwise (200)', async () => {
    const ns = 'rank.test.latest';
    const first = entry(5);
    await insert(ns, first);
    const lower = entry(3);
    const kept = await insert(ns, lower);
    assert.equal(kept.taskId, first.taskId);
    assert.equal(kept.rank, 5);
    assert.equal((await root.index.findTask(ns)).taskId, first.taskId);
    const tie = entry(5);
    assert.equal((await insert(ns, tie)).taskId, tie.taskId);
    const higher = entry(10);
    await insert(ns, higher);
    const found = await anon.index.findTask(ns);
    assertUpstream(schema('findTask', 'output'), found);
    assert.deepEqual(found, { namespace: ns, ...higher });
  });

  it('needs index:insert-task:<namespace> to insert', async () => {
    const creds = e.createClient('project/indexer', ['index:insert-task:allowed.*']);
    const c = makeClients({ rootUrl: e.rootUrl, credentials: creds, retries: 0 });
    await c.index.insertTask('allowed.x', entry());
    await assert.rejects(c.index.insertTask('denied.x', entry()), (err: any) => {
      assert.equal(err.statusCode, 403);
      assert.equal(err.code, 'InsufficientScopes');
      assert.match(err.message, /index:insert-task:denied\.x/);
      return true;
    });
  });

  it('enforces the upstream namespace format and length', async () => {
    for (const bad of ['a..b', '.a', 'a.', 'a b', 'a/b', 'ä.b', 'x'.repeat(256)]) {
      await assert.rejects(insert(bad, entry()), status(400), bad);
    }
    await insert("ok.with_!~*'()%-chars", entry());
    await insert('y'.repeat(255), entry());
    await assert.rejects(
      root.index.insertTask('ok.body', { ...entry(), extra: 1 } as any),
      status(400),
    );
    await assert.rejects(
      root.index.insertTask('ok.body', { ...entry(), taskId: 'nope' }),
      status(400),
    );
  });

  it('lists namespaces and tasks page by page', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) {
      await insert(`paging.${n}.task`, entry());
      await insert(`paging.tasks.${n}`, entry());
    }
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const out = await anon.index.listNamespaces('paging', {
        limit: 2,
        ...(token ? { continuationToken: token } : {}),
      });
      assertUpstream(schema('listNamespaces', 'output'), out);
      names.push(...out.namespaces.map((n: any) => n.namespace));
      token = out.continuationToken;
      pages++;
    } while (token);
    assert.deepEqual(names, [
      'paging.a',
      'paging.b',
      'paging.c',
      'paging.d',
      'paging.e',
      'paging.tasks',
    ]);
    assert.equal(pages, 3);

    const tasks: string[] = [];
    token = undefined;
    do {
      const out = await anon.index.listTasks('paging.tasks', {
        limit: 3,
        ...(token ? { continuationToken: token } : {}),
      });
      assertUpstream(schema('listTasks', 'output'), out);
      tasks.push(...out.tasks.map((t) => t.namespace));
      token = out.continuationToken;
    } while (token);
    assert.deepEqual(
      tasks,
      ['a', 'b', 'c', 'd', 'e'].map((n) => `paging.tasks.${n}`),
    );

    const top = await anon.index.listNamespaces('', {});
    assert.ok(top.namespaces.some((n: any) => n.namespace === 'paging'));
    await assert.rejects(
      anon.index.listTasks('paging.tasks', { continuationToken: 'garbage!' }),
      status(400),
    );
    await assert.rejects(anon.index.listTasks('paging.tasks', { limit: 0 }), status(400));
  });

  it('finds tasks at several indexes (findTasksAtIndex), skipping missing ones', async () => {
    const a = entry(1);
    const b = entry(2);
    await insert('batch.one', a);
    await insert('batch.two', b);
    const body = { indexes: ['batch.one', 'batch.missing', 'batch.two'] };
    assertUpstream(schema('findTasksAtIndex', 'input'), body);
    const out = await anon.index.findTasksAtIndex(body);
    assertUpstream(schema('findTasksAtIndex', 'output'), out);
    assert.deepEqual(
      out.tasks.map((t) => t.taskId),
      [a.taskId, b.taskId],
    );
    const first = await anon.index.findTasksAtIndex(body, { limit: 1 });
    assert.equal(first.tasks.length, 1);
    assert.ok(first.continuationToken);
    const rest = await anon.index.findTasksAtIndex(body, {
      limit: 1,
      continuationToken: first.continuationToken!,
    });
    assert.deepEqual(
      rest.tasks.map((t) => t.taskId),
      [b.taskId],
    );
  });

  it('does not find expired entries and deletes entries', async () => {
    await insert('expiring.soon', entry(0, 60e3));
    await insert('expiring.later', entry(0, 10 * HOUR));
    clock.advance(2 * 60e3);
    await assert.rejects(anon.index.findTask('expiring.soon'), status(404, 'ResourceNotFound'));
    const listed = await anon.index.listTasks('expiring', {});
    assert.deepEqual(
      listed.tasks.map((t) => t.namespace),
      ['expiring.later'],
    );
    await e.sweep();
    // a lower rank may now take the place of the expired entry
    const replacement = entry(-1);
    assert.equal((await insert('expiring.soon', replacement)).taskId, replacement.taskId);
    await (root.index as any).deleteTask('expiring.later');
    await assert.rejects(anon.index.findTask('expiring.later'), status(404));
  });

  it('redirects findArtifactFromTask (303) to the queue, signing non-public names', async () => {
    const t = entry();
    await insert('artifacts.latest', t);
    const url = root.index.buildUrl(
      (root.index as any).findArtifactFromTask,
      'artifacts.latest',
      'public/a/b.tar.gz',
    );
    const res = await fetch(url, { redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(
      res.headers.get('location'),
      `${e.rootUrl}/api/queue/v1/task/${t.taskId}/artifacts/public%2Fa%2Fb.tar.gz`,
    );
    const privateUrl = root.index.buildSignedUrl(
      (root.index as any).findArtifactFromTask,
      'artifacts.latest',
      'private/secret.log',
    );
    const priv = await fetch(privateUrl, { redirect: 'manual' });
    assert.equal(priv.status, 303);
    assert.match(priv.headers.get('location')!, /private%2Fsecret\.log\?bewit=/);
    const denied = await fetch(url.replace('public%2Fa%2Fb.tar.gz', 'private%2Fsecret.log'), {
      redirect: 'manual',
    });
    assert.equal(denied.status, 403, 'unauthenticated: 403 InsufficientScopes, as upstream');
    const missing = await fetch(url.replace('artifacts.latest', 'artifacts.none'), {
      redirect: 'manual',
    });
    assert.equal(missing.status, 404);
  });

  it('indexes `index.` routes from task.extra.index when a task completes, not when it fails', async () => {
    const queueId = 'proj-test/index-worker';
    const created = clock.now();
    const def = (name: string, extra: Record<string, unknown>) => ({
      taskQueueId: queueId,
      created: created.toISOString(),
      deadline: new Date(created.getTime() + HOUR).toISOString(),
      expires: new Date(created.getTime() + 48 * HOUR).toISOString(),
      routes: [`index.auto.${name}.latest`, `index.auto.${name}.rev`, 'tc-treeherder.v2.x.y'],
      payload: {},
      metadata: { name, description: name, owner: 'a@example.com', source: 'https://example.com/' },
      extra,
    });
    const ok = slugid();
    const bad = slugid();
    const expires = new Date(created.getTime() + 24 * HOUR).toISOString();
    await root.queue.createTask(ok, def('ok', { index: { rank: 7, data: { sha: 'x' }, expires } }));
    await root.queue.createTask(bad, def('bad', {}));
    const claim = await root.queue.claimWork(queueId, {
      workerGroup: 'g',
      workerId: 'w',
      tasks: 2,
    });
    assert.equal(claim.tasks.length, 2);
    for (const c of claim.tasks) {
      const taskId = c.status.taskId;
      const q = makeClients({ rootUrl: e.rootUrl, credentials: c.credentials, retries: 0 }).queue;
      if (taskId === ok) await q.reportCompleted(taskId, c.runId);
      else await q.reportFailed(taskId, c.runId);
    }
    for (const ns of ['auto.ok.latest', 'auto.ok.rev']) {
      const found = await anon.index.findTask(ns);
      assertUpstream(schema('findTask', 'output'), found);
      assert.deepEqual(found, { namespace: ns, taskId: ok, rank: 7, data: { sha: 'x' }, expires });
    }
    await assert.rejects(anon.index.findTask('auto.bad.latest'), status(404));
  });

  it('applies upstream defaults and refuses malformed extra.index', () => {
    const expires = new Date(clock.now().getTime() + HOUR).toISOString();
    const taskId = slugid();
    const out = e.index.indexTaskOnCompletion(taskId, {
      routes: ['index.direct.defaults', 'index.bad..ns', 'other'],
      expires,
    });
    assert.deepEqual(out, [{ namespace: 'direct.defaults', taskId, rank: 0, data: {}, expires }]);
    assert.deepEqual(
      e.index.indexTaskOnCompletion(slugid(), {
        routes: ['index.direct.badrank'],
        expires,
        extra: { index: { rank: 'high' } },
      }),
      [],
    );
    assert.deepEqual(
      e.index.indexTaskOnCompletion(slugid(), {
        routes: ['index.direct.baddata'],
        expires,
        extra: { index: { data: [1] } },
      }),
      [],
    );
  });
});
