// Artifacts of the embedded Queue over real HTTP: reference/link/error storage types, 303s reachable
// without credentials for public/ names, 424 for error artifacts, scopes, paging, the rules on
// who may create artifacts and when. Bodies are checked against the upstream schemas.
import assert from 'node:assert/strict';
import {
  call,
  rejection,
  slugid,
  startQueue,
  taskDef,
  TASK_QUEUE_ID,
  type QueueHarness,
} from './helpers/local-queue.js';
import { assertUpstream } from './helpers/upstream.js';

const MIN = 60_000;

describe('local queue: artifacts', function () {
  let h: QueueHarness;
  let taskId: string;
  let worker: ReturnType<QueueHarness['clientFor']>;
  let expires: string;

  before(async () => {
    h = await startQueue();
    taskId = slugid();
    await call(h.client, 'createTask', taskId, taskDef(h.clock));
    const res = await call(h.client, 'claimWork', TASK_QUEUE_ID, {
      workerGroup: 'wg',
      workerId: 'w1',
      tasks: 1,
    });
    worker = h.clientFor(res.tasks[0].credentials);
    expires = new Date(h.clock.now().getTime() + 24 * 60 * MIN).toISOString();
  });
  after(async () => {
    await h.close();
  });

  const url = 'https://archive.example.com/sha256/abc/mozharness.tar.gz';

  async function raw(path: string, headers: Record<string, string> = {}) {
    return fetch(`${h.rootUrl}/api/queue/v1${path}`, { redirect: 'manual', headers });
  }

  it('creates reference, link and error artifacts with the run credentials', async () => {
    const mk = (name: string, body: any) => call(worker, 'createArtifact', taskId, 0, name, body);
    assert.deepEqual(
      await mk('public/build/mozharness.tar.gz', {
        storageType: 'reference',
        expires,
        contentType: 'application/gzip',
        url,
      }),
      { storageType: 'reference' },
    );
    await mk('public/latest.tar.gz', {
      storageType: 'link',
      expires,
      artifact: 'public/build/mozharness.tar.gz',
    });
    await mk('public/logs/missing.log', {
      storageType: 'error',
      expires,
      reason: 'file-missing-on-worker',
      message: 'the worker found no file at logs/missing.log',
    });
    await mk('private/secret.json', {
      storageType: 'reference',
      expires,
      contentType: 'application/json',
      url: 'https://private.example.com/secret.json',
    });
    await mk('public/leak', { storageType: 'link', expires, artifact: 'private/secret.json' });
    await mk('public/cycle-a', { storageType: 'link', expires, artifact: 'public/cycle-b' });
    await mk('public/cycle-b', { storageType: 'link', expires, artifact: 'public/cycle-a' });
  });

  it('answers 303 to the reference URL without credentials for public/ names', async () => {
    for (const path of [
      `/task/${taskId}/artifacts/public%2Fbuild%2Fmozharness.tar.gz`,
      `/task/${taskId}/artifacts/public/build/mozharness.tar.gz`,
      `/task/${taskId}/runs/0/artifacts/public%2Fbuild%2Fmozharness.tar.gz`,
      `/task/${taskId}/artifacts/public%2Flatest.tar.gz`, // a link, followed
    ]) {
      const res = await raw(path);
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.get('location'), url);
      assert.equal(res.headers.get('x-taskcluster-artifact-storage-type'), 'reference');
      const body = await res.json();
      assertUpstream('/schemas/queue/v1/get-artifact-response.json', body);
      assert.deepEqual(body, { storageType: 'reference', url });
    }
    // the client returns the JSON body of the redirect
    const viaClient = await call(
      h.anonymous,
      'getLatestArtifact',
      taskId,
      'public/build/mozharness.tar.gz',
    );
    assert.equal(viaClient.url, url);
    // and a signed/unsigned URL built by the client redirects too
    const res = await fetch(
      h.anonymous.buildUrl(h.anonymous.getArtifact as any, taskId, 0, 'public/latest.tar.gz'),
      { redirect: 'manual' },
    );
    assert.equal(res.status, 303);
  });

  it('answers 424 with the reason for an error artifact', async () => {
    const res = await raw(`/task/${taskId}/artifacts/public%2Flogs%2Fmissing.log`);
    assert.equal(res.status, 424);
    assert.deepEqual(await res.json(), {
      reason: 'file-missing-on-worker',
      message: 'the worker found no file at logs/missing.log',
    });
    const err = await rejection(h.anonymous.getArtifact(taskId, 0, 'public/logs/missing.log'));
    assert.equal(err.statusCode, 424);
    const content = await call(h.anonymous, 'latestArtifact', taskId, 'public/logs/missing.log');
    assert.equal(content.storageType, 'error');
    assert.equal(content.reason, 'file-missing-on-worker');
  });

  it('needs queue:get-artifact:<name> for other names, also behind a link', async () => {
    const anon = await raw(`/task/${taskId}/artifacts/private%2Fsecret.json`);
    assert.equal(anon.status, 403, 'unauthenticated: 403 InsufficientScopes, as upstream');
    assert.equal(
      (await rejection(h.anonymous.getArtifact(taskId, 0, 'public/leak'))).statusCode,
      403,
    );
    const limited = h.clientWith(['queue:get-artifact:private/other']);
    assert.equal(
      (await rejection(limited.getLatestArtifact(taskId, 'private/secret.json'))).statusCode,
      403,
    );
    const reader = h.clientWith(['queue:get-artifact:private/*']);
    const ok = await call(reader, 'getLatestArtifact', taskId, 'public/leak');
    assert.equal(ok.url, 'https://private.example.com/secret.json');
    // a signed URL carries the reader's scopes
    const signed = reader.buildSignedUrl(
      reader.getArtifact as any,
      taskId,
      0,
      'private/secret.json',
    );
    const res = await fetch(signed, { redirect: 'manual' });
    assert.equal(res.status, 303);
  });

  it('404 for unknown artifacts and tasks, 400 for a link cycle', async () => {
    assert.equal(
      (await rejection(h.anonymous.getArtifact(taskId, 0, 'public/nope'))).statusCode,
      404,
    );
    assert.equal(
      (await rejection(h.anonymous.getLatestArtifact(slugid(), 'public/x'))).statusCode,
      404,
    );
    assert.equal((await rejection(h.anonymous.getArtifact(taskId, 3, 'public/x'))).statusCode, 404);
    const cycle = await rejection(h.anonymous.getArtifact(taskId, 0, 'public/cycle-a'));
    assert.equal(cycle.statusCode, 400);
  });

  it('lists artifacts with paging, and serves artifact info and content', async () => {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const q: Record<string, string | number> = { limit: 3 };
      if (token) q.continuationToken = token;
      const page = await call(h.client, 'listArtifacts', taskId, 0, q);
      names.push(...page.artifacts.map((a: any) => a.name));
      token = page.continuationToken;
    } while (token);
    assert.deepEqual(names, [
      'private/secret.json',
      'public/build/mozharness.tar.gz',
      'public/cycle-a',
      'public/cycle-b',
      'public/latest.tar.gz',
      'public/leak',
      'public/logs/missing.log',
    ]);
    const latest = await call(h.client, 'listLatestArtifacts', taskId);
    assert.equal(latest.artifacts.length, 7);
    assert.equal(latest.continuationToken, undefined);
    const info = await call(h.client, 'artifactInfo', taskId, 0, 'public/latest.tar.gz');
    assert.equal(info.storageType, 'link');
    assert.equal(info.contentType, 'application/binary');
    const info2 = await call(
      h.client,
      'latestArtifactInfo',
      taskId,
      'public/build/mozharness.tar.gz',
    );
    assert.deepEqual(info2, {
      storageType: 'reference',
      name: 'public/build/mozharness.tar.gz',
      expires,
      contentType: 'application/gzip',
    });
    const content = await call(h.client, 'artifact', taskId, 0, 'public/latest.tar.gz');
    assert.deepEqual(content, { storageType: 'reference', url });
    assert.equal((await rejection(h.anonymous.listArtifacts(taskId, 0))).statusCode, 403);
    assert.equal((await rejection(h.client.listArtifacts(taskId, 4))).statusCode, 404);
  });

  it('applies the upstream rules on re-creating an artifact', async () => {
    const name = 'public/build/mozharness.tar.gz';
    const same = {
      storageType: 'reference',
      expires,
      contentType: 'application/gzip',
      url,
    };
    await call(worker, 'createArtifact', taskId, 0, name, same); // idempotent
    await call(worker, 'createArtifact', taskId, 0, name, { ...same, url: `${url}?v=2` });
    const later = new Date(Date.parse(expires) + MIN).toISOString();
    await call(worker, 'createArtifact', taskId, 0, name, { ...same, url, expires: later });
    const shorter = await rejection(worker.createArtifact(taskId, 0, name, same as any));
    assert.equal(shorter.statusCode, 409, 'expires may only be extended');
    const otherType = await rejection(
      worker.createArtifact(taskId, 0, name, {
        storageType: 'error',
        expires: later,
        reason: 'file-missing-on-worker',
        message: 'x',
      }),
    );
    assert.equal(otherType.statusCode, 409);
    const contentType = await rejection(
      worker.createArtifact(taskId, 0, name, {
        ...same,
        expires: later,
        contentType: 'text/plain',
      } as any),
    );
    assert.equal(contentType.statusCode, 409);
  });

  it('refuses bad artifacts: expiry past the task, object/s3 storage, finishing non-object types', async () => {
    const task = await call(h.client, 'task', taskId);
    const tooLate = new Date(Date.parse(task.expires) + MIN).toISOString();
    const err = await rejection(
      worker.createArtifact(taskId, 0, 'public/late', {
        storageType: 'reference',
        expires: tooLate,
        contentType: 'text/plain',
        url,
      }),
    );
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'InputError');
    const s3 = await rejection(
      worker.createArtifact(taskId, 0, 'public/s3', {
        storageType: 's3',
        expires,
        contentType: 'text/plain',
      } as any),
    );
    assert.equal(s3.statusCode, 400);
    assert.match(s3.message, /reference/);
    const bad = await rejection(
      worker.createArtifact(taskId, 0, 'public/bad', { storageType: 'reference', expires } as any),
    );
    assert.equal(bad.statusCode, 400);
    const finish = await rejection(
      worker.finishArtifact(taskId, 0, 'public/build/mozharness.tar.gz', { uploadId: slugid() }),
    );
    assert.equal(finish.statusCode, 400);
    assert.equal(finish.code, 'InputError');
  });

  it('only the claimed run creates artifacts, while running (or briefly after an exception)', async () => {
    const other = slugid();
    await call(h.client, 'createTask', other, taskDef(h.clock, { retries: 1 }));
    const unclaimed = await rejection(
      h.client.createArtifact(other, 0, 'public/x', {
        storageType: 'reference',
        expires,
        contentType: 'text/plain',
        url,
      }),
    );
    assert.equal(unclaimed.statusCode, 400, 'a run that was never claimed has no artifacts');
    const res = await call(h.client, 'claimWork', TASK_QUEUE_ID, {
      workerGroup: 'wg',
      workerId: 'w2',
      tasks: 1,
    });
    const w2 = h.clientFor(res.tasks[0].credentials);
    const body = { storageType: 'reference', expires, contentType: 'text/plain', url } as const;
    // credentials of one task do not create artifacts on another
    assert.equal(
      (await rejection(worker.createArtifact(other, 0, 'public/x', body))).statusCode,
      403,
    );
    await call(w2, 'reportException', other, 0, { reason: 'worker-shutdown' });
    // a run resolved exception may still upload its logs for 25 minutes
    await call(w2, 'createArtifact', other, 0, 'public/logs/live_backing.log', body);
    h.clock.advance(26 * MIN);
    // (the run's credentials expired with its claim; root credentials meet the 25-minute rule)
    const late = await rejection(h.client.createArtifact(other, 0, 'public/logs/late.log', body));
    assert.equal(late.statusCode, 409);
    // completed runs take no more artifacts
    await call(h.client, 'reportCompleted', taskId, 0);
    const done = await rejection(h.client.createArtifact(taskId, 0, 'public/after', body));
    assert.equal(done.statusCode, 409);
    // but what was created stays reachable
    const after = await fetch(
      `${h.rootUrl}/api/queue/v1/task/${taskId}/artifacts/public%2Fbuild%2Fmozharness.tar.gz`,
      { redirect: 'manual' },
    );
    assert.equal(after.status, 303);
  });
});
