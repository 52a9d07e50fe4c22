// End to end: the worker claims archive tasks from the embedded services over real HTTP, fetches
// from a real `hg serve`, stores in a real s3rver, and resolves each task completed, failed or
// exception, with the reason a release engineer would look for.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buildArchive } from '../src/archive/index.js';
import { SAMPLE_SUBDIR } from './helpers/repos.js';
import { assertUpstream } from './helpers/upstream.js';
import { startWorkerEnv, type WorkerEnv } from './helpers/worker-env.js';
import { waitFor } from './helpers/wait.js';
import { runWorker } from '../src/worker/index.js';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import fs from 'node:fs';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('worker end to end (embedded services, s3rver, hg serve)', function () {
  this.timeout(120_000);
  let env: WorkerEnv;
  let expected: {
    sha256: string;
    size: number;
    treeDigest: string;
    zip?: { sha256: string; size: number };
  }[];

  before(async () => {
    env = await startWorkerEnv();
    // What `mozharness-archive build` gives for the same inputs, from the local repository.
    expected = [];
    for (const revision of env.repo.revisions) {
      expected.push(
        await buildArchive({
          source: { kind: 'hg', path: env.repo.path },
          revision,
          subdir: SAMPLE_SUBDIR,
        }),
      );
    }
  });
  after(async () => {
    await env?.close();
  });

  async function artifact(taskId: string, name: string, runId?: number) {
    const base = `${env.embedded.rootUrl}/api/queue/v1/task/${taskId}`;
    const url =
      runId === undefined
        ? `${base}/artifacts/${encodeURIComponent(name)}`
        : `${base}/runs/${runId}/artifacts/${encodeURIComponent(name)}`;
    const res = await fetch(url, { redirect: 'manual' });
    const body = await res.text();
    return { status: res.status, location: res.headers.get('location'), body };
  }

  async function follow(taskId: string, name: string, runId?: number): Promise<Buffer> {
    const a = await artifact(taskId, name, runId);
    assert.equal(a.status, 303, `${name}: ${a.body}`);
    assertUpstream('/schemas/queue/v1/get-artifact-response.json', JSON.parse(a.body), name);
    let location = a.location!;
    // a link artifact redirects to the artifact it names
    for (let i = 0; i < 3 && location.startsWith(env.embedded.rootUrl); i++) {
      const r = await fetch(location, { redirect: 'manual' });
      assert.equal(r.status, 303);
      location = r.headers.get('location')!;
    }
    const res = await fetch(location);
    assert.equal(res.status, 200, `GET ${location}`);
    return Buffer.from(await res.arrayBuffer());
  }

  async function taskLog(taskId: string, runId?: number): Promise<string> {
    return (await follow(taskId, 'public/logs/live_backing.log', runId)).toString('utf8');
  }

  async function indexed(namespace: string): Promise<string | undefined> {
    try {
      const r = await env.index.findTask(namespace);
      assertUpstream('/schemas/index/v1/indexed-task-response.json', r, 'findTask');
      return r.taskId;
    } catch (e: any) {
      if (e.statusCode === 404) return undefined;
      throw e;
    }
  }

  const routesFor = (q: string) => [
    `index.project.mozharness.test.${q}.revision.r0`,
    `index.project.mozharness.test.${q}.latest`,
  ];

  it('completes: artifacts 303 to the S3 object built for the same inputs; routes and extra index entries resolve; a second task reuses the object', async () => {
    const q = 'complete';
    const payload = {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
      treeDigest: expected[0]!.treeDigest,
      index: { namespaces: [`project.mozharness.test.${q}.extra.${expected[0]!.sha256}`], rank: 5 },
    };
    const taskId = await env.createTask(q, payload, {
      routes: routesFor(q),
      scopes: [`index:insert-task:project.mozharness.test.${q}.*`],
    });
    const summary = await env.runOnce(q);
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    const status = await env.root.status(taskId);
    assertUpstream('/schemas/queue/v1/task-status-response.json', status);
    assert.equal(status.status.state, 'completed');

    const bytes = await follow(taskId, 'public/build/mozharness.tar.gz');
    assert.equal(sha256(bytes), expected[0]!.sha256);
    assert.equal(bytes.length, expected[0]!.size);
    const meta: any = JSON.parse((await follow(taskId, 'public/build/mozharness.json')).toString());
    const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
    const validate = ajv.compile(
      JSON.parse(fs.readFileSync('schemas/archive-metadata.json', 'utf8')),
    );
    const valid: boolean = validate(meta);
    assert.ok(valid, JSON.stringify(validate.errors));
    assert.equal(meta.sha256, expected[0]!.sha256);
    assert.equal(meta.treeDigest, expected[0]!.treeDigest);
    assert.equal(meta.revision, env.repo.revisions[0]);
    assert.equal(meta.repository, env.hg.url);
    // the zip of the same tree: its own artifact and content-addressed object, named in the metadata
    const zip = await follow(taskId, 'public/build/mozharness.zip');
    assert.deepEqual(meta.zip, expected[0]!.zip);
    assert.equal(sha256(zip), expected[0]!.zip!.sha256);
    assert.equal(zip.length, expected[0]!.zip!.size);
    assert.ok(
      (await env.s3.listKeys()).includes(`mozharness/sha256/${expected[0]!.zip!.sha256}.zip`),
    );
    const extra = await env.index.findTask(payload.index.namespaces[0]!);
    assert.deepEqual((extra.data as any).zip, expected[0]!.zip);

    const listed = await env.root.listArtifacts(taskId, 0);
    assertUpstream('/schemas/queue/v1/list-artifacts-response.json', listed);
    const names = listed.artifacts.map((a: any) => a.name).sort();
    assert.deepEqual(names, [
      'public/build/mozharness.json',
      'public/build/mozharness.tar.gz',
      'public/build/mozharness.zip',
      'public/logs/live.log',
      'public/logs/live_backing.log',
    ]);
    const task = await env.root.task(taskId);
    for (const a of listed.artifacts) {
      assert.ok(Date.parse(a.expires) <= Date.parse(task.expires!), `${a.name} outlives the task`);
    }

    // the task log: timestamps, every step; live.log links to it
    const log = await taskLog(taskId);
    for (const step of [
      'task-start',
      'payload',
      'build-done',
      'tree-digest-ok',
      'upload-done',
      'verified',
      'indexed',
      'resolving',
    ]) {
      assert.match(log, new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\dT[^\\]]+\\] \\w+ +${step}`, 'm'), step);
    }
    assert.equal((await follow(taskId, 'public/logs/live.log')).toString('utf8'), log);
    const logKeys = await env.s3.listKeys();
    assert.ok(logKeys.includes(`mozharness/logs/${taskId}/0/live_backing.log`), logKeys.join(' '));

    // index: routes (on completion) and the extra entry (task credentials)
    for (const route of routesFor(q))
      assert.equal(await indexed(route.slice('index.'.length)), taskId);
    assert.equal(await indexed(payload.index.namespaces[0]!), taskId);
    const fromIndex = await fetch(
      `${env.embedded.rootUrl}/api/index/v1/task/${routesFor(q)[1]!.slice(6)}/artifacts/${encodeURIComponent('public/build/mozharness.tar.gz')}`,
      { redirect: 'manual' },
    );
    assert.equal(fromIndex.status, 303);

    // a second task for the same tree reuses the stored object: no second archive PUT
    const archiveKey = `mozharness/sha256/${expected[0]!.sha256}.tar.gz`;
    const putsBefore = env.s3.requests.filter((r) =>
      r.startsWith(`PUT /${env.s3.bucket}/${archiveKey}`),
    ).length;
    assert.ok(putsBefore >= 1);
    const second = await env.createTask(q, payload, { routes: routesFor(q), scopes: task.scopes });
    const again = await env.runOnce(q);
    assert.equal(again.completed, 1);
    assert.equal(again.results[0]!.archive!.reused, true);
    assert.equal(again.results[0]!.archive!.key, archiveKey);
    const putsAfter = env.s3.requests.filter((r) =>
      r.startsWith(`PUT /${env.s3.bucket}/${archiveKey}`),
    ).length;
    assert.equal(putsAfter, putsBefore);
    assert.equal(
      sha256(await follow(second, 'public/build/mozharness.tar.gz')),
      expected[0]!.sha256,
    );
    assert.equal(await indexed(routesFor(q)[1]!.slice(6)), second);
  });

  async function assertNothingIndexed(q: string) {
    for (const route of routesFor(q)) assert.equal(await indexed(route.slice(6)), undefined, route);
  }

  it('malformed payload: exception/malformed-payload, an error artifact and the log name the field', async () => {
    const q = 'malformed';
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision: 'abc123', colour: 'red' },
      { routes: routesFor(q) },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.exception, 1);
    const status = (await env.root.status(taskId)).status;
    assert.equal(status.state, 'exception');
    assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
    const err = await artifact(taskId, 'public/errors/malformed-payload');
    assert.equal(err.status, 424);
    assert.match(err.body, /payload\.revision must be the full 40-hex revision/);
    assert.match(err.body, /payload\.colour is not a known field/);
    const log = await taskLog(taskId);
    assert.match(log, /malformed-payload .*payload\.revision must be the full 40-hex revision/);
    await assertNothingIndexed(q);
  });

  it('a repository outside the allow-list is a malformed payload', async () => {
    const q = 'not-allowed';
    const taskId = await env.createTask(q, {
      repository: 'http://127.0.0.1:9/elsewhere',
      revision: env.repo.revisions[0],
    });
    await env.runOnce(q);
    const status = (await env.root.status(taskId)).status;
    assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
    assert.match(
      (await artifact(taskId, 'public/errors/malformed-payload')).body,
      /not on this worker's allow-list/,
    );
  });

  it('unknown revision (404): failed, no retry, the log names repository, revision and subdir', async () => {
    const q = 'unknown-rev';
    const revision = 'f'.repeat(40);
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision },
      { routes: routesFor(q), retries: 3 },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.failed, 1, JSON.stringify(summary.results));
    const status = (await env.root.status(taskId)).status;
    assert.equal(status.state, 'failed');
    assert.equal(status.runs.length, 1);
    const log = await taskLog(taskId);
    assert.ok(
      log.includes(revision) && log.includes(env.hg.url) && log.includes(SAMPLE_SUBDIR),
      log,
    );
    await assertNothingIndexed(q);
  });

  it('tree digest mismatch: failed, the message shows both digests, nothing uploaded', async () => {
    const q = 'digest';
    const wrong = '0'.repeat(64);
    const keysBefore = await env.s3.listKeys();
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision: env.repo.revisions[1], treeDigest: wrong },
      { routes: routesFor(q) },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.failed, 1);
    const r = summary.results[0]!.resolution;
    assert.equal(r.state, 'failed');
    assert.ok(
      r.state === 'failed' &&
        r.message.includes(wrong) &&
        r.message.includes(expected[1]!.treeDigest),
    );
    const log = await taskLog(taskId);
    assert.ok(log.includes(wrong) && log.includes(expected[1]!.treeDigest));
    const keysAfter = (await env.s3.listKeys()).filter((k) => !k.includes('/logs/'));
    assert.deepEqual(
      keysAfter,
      keysBefore.filter((k) => !k.includes('/logs/')),
    );
    await assertNothingIndexed(q);
  });

  it('archive sha256 differs from the prediction: failed naming both digests, no S3 object, no index route, not completed', async () => {
    const q = 'sha256-mismatch';
    const predicted = 'e'.repeat(64);
    const keysBefore = (await env.s3.listKeys()).filter((k) => !k.includes('/logs/'));
    const taskId = await env.createTask(
      q,
      {
        repository: env.hg.url,
        revision: env.repo.revisions[1],
        treeDigest: expected[1]!.treeDigest,
        sha256: predicted,
        index: { namespaces: [`project.mozharness.test.${q}.extra`] },
      },
      { routes: routesFor(q), scopes: [`index:insert-task:project.mozharness.test.${q}.*`] },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.failed, 1, JSON.stringify(summary.results));
    const r = summary.results[0]!.resolution;
    assert.ok(
      r.state === 'failed' &&
        r.message.includes(predicted) &&
        r.message.includes(expected[1]!.sha256),
      JSON.stringify(r),
    );
    assert.equal((await env.root.status(taskId)).status.state, 'failed');
    assert.match(
      await taskLog(taskId),
      new RegExp(`predicted ${predicted} but .*${expected[1]!.sha256}`),
    );
    const keysAfter = (await env.s3.listKeys()).filter((k) => !k.includes('/logs/'));
    assert.deepEqual(keysAfter, keysBefore, 'an archive was stored');
    const names = (await env.root.listArtifacts(taskId, 0)).artifacts.map((a: any) => a.name);
    assert.ok(!names.some((n: string) => n.startsWith('public/build/')), names.join(' '));
    await assertNothingIndexed(q);
    assert.equal(await indexed(`project.mozharness.test.${q}.extra`), undefined);

    // a wrong zip prediction fails the same way
    const zipTask = await env.createTask(q, {
      repository: env.hg.url,
      revision: env.repo.revisions[1],
      sha256: expected[1]!.sha256,
      zipSha256: predicted,
    });
    const zipRun = await env.runOnce(q);
    assert.equal(zipRun.failed, 1, JSON.stringify(zipRun.results));
    const zr = zipRun.results[0]!.resolution;
    assert.ok(
      zr.state === 'failed' &&
        zr.message.includes(predicted) &&
        zr.message.includes(expected[1]!.zip!.sha256),
      JSON.stringify(zr),
    );
    assert.equal((await env.root.status(zipTask)).status.state, 'failed');
    assert.deepEqual(
      (await env.s3.listKeys()).filter((k) => !k.includes('/logs/')),
      keysBefore,
      'an archive was stored',
    );

    // the right prediction passes
    await env.createTask(q, {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
      sha256: expected[0]!.sha256,
      zipSha256: expected[0]!.zip!.sha256,
    });
    const ok = await env.runOnce(q);
    assert.equal(ok.completed, 1, JSON.stringify(ok.results));
  });

  it('failing test: failed, output in the log, nothing uploaded or indexed; the test sees no credentials', async () => {
    const q = 'test-fails';
    const taskId = await env.createTask(
      q,
      {
        repository: env.hg.url,
        revision: env.repo.revisions[2],
        test: {
          command: ['sh', '-c', 'ls scripts; env | sort; echo "harness broken" >&2; exit 7'],
          env: { MOZ_TEST: 'yes' },
          maxRunTime: 60,
        },
      },
      { routes: routesFor(q) },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.failed, 1);
    const log = await taskLog(taskId);
    assert.match(log, /OUT +desktop_unittest\.py/);
    assert.match(log, /OUT +MOZ_TEST=yes/);
    assert.match(log, /ERR +harness broken/);
    assert.match(log, /exited with status 7/);
    assert.doesNotMatch(log, /OUT +(TASKCLUSTER_|AWS_)/);
    const keys = await env.s3.listKeys();
    assert.ok(!keys.some((k) => k.includes(expected[2]!.sha256)), 'nothing uploaded');
    await assertNothingIndexed(q);
  });

  it('passing test: runs in the unpacked tree, then uploads', async () => {
    const q = 'test-passes';
    const taskId = await env.createTask(q, {
      repository: env.hg.url,
      revision: env.repo.revisions[2],
      test: { command: ['sh', '-c', 'test -x scripts/desktop_unittest.py && echo tree-ok'] },
    });
    const summary = await env.runOnce(q);
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    assert.match(await taskLog(taskId), /OUT +tree-ok/);
    assert.equal(
      sha256(await follow(taskId, 'public/build/mozharness.tar.gz')),
      expected[2]!.sha256,
    );
  });

  it('hg unreachable after retries: exception/intermittent-task (the queue retries), nothing indexed', async () => {
    const q = 'hg-down';
    const closed = 'http://127.0.0.1:1/mozilla-central';
    const taskId = await env.createTask(
      q,
      { repository: closed, revision: env.repo.revisions[0] },
      { routes: routesFor(q), retries: 1 },
    );
    const summary = await env.runOnce(q, {
      allowRepos: [closed],
      limits: { retries: 1, connectTimeoutMs: 500, idleTimeoutMs: 1000, maxRetryTimeMs: 1000 },
    });
    assert.equal(summary.exception, 1, JSON.stringify(summary.results));
    const status = (await env.root.status(taskId)).status;
    assert.equal(status.runs[0]!.reasonResolved, 'intermittent-task');
    assert.equal(status.runs[1]?.reasonCreated, 'task-retry');
    await env.root.cancelTask(taskId);
    // the task log gives the reason of each retry
    assert.match(await taskLog(taskId, 0), /WARN +http\.retry .*reason=/);
    await assertNothingIndexed(q);
  });

  it('S3 failing mid-upload: exception/intermittent-task, no object visible, nothing indexed', async () => {
    const q = 's3-fails';
    const remove = env.s3.fail({
      method: 'PUT',
      match: /\/sha256\/[0-9a-f]{64}\.tar\.gz/,
      status: 0,
    });
    try {
      const taskId = await env.createTask(
        q,
        { repository: env.hg.url, revision: env.repo.revisions[1] },
        { routes: routesFor(q) },
      );
      const summary = await env.runOnce(q);
      assert.equal(summary.exception, 1, JSON.stringify(summary.results));
      const status = (await env.root.status(taskId)).status;
      assert.equal(status.runs[0]!.reasonResolved, 'intermittent-task');
      assert.ok(!(await env.s3.listKeys()).some((k) => k.includes(expected[1]!.sha256)));
      assert.deepEqual(await env.s3.pendingMultipartUploads(), []);
      assert.match(await taskLog(taskId), /resolving .*intermittent-task/);
      await assertNothingIndexed(q);
    } finally {
      remove();
    }
  });

  it('reclaims with the task credentials; a refused reclaim (409) abandons the run and publishes nothing', async () => {
    const q = 'claim-lost';
    const taskId = await env.createTask(q, {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
      test: { command: ['sh', '-c', 'sleep 3'] },
    });
    const done = env.runOnce(q, { reclaimIntervalSeconds: 0.3 });
    // wait until the worker has reclaimed at least once, then cancel the task under it
    await waitFor('a reclaim of the task', () =>
      env.logLines.some((l) => l.includes('"reclaimed"') && l.includes(taskId)),
    );
    await env.root.cancelTask(taskId);
    const summary = await done;
    assert.equal(summary.abandoned, 1, JSON.stringify(summary.results));
    const listed = await env.root.listArtifacts(taskId, 0);
    assert.deepEqual(listed.artifacts, []);
    assert.equal((await env.root.status(taskId)).status.runs[0]!.reasonResolved, 'canceled');
  });

  it('maxRunTime: a run that takes too long fails', async () => {
    const q = 'max-run-time';
    const taskId = await env.createTask(q, {
      repository: env.hg.url,
      revision: env.repo.revisions[0],
      maxRunTime: 2,
      test: { command: ['sleep', '30'] },
    });
    const summary = await env.runOnce(q);
    assert.equal(summary.failed, 1, JSON.stringify(summary.results));
    assert.match(await taskLog(taskId), /exceeded (its maxRunTime of 2 s|its time limit)/);
  });

  it('an extra index entry the task has no scope for fails the task, naming the scope', async () => {
    const q = 'index-refused';
    const taskId = await env.createTask(
      q,
      {
        repository: env.hg.url,
        revision: env.repo.revisions[0],
        index: { namespaces: ['project.mozharness.elsewhere.latest'] },
      },
      { routes: routesFor(q) },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.failed, 1, JSON.stringify(summary.results));
    assert.match(await taskLog(taskId), /index:insert-task:project\.mozharness\.elsewhere\.latest/);
    assert.equal(await indexed('project.mozharness.elsewhere.latest'), undefined);
    await assertNothingIndexed(q);
  });

  it('capacity 2: runs two tasks at once, then stops claiming when told', async () => {
    const q = 'capacity';
    const ids: string[] = [];
    for (const revision of env.repo.revisions) {
      ids.push(
        await env.createTask(q, {
          repository: env.hg.url,
          revision,
          test: { command: ['sleep', '1'] },
        }),
      );
    }
    const stop = new AbortController();
    let resolved = 0;
    const summary = await runWorker(env.config(q, { capacity: 2 }), {
      ...env.deps(),
      signal: stop.signal,
      onTaskResolved: () => {
        if (++resolved === ids.length) stop.abort();
      },
    });
    assert.equal(summary.completed, 3, JSON.stringify(summary.results));
    const spans = summary.results.map((r) => [Date.parse(r.startedAt), Date.parse(r.finishedAt!)]);
    const overlapping = spans.some(([s1, e1], i) =>
      spans.some(([s2, e2], j) => i !== j && s1! < e2! && s2! < e1!),
    );
    assert.ok(overlapping, 'two runs overlapped');
    for (const id of ids) assert.equal((await env.root.status(id)).status.state, 'completed');
  });

  it('never writes a credential to the worker log or a task log', async () => {
    const secrets = [
      env.workerCredentials.accessToken,
      env.embedded.credentials.accessToken,
      ...env.taskCredentials.map((c) => c.accessToken),
    ];
    assert.ok(env.taskCredentials.length >= 5);
    const all = env.logLines.join('\n');
    for (const s of secrets) assert.ok(!all.includes(s), 'a credential reached the worker log');
    for (const key of await env.s3.listKeys()) {
      if (!key.includes('/logs/')) continue;
      const text = (await (await fetch(`${env.s3.publicBaseUrl}/${key}`)).text()) as string;
      for (const s of secrets) assert.ok(!text.includes(s), `a credential reached ${key}`);
    }
  });
});
