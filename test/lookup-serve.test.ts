// The HTTP lookup endpoint against the embedded services, s3rver and hg serve: hits (302 + headers,
// JSON), short revisions, latest, digest; a miss → 202 → completed; concurrent misses share one
// task (also across a restart); 400s that say what is wrong; unknown revisions 404 at once and are
// not asked again; the legacy relengapi routes; caching; no unconfigured host; one log line per
// request.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { checkLookupConfig, type LookupConfig } from '../src/lookup/config.js';
import { createLookupService, onDemandTaskId, type LookupService } from '../src/lookup/serve.js';
import type { IndexLookup } from '../src/lookup/find.js';
import { createLogger } from '../src/util/log.js';
import { assertUpstream } from './helpers/upstream.js';
import { giveUp, waitFor } from './helpers/wait.js';
import {
  PROJECT,
  startLookupWorld,
  type BuiltArchive,
  type LookupWorld,
} from './lookup-fixture.js';

interface Res {
  status: number;
  headers: Headers;
  body: any;
}

async function get(base: string, p: string, headers: Record<string, string> = {}): Promise<Res> {
  const r = await fetch(base + p, { redirect: 'manual', headers });
  const text = await r.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: r.status, headers: r.headers, body };
}

describe('lookup: serve', function () {
  this.timeout(120_000);
  let w: LookupWorld;
  let a: BuiltArchive;
  let service: LookupService;
  let base: string;
  let config: LookupConfig;
  let now = Date.now();
  const lines: any[] = [];
  const counts = { findTask: 0, listNamespaces: 0 };
  let counting: IndexLookup;

  const makeService = (overrides: Partial<LookupConfig> = {}, stateDir = 'lookup-state') =>
    createLookupService(
      { ...config, ...overrides },
      {
        index: counting,
        queue: w.lookup.queue,
        createQueue: w.lookup.queue,
        rootUrl: w.emb.rootUrl,
        stateDir: path.join(w.tmp, stateDir),
        now: () => now,
        log: createLogger({ json: true, write: (l) => lines.push(JSON.parse(l)) }),
      },
    );

  before(async () => {
    w = await startLookupWorld(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    a = await w.archive(w.repo.revisions[0]!);
    counting = {
      findTask: (ns: string) => {
        counts.findTask++;
        return w.lookup.index.findTask(ns);
      },
      listNamespaces: (ns: string, q?: any) => {
        counts.listNamespaces++;
        return w.lookup.index.listNamespaces(ns, q);
      },
    };
    config = checkLookupConfig({
      allowHosts: [w.emb.s3!.endpoint],
      cache: { hitTtlSeconds: 60, missTtlSeconds: 5 },
      projects: {
        [PROJECT]: {
          repository: w.hg.url,
          legacyPath: 'mozilla-central',
          onDemand: { taskQueueId: w.emb.archiveTaskQueueId },
        },
        'no-builds': { repository: w.hg.url, legacyPath: 'releases/no-builds' },
      },
    });
    service = makeService();
    base = await service.listen(0);
  });
  after(async () => {
    await service?.close();
    await w?.close();
  });

  it('answers the heartbeat', async () => {
    const r = await get(base, '/__heartbeat__');
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'ok');
  });

  it('redirects a hit to the archive with sha256, size and task id headers', async () => {
    const r = await get(base, `/v1/${PROJECT}/revision/${a.revision}`);
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), a.url);
    assert.equal(r.headers.get('x-archive-sha256'), a.sha256);
    assert.equal(r.headers.get('x-archive-size'), String(a.size));
    assert.equal(r.headers.get('x-task-id'), a.taskId);
    // following the redirect gives exactly those bytes
    const bytes = Buffer.from(await (await fetch(r.headers.get('location')!)).arrayBuffer());
    assert.equal(bytes.length, a.size);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), a.sha256);
  });

  it('returns the metadata document with Accept: application/json or ?format=json', async () => {
    for (const [p, h] of [
      [`/v1/${PROJECT}/revision/${a.revision}`, { accept: 'application/json' }],
      [`/v1/${PROJECT}/revision/${a.revision}?format=json`, {}],
    ] as const) {
      const r = await get(base, p, h);
      assert.equal(r.status, 200);
      assert.equal(r.body.sha256, a.sha256);
      assert.equal(r.body.size, a.size);
      assert.equal(r.body.taskId, a.taskId);
      assert.equal(r.body.treeDigest, a.treeDigest);
      assert.equal(r.body.revision, a.revision);
      assert.equal(r.headers.get('x-archive-sha256'), a.sha256);
    }
  });

  it('takes a 12-hex short revision, latest and a tree digest', async () => {
    const short = await get(base, `/v1/${PROJECT}/revision/${a.revision.slice(0, 12)}`);
    assert.equal(short.status, 302);
    assert.equal(short.headers.get('x-task-id'), a.taskId);
    const latest = await get(base, `/v1/${PROJECT}/latest`);
    assert.equal(latest.status, 302);
    assert.equal(latest.headers.get('x-task-id'), a.taskId);
    const digest = await get(base, `/v1/digest/${a.treeDigest}?format=json`);
    assert.equal(digest.status, 200);
    assert.equal(digest.body.sha256, a.sha256);
    const none = await get(base, `/v1/digest/${'e'.repeat(64)}`);
    assert.equal(none.status, 404);
  });

  it('caches hits for the hit TTL and misses for the shorter miss TTL', async () => {
    const rev = a.revision;
    await get(base, `/v1/${PROJECT}/revision/${rev}`);
    const before = counts.findTask;
    for (let i = 0; i < 5; i++)
      assert.equal((await get(base, `/v1/${PROJECT}/revision/${rev}`)).status, 302);
    assert.equal(counts.findTask, before, 'hits come from the cache');
    now += 61_000;
    await get(base, `/v1/${PROJECT}/revision/${rev}`);
    assert.equal(counts.findTask, before + 1, 'looked up again after the hit TTL');

    const unindexed = w.repo.revisions[4]!;
    const m0 = counts.findTask;
    assert.equal((await get(base, `/v1/no-builds/revision/${unindexed}`)).status, 404);
    assert.equal((await get(base, `/v1/no-builds/revision/${unindexed}`)).status, 404);
    assert.equal(counts.findTask, m0 + 1, 'the miss is cached');
    now += 6_000;
    assert.equal((await get(base, `/v1/no-builds/revision/${unindexed}`)).status, 404);
    assert.equal(counts.findTask, m0 + 2, 'looked up again after the miss TTL');
  });

  it('builds a miss on demand: 202, pending, then completed, then a 302', async () => {
    const rev = w.repo.revisions[1]!;
    const r = await get(base, `/v1/${PROJECT}/revision/${rev.slice(0, 12)}`);
    assert.equal(r.status, 202);
    const taskId = r.headers.get('x-task-id')!;
    assert.equal(r.headers.get('location'), `/v1/status/${taskId}`);
    assert.equal(r.body.revision, rev, 'the short revision was resolved on the repository');
    const task = await w.root.queue.task(taskId);
    assertUpstream('/schemas/queue/v1/task.json', task, 'on-demand archive task');
    assert.equal(task.payload.revision, rev);
    assert.equal(task.payload.repository, w.hg.url);
    assert.ok(task.routes!.includes(`index.mozharness.v1.${PROJECT}.revision.${rev}.mozharness`));

    const pending = await get(base, `/v1/status/${taskId}`);
    assert.equal(pending.status, 200);
    assert.equal(pending.body.state, 'pending');

    const built = await w.workOne();
    assert.equal(built?.taskId, taskId);
    const done = await get(base, `/v1/status/${taskId}`);
    assert.equal(done.body.state, 'completed');
    assert.equal(done.body.sha256, built!.sha256);
    assert.equal(done.body.url, built!.url);

    const hit = await get(base, `/v1/${PROJECT}/revision/${rev}`);
    assert.equal(hit.status, 302, 'indexed on completion; the miss cache was dropped');
    assert.equal(hit.headers.get('x-task-id'), taskId);
  });

  it('reports a failed on-demand build with its reason', async () => {
    const rev = w.repo.revisions[3]!;
    const r = await get(base, `/v1/${PROJECT}/revision/${rev}`);
    assert.equal(r.status, 202);
    const taskId = r.headers.get('x-task-id')!;
    const claim = await w.root.queue.claimWork(w.emb.archiveTaskQueueId, {
      workerGroup: 'g',
      workerId: 'w',
      tasks: 1,
    });
    assert.equal(claim.tasks[0]?.status.taskId, taskId);
    await w.root.queue.reportFailed(taskId, claim.tasks[0]!.runId);
    const s = await get(base, `/v1/status/${taskId}`);
    assert.equal(s.body.state, 'failed');
    assert.match(s.body.reason, /failed/);
    // asked again soon: the same (failed) task, no new one
    const soon = await get(base, `/v1/${PROJECT}/revision/${rev}`);
    assert.equal(soon.status, 202);
    assert.equal(soon.headers.get('x-task-id'), taskId);
    assert.equal(soon.body.state, 'failed');
    // asked again after retryFailedAfterSeconds: one new task replaces it, then builds
    now = Math.max(now, Date.now()) + 901_000;
    const later = await Promise.all(
      [1, 2, 3].map(() => get(base, `/v1/${PROJECT}/revision/${rev}`)),
    );
    const retried = new Set(later.map((x) => x.headers.get('x-task-id')));
    assert.equal(retried.size, 1, JSON.stringify(later.map((x) => [x.status, x.body])));
    const [retryId] = [...retried];
    assert.notEqual(retryId, taskId);
    assert.equal(later[0]!.body.state, 'pending');
    const built = await w.workOne();
    assert.equal(built?.taskId, retryId);
    assert.equal((await get(base, `/v1/status/${retryId}`)).body.state, 'completed');
  });

  it('gives concurrent misses one task, also across a restart', async () => {
    const rev = w.repo.revisions[2]!;
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => get(base, `/v1/${PROJECT}/revision/${rev}`)),
    );
    const ids = new Set(answers.map((x) => x.headers.get('x-task-id')));
    assert.deepEqual(
      answers.map((x) => x.status),
      Array(16).fill(202),
    );
    assert.equal(ids.size, 1);
    const [taskId] = [...ids];
    // a second instance on the same state directory (a restart) reuses it
    const again = makeService();
    const base2 = await again.listen(0);
    try {
      const r = await get(base2, `/v1/${PROJECT}/revision/${rev}`);
      assert.equal(r.status, 202);
      assert.equal(r.headers.get('x-task-id'), taskId);
    } finally {
      await again.close();
    }
    // exactly one task reached the queue
    const first = await w.workOne({ complete: true });
    assert.equal(first?.taskId, taskId);
    assert.equal(await w.workOne(), undefined);
  });

  it('gives concurrent misses of one key one index lookup, and counts every answer', async () => {
    // a queue that counts what the lookups ask it
    const q = w.lookup.queue;
    const asked = { queue: 0 };
    const queue: typeof q = {
      ...q,
      task: q.task.bind(q),
      status: (taskId: string) => (asked.queue++, q.status(taskId)),
      getLatestArtifact: (taskId: string, name: string) => (
        asked.queue++,
        q.getLatestArtifact(taskId, name)
      ),
      // URLs of this client's methods are the wrapped client's
      buildUrl: (method, ...args) =>
        q.buildUrl(method === queue.getLatestArtifact ? q.getLatestArtifact : method, ...args),
    };
    // an index that answers once the gate opens: the test opens it when every request of a burst
    // has reached the service, so they all wait on the same lookup
    let gate: Promise<void> = Promise.resolve();
    const gated: IndexLookup = {
      findTask: async (ns) => (await gate, counting.findTask(ns)),
      listNamespaces: async (ns, query) => (await gate, counting.listNamespaces(ns, query)),
    };
    const fresh = (dir: string) =>
      createLookupService(config, {
        index: gated,
        queue,
        rootUrl: w.emb.rootUrl,
        stateDir: path.join(w.tmp, dir),
        now: () => now,
      });
    const asks = () => counts.findTask + counts.listNamespaces + asked.queue;
    const unindexed = w.repo.revisions[4]!;
    const paths = [`/v1/${PROJECT}/revision/${a.revision}`, `/v1/no-builds/revision/${unindexed}`];
    // what one request costs, on a service with empty caches
    const single = fresh('coalesce-single');
    const singleBase = await single.listen(0);
    const cost: number[] = [];
    try {
      for (const p of paths) {
        const before = asks();
        await get(singleBase, p);
        cost.push(asks() - before);
      }
    } finally {
      await single.close();
    }
    assert.ok(cost[0]! > 0 && cost[1]! > 0, `a lookup asks the services (${cost})`);
    // 24 concurrent requests of each key, redirects and JSON, on another empty service
    const many = fresh('coalesce-many');
    let arrived = 0;
    let release = () => {};
    const server = http.createServer((req, res) => {
      if (++arrived === 24) release();
      many.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const manyBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      for (const [i, p] of paths.entries()) {
        const before = asks();
        arrived = 0;
        gate = new Promise((resolve) => (release = resolve));
        const answers = await Promise.all(
          Array.from({ length: 24 }, (_, n) =>
            get(manyBase, p, n % 2 ? { accept: 'application/json' } : {}),
          ),
        );
        assert.equal(asks() - before, cost[i], `${p}: one lookup for 24 concurrent misses`);
        const want = i === 0 ? [302, 200] : [404, 404];
        assert.deepEqual(
          answers.map((r) => r.status),
          Array.from({ length: 24 }, (_, n) => want[n % 2]),
        );
      }
      const afterMisses = asks();
      for (let n = 0; n < 5; n++) assert.equal((await get(manyBase, paths[0]!)).status, 302);
      assert.equal(asks(), afterMisses, 'cached hits ask nothing');
      // every answer is counted once, in the counter and in the latency histogram
      const text = await many.metrics.registry.metrics();
      const sum = (re: RegExp) => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
      const revision = sum(/^mozharness_lookup_requests_total\{route="revision",[^}]*\} (\d+)$/gm);
      assert.equal(revision, 24 + 5);
      assert.equal(
        sum(
          /^mozharness_lookup_requests_total\{route="error",outcome="other",status="404"\} (\d+)$/gm,
        ),
        24,
      );
      assert.equal(
        sum(/^mozharness_lookup_request_seconds_count\{route="revision"\} (\d+)$/gm),
        revision,
      );
      const buckets = [
        ...text.matchAll(
          /^mozharness_lookup_request_seconds_bucket\{le="([^"]+)",route="revision"\} (\d+)$/gm,
        ),
      ].map((m) => Number(m[2]));
      assert.equal(buckets.length, 12);
      assert.equal(buckets.at(-1), revision, 'the +Inf bucket holds every answer');
      assert.ok(
        buckets.every((b, i) => i === 0 || b >= buckets[i - 1]!),
        'buckets are cumulative',
      );
      assert.match(text, /^mozharness_lookup_request_seconds_sum\{route="revision"\} [\d.e-]+$/m);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await many.close();
    }
  });

  it('answers 400 with the reason for a bad project, revision, digest or task id', async () => {
    const cases: Array<[string, RegExp]> = [
      [
        `/v1/nope/revision/${a.revision}`,
        /unknown project "nope"; configured projects: mozilla-central, no-builds/,
      ],
      [`/v1/${PROJECT}/revision/not-hex-at-all`, /must be hexadecimal/],
      [`/v1/${PROJECT}/revision/abc123`, /6 hex characters, need 12 to 40/],
      [`/v1/${PROJECT}/revision/${'a'.repeat(41)}`, /41 hex characters/],
      ['/v1/digest/1234', /64 hexadecimal/],
      ['/v1/status/not-a-task-id', /invalid task id/],
      [`/archiver/hgmo/unknown/repo/${a.revision}`, /unknown repository "unknown\/repo"/],
      [
        `/archiver/hgmo/mozilla-central/${a.revision}?subdir=browser`,
        /subdir "browser" is not archived/,
      ],
      [`/archiver/hgmo/mozilla-central/${a.revision}?suffix=zip`, /only tar.gz/],
    ];
    for (const [p, re] of cases) {
      const r = await get(base, p);
      assert.equal(r.status, 400, p);
      assert.match(r.body.error, re, p);
    }
    assert.equal((await get(base, '/nothing/here')).status, 404);
  });

  it('answers 404 at once for a revision the repository does not know, and does not ask again', async () => {
    const unknown = '0123456789ab'.repeat(3) + '0123';
    const asked = service.repositoryLookups[PROJECT] ?? 0;
    const hgBefore = w.hg.requests.length;
    const r = await get(base, `/v1/${PROJECT}/revision/${unknown}`);
    assert.equal(r.status, 404, JSON.stringify(r.body));
    assert.match(r.body.error, /revision 0123456789ab.* is not in http:\/\/127\.0\.0\.1/);
    assert.equal(service.repositoryLookups[PROJECT], asked + 1);
    now += 10_000; // past the miss TTL: the index is asked again, the repository is not
    const again = await get(base, `/v1/${PROJECT}/revision/${unknown}`);
    assert.equal(again.status, 404);
    assert.equal(service.repositoryLookups[PROJECT], asked + 1);
    // hg serve's access log lands a moment after its answer: wait for the one request to show
    const json = await waitFor('the repository request in the hg log', () => {
      const seen = w.hg.requests.slice(hgBefore).filter((p) => p.includes(unknown.slice(0, 12)));
      return seen.length > 0 && seen;
    });
    assert.equal(json.length, 1, `one request to the repository, got ${json.join(', ')}`);
  });

  it('serves the legacy relengapi archiver routes', async () => {
    const hit = await get(
      base,
      `/archiver/hgmo/mozilla-central/${a.revision}?subdir=testing/mozharness&suffix=tar.gz`,
    );
    assert.equal(hit.status, 302);
    assert.equal(hit.headers.get('location'), a.url);

    // an unindexed revision: 202 to /archiver/status/<id>, then SUCCESS with s3_urls
    const fresh = w.repo.revisions[4]!;
    const r = await get(
      base,
      `/archiver/hgmo/mozilla-central/${fresh.slice(0, 12)}?subdir=testing/mozharness&suffix=tar.gz`,
    );
    assert.equal(r.status, 202);
    const loc = r.headers.get('location')!;
    assert.match(loc, /^\/archiver\/status\/[A-Za-z0-9_-]{22}$/);
    const pending = await get(base, loc);
    assert.equal(pending.body.state, 'PENDING');
    assert.deepEqual(pending.body.s3_urls, {});
    assert.equal(pending.body.src_url, `${w.hg.url}/archive/${fresh}.tar.gz/testing/mozharness`);
    const built = await w.workOne();
    const done = await get(base, loc);
    assert.equal(done.body.state, 'SUCCESS');
    assert.deepEqual(done.body.s3_urls, { 'us-west-2': built!.url });
    assert.match(done.body.status, /completed/);
  });

  it('never contacts a host that is not configured', async () => {
    const strict = makeService({ allowHosts: [] }, 'strict-state');
    const b2 = await strict.listen(0);
    try {
      const r = await get(b2, `/v1/${PROJECT}/revision/${a.revision}`);
      assert.equal(r.status, 502);
      assert.match(r.body.error, /refusing to contact 127\.0\.0\.1:\d+: not an allowed host/);
    } finally {
      await strict.close();
    }
  });

  it('logs every answer but cached hits, of which it logs one in requestLogSampleRate', async () => {
    const sampled = makeService({ requestLogSampleRate: 4 }, 'sampled-state');
    const b2 = await sampled.listen(0);
    try {
      const before = lines.filter((l) => l.event === 'lookup.request').length;
      await get(b2, `/v1/${PROJECT}/revision/${a.revision}`); // a miss: logged
      for (let i = 0; i < 8; i++) await get(b2, `/v1/${PROJECT}/revision/${a.revision}`); // hits
      await get(b2, '/v1/nope/latest');
      await get(b2, '/__heartbeat__');
      const mine = lines.filter((l) => l.event === 'lookup.request').slice(before);
      assert.deepEqual(
        mine.map((l) => [l.method, l.path, l.status, l.sampled ?? null]),
        [
          ['GET', `/v1/${PROJECT}/revision/${a.revision}`, 302, null],
          ['GET', `/v1/${PROJECT}/revision/${a.revision}`, 302, '1/4'],
          ['GET', `/v1/${PROJECT}/revision/${a.revision}`, 302, '1/4'],
          ['GET', '/v1/nope/latest', 400, null],
          ['GET', '/__heartbeat__', 200, null],
        ],
      );
      assert.equal(mine[0].taskId, a.taskId);
      assert.equal(mine[1].cache, 'hit');
      assert.equal(typeof mine[0].ms, 'number');
    } finally {
      await sampled.close();
    }
  });

  it('refuses Mercurial pseudo-revisions without asking the repository or creating a task', async () => {
    const asked = { ...service.repositoryLookups };
    for (const rev of ['0'.repeat(40), 'f'.repeat(40), '0'.repeat(12), 'F'.repeat(12)]) {
      const r = await get(base, `/v1/${PROJECT}/revision/${rev}`);
      assert.equal(r.status, 400, rev);
      assert.match(r.body.error, /null revision|working-directory pseudo-revision/);
      const legacy = await get(base, `/archiver/hgmo/mozilla-central/${rev}`);
      assert.equal(legacy.status, 400, rev);
    }
    assert.deepEqual(service.repositoryLookups, asked);
  });

  it('looks up revisions it does not know at a bounded rate per project (429 + Retry-After past it)', async () => {
    const limited = makeService(
      {
        projects: {
          [PROJECT]: {
            ...config.projects[PROJECT]!,
            onDemand: { ...config.projects[PROJECT]!.onDemand!, repositoryLookupsPerMinute: 2 },
          },
        },
      },
      'limited-state',
    );
    const b2 = await limited.listen(0);
    try {
      const unknown = (i: number) => createHash('sha1').update(`nobody pushed ${i}`).digest('hex');
      assert.equal((await get(b2, `/v1/${PROJECT}/revision/${unknown(1)}`)).status, 404);
      assert.equal((await get(b2, `/v1/${PROJECT}/revision/${unknown(2)}`)).status, 404);
      const third = await get(b2, `/v1/${PROJECT}/revision/${unknown(3)}`);
      assert.equal(third.status, 429);
      assert.match(third.body.error, /too many lookups/);
      assert.ok(Number(third.headers.get('retry-after')) >= 1);
      assert.equal(limited.repositoryLookups[PROJECT], 2);
      // a minute later the bucket has refilled
      now += 60_000;
      assert.equal((await get(b2, `/v1/${PROJECT}/revision/${unknown(3)}`)).status, 404);
      assert.equal(limited.repositoryLookups[PROJECT], 3);
      // known-unknown revisions are answered from memory, without a token
      assert.equal((await get(b2, `/v1/${PROJECT}/revision/${unknown(1)}`)).status, 404);
      assert.equal(limited.repositoryLookups[PROJECT], 3);
    } finally {
      await limited.close();
    }
  });

  it('three replicas on their own state directories create one task per revision, with the id each derives', async () => {
    const rev = w.repo.revisions[5]!;
    const replicas = [0, 1, 2].map((i) => makeService({}, `replica-${i}`));
    const urls = await Promise.all(replicas.map((r) => r.listen(0)));
    try {
      const answers = await Promise.all(
        Array.from({ length: 9 }, (_, i) => get(urls[i % 3]!, `/v1/${PROJECT}/revision/${rev}`)),
      );
      assert.deepEqual(
        answers.map((x) => x.status),
        Array(9).fill(202),
      );
      const expected = onDemandTaskId(PROJECT, config.projects[PROJECT]!, rev);
      assert.deepEqual([...new Set(answers.map((x) => x.headers.get('x-task-id')))], [expected]);
      const created = await Promise.all(
        replicas.map(async (r) =>
          (await r.metrics.builds.get()).values.reduce((n, v) => n + v.value, 0),
        ),
      );
      assert.equal(
        created.reduce((n, c) => n + c, 0),
        1,
        `one replica created the task, the others joined it: ${created}`,
      );
      const built = await w.workOne({ complete: true });
      assert.equal(built?.taskId, expected);
      assert.equal(await w.workOne(), undefined);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });

  it('keeps a trailing slash of the repository URL as configured', async () => {
    const url = `${w.hg.url}/`;
    const slash = makeService(
      { projects: { [PROJECT]: { ...config.projects[PROJECT]!, repository: url } } },
      'slash-state',
    );
    const b2 = await slash.listen(0);
    try {
      const rev = w.repo.revisions[6]!;
      const r = await get(b2, `/archiver/hgmo/mozilla-central/${rev}`);
      assert.equal(r.status, 202);
      const taskId = r.headers.get('x-task-id')!;
      const task = await w.lookup.queue.task(taskId);
      assert.equal(task.payload.repository, url);
      assert.equal(r.body.src_url, `${w.hg.url}/archive/${rev}.tar.gz/testing/mozharness`);
      assert.equal((await w.workOne({ complete: true }))?.taskId, taskId);
    } finally {
      await slash.close();
    }
  });

  it('answers /__version__ (Dockerflow) and serves Prometheus metrics on their own port', async () => {
    const v = await get(base, '/__version__');
    assert.equal(v.status, 200);
    for (const k of ['source', 'version', 'commit', 'build'])
      assert.equal(typeof v.body[k], 'string', k);
    const m = await service.metrics.listen(0);
    try {
      const text = await (await fetch(m.url)).text();
      assert.match(
        text,
        /^mozharness_lookup_requests_total\{route="revision",outcome="hit",status="302"\} \d+$/m,
      );
      assert.match(
        text,
        /^mozharness_lookup_requests_total\{route="revision",outcome="miss",status="302"\} \d+$/m,
      );
      assert.match(text, /^mozharness_lookup_request_seconds_count\{route="revision"\} \d+$/m);
      assert.match(
        text,
        /^mozharness_lookup_on_demand_builds_total\{project="mozilla-central"\} [1-9]/m,
      );
      assert.match(
        text,
        /^mozharness_lookup_repository_lookups_total\{project="mozilla-central"\} [1-9]/m,
      );
      assert.equal((await fetch(m.url.replace('/metrics', '/other'))).status, 404);
    } finally {
      await m.close();
    }
  });

  it('CLI serve: --config YAML, --json address, answers, exits 0 on SIGTERM', async () => {
    const cfg = path.join(w.tmp, 'lookup.yml');
    fs.writeFileSync(
      cfg,
      [
        `rootUrl: ${w.emb.rootUrl}`,
        `allowHosts: ["${w.emb.s3!.endpoint}"]`,
        'projects:',
        `  ${PROJECT}:`,
        `    repository: ${w.hg.url}`,
        '    legacyPath: mozilla-central',
        '',
      ].join('\n'),
    );
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'serve',
        '--config',
        cfg,
        '--port',
        '0',
        '--json',
        '--metrics-port',
        '0',
        '--state-dir',
        path.join(w.tmp, 'cli-state'),
      ],
      {
        cwd: path.resolve(path.dirname(new URL(import.meta.url).pathname), '..'),
        env: {
          ...process.env,
          TASKCLUSTER_ROOT_URL: '',
          TASKCLUSTER_CLIENT_ID: '',
          TASKCLUSTER_ACCESS_TOKEN: '',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    try {
      await waitFor('serve to print its address', () => {
        if (child.exitCode !== null) giveUp(`serve exited before it started: ${stderr}`);
        return stdout.includes('\n');
      });
      const { url, metricsUrl } = JSON.parse(stdout.split('\n')[0]!);
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await get(url, '/__heartbeat__')).status, 200);
      assert.match(await (await fetch(metricsUrl)).text(), /mozharness_lookup_requests_total/);
      const hit = await get(url, `/v1/${PROJECT}/revision/${a.revision}`);
      assert.equal(hit.status, 302);
      assert.equal(hit.headers.get('x-archive-sha256'), a.sha256);
      const line = stderr.split('\n').find((l) => l.includes('lookup.request'));
      assert.ok(line && JSON.parse(line).status, `a JSON request log line on stderr: ${stderr}`);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });
});
