// The decision task's generator: golden graphs, upstream conformance of every emitted task,
// content-digest reuse (hit, miss, expiring too soon, trust-level isolation), reruns, submission
// order and errors, limits, config errors, and the CLI's reproducibility.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import * as yaml from 'js-yaml';
import { buildArchive } from '../src/archive/index.js';
import { main } from '../src/cli/main.js';
import {
  loadGraphConfig,
  loadKinds,
  parseDownstreamKind,
  parseGraphConfig,
} from '../src/decision/config.js';
import { runDecision, type DecisionOptions } from '../src/decision/decision.js';
import type { HarnessDigest } from '../src/decision/digest.js';
import { computeHarnessDigest } from '../src/decision/digest.js';
import { loadFullGraph } from '../src/decision/graph.js';
import { checkLimits, limitProblems } from '../src/decision/limits.js';
import { cacheNamespace, pushIndexNamespaces } from '../src/contract/index.js';
import type { Parameters } from '../src/decision/parameters.js';
import {
  loadParametersFile,
  makeParameters,
  parsePushdate,
  pushFacts,
} from '../src/decision/parameters.js';
import { submitTaskGraph } from '../src/decision/submit.js';
import { deterministicSlugid } from '../src/decision/taskids.js';
import type { IndexClient, QueueClient } from '../src/taskcluster/client.js';
import { queueClient } from '../src/taskcluster/client.js';
import type { IndexedTask } from '../src/taskcluster/types.js';
import { isArchiveError } from '../src/util/errors.js';
import { writeSampleTree } from './helpers/repos.js';
import { assertUpstream, SHARED_TASKCLUSTER } from './helpers/upstream.js';

const ROOT = path.resolve('taskcluster');
const GOLDEN = path.resolve('test/fixtures/golden');
const SLUG = /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;
const DIGEST: HarnessDigest = {
  treeDigest: '1f'.repeat(32),
  sha256: 'ab'.repeat(32),
  size: 123456,
  zip: { sha256: 'ba'.repeat(32), size: 234567 },
  files: 321,
  revision: 'c0ffee'.padEnd(40, '0'),
  subdir: 'testing/mozharness',
  formatVersion: 1,
};

function params(over: Partial<Parameters> = {}): Parameters {
  return makeParameters({
    project: 'mozilla-central',
    level: '3',
    head_repository: 'https://hg.mozilla.org/mozilla-central',
    repository_type: 'hg',
    head_rev: 'c0ffee'.padEnd(40, '0'),
    base_rev: 'bada55'.padEnd(40, '1'),
    owner: 'ffxbld@mozilla.com',
    pushlog_id: '40123',
    pushdate: 1764290000,
    tasks_for: 'hg-push',
    decision_task_id: deterministicSlugid('decision mozilla-central'),
    taskcluster_root_url: 'https://firefox-ci-tc.services.mozilla.com',
    ...over,
  });
}

const PARAM_SETS: Record<string, Parameters> = {
  'hg-push-level-3': params(),
  'github-push': params({
    project: 'mozharness-archive',
    head_repository: 'https://github.com/mozilla-releng/mozharness-archive',
    repository_type: 'git',
    head_ref: 'refs/heads/main',
    pushlog_id: '0',
    tasks_for: 'github-push',
    owner: 'someone@example.com',
    decision_task_id: deterministicSlugid('decision github'),
  }),
  'try-level-1': params({
    project: 'try',
    level: '1',
    head_repository: 'https://hg.mozilla.org/try',
    pushlog_id: '777',
    owner: 'dev@example.com',
    decision_task_id: deterministicSlugid('decision try'),
  }),
};

// ---- fakes implementing only the methods the generator calls ------------------------------

interface FakeArchive {
  taskId: string;
  namespace: string;
  state?: string;
  taskExpires?: string;
  artifactExpires?: string | null;
  sha256?: string;
}

function fakeServices(archives: FakeArchive[], created = new Date(params().pushdate * 1000)) {
  const calls = { findTasksAtIndex: [] as string[][], insertTask: [] as Array<[string, any]> };
  const queueTasks = new Map<string, any>();
  const createOrder: string[] = [];
  const index = {
    async findTasksAtIndex(body: { indexes: string[] }) {
      calls.findTasksAtIndex.push(body.indexes);
      const tasks: IndexedTask[] = archives
        .filter((a) => body.indexes.includes(a.namespace))
        .map((a) => ({
          namespace: a.namespace,
          taskId: a.taskId,
          rank: 1,
          data: { sha256: a.sha256 ?? 'cd'.repeat(32), size: 99, treeDigest: DIGEST.treeDigest },
          expires: '2030-01-01T00:00:00.000Z',
        }));
      return { tasks };
    },
    async insertTask(ns: string, body: any) {
      calls.insertTask.push([ns, body]);
      return { namespace: ns, ...body };
    },
  } as unknown as IndexClient;
  const queue = {
    async status(taskId: string) {
      const a = archives.find((x) => x.taskId === taskId)!;
      return {
        status: {
          taskId,
          state: a.state ?? 'completed',
          expires: a.taskExpires ?? '2030-01-01T00:00:00.000Z',
        },
      };
    },
    async listLatestArtifacts(taskId: string) {
      const a = archives.find((x) => x.taskId === taskId)!;
      const artifacts =
        a.artifactExpires === null
          ? []
          : [
              { name: 'public/logs/live_backing.log', expires: '2030-01-01T00:00:00.000Z' },
              {
                name: 'public/build/mozharness.tar.gz',
                expires: a.artifactExpires ?? '2029-01-01T00:00:00.000Z',
              },
            ];
      return { artifacts };
    },
    async task(taskId: string) {
      if (taskId === params().decision_task_id || queueTasks.has('decision:' + taskId)) {
        return { created: created.toISOString() };
      }
      const t = queueTasks.get(taskId);
      if (!t) throw Object.assign(new Error(`task ${taskId} not found`), { statusCode: 404 });
      return { ...t, provisionerId: 'x', workerType: 'y' };
    },
    async createTask(taskId: string, def: any) {
      for (const d of def.dependencies ?? []) {
        if (!queueTasks.has(d) && !d.startsWith('decision') && !isKnownExternal(d)) {
          throw new Error(`dependency ${d} of ${taskId} does not exist yet`);
        }
      }
      createOrder.push(taskId);
      queueTasks.set(taskId, JSON.parse(JSON.stringify(def)));
      return { status: { taskId, state: 'pending' } };
    },
  } as unknown as QueueClient;
  const decisionIds = new Set(Object.values(PARAM_SETS).map((p) => p.decision_task_id));
  const isKnownExternal = (id: string) =>
    decisionIds.has(id) || archives.some((a) => a.taskId === id);
  return { index, queue, calls, queueTasks, createOrder };
}

async function decide(p: Parameters, extra: Partial<DecisionOptions> = {}) {
  return runDecision({ params: p, root: ROOT, digest: DIGEST, ...extra });
}

// ---- workers' payload schemas ---------------------------------------------------------------

const workerPayloadValidator = new Ajv({ strict: false, allErrors: true }).compile(
  JSON.parse(fs.readFileSync('schemas/worker-payload.json', 'utf8')),
);

function assertTaskConforms(taskId: string, entry: any): void {
  const { task } = entry;
  assert.match(taskId, SLUG);
  assertUpstream('/schemas/queue/v1/create-task-request.json', task, `task ${entry.label}`);
  assertUpstream(
    'treeherder/task-treeherder-config.json',
    task.extra.treeherder,
    `${entry.label} treeherder`,
  );
  const impl = task.tags['worker-implementation'];
  if (impl === 'docker-worker') {
    assertUpstream(
      '/schemas/docker-worker/v1/payload.json',
      task.payload,
      `${entry.label} payload`,
    );
  } else if (impl === 'generic-worker') {
    assertUpstream(
      '/schemas/generic-worker/multiuser_posix.json',
      task.payload,
      `${entry.label} payload`,
    );
  } else {
    assert.equal(impl, 'mozharness-archive');
    assert.ok(
      workerPayloadValidator(task.payload),
      `${entry.label} payload: ${JSON.stringify(workerPayloadValidator.errors)}`,
    );
    for (const r of task.routes.filter((x: string) => x.startsWith('index.'))) {
      assertUpstream(
        '/schemas/index/v1/insert-task-request.json',
        {
          taskId,
          rank: task.extra.index.rank,
          data: task.extra.index.data,
          expires: task.extra.index.expires,
        },
        r,
      );
    }
  }
}

describe('decision: generator', function () {
  this.timeout(60_000);
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-decision-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('golden graphs', () => {
    for (const [name, p] of Object.entries(PARAM_SETS)) {
      it(`${name} matches test/fixtures/golden/${name}.json and every task conforms`, async () => {
        const r = await decide(p);
        const doc = {
          parameters: p,
          targetTasks: r.target.order,
          labelToTaskId: r.labelToTaskId,
          taskGraph: Object.fromEntries(
            r.resolved.order.map((id) => {
              const t = r.resolved.tasks[id]!;
              return [
                id,
                { label: t.label, kind: t.kind, dependencies: t.dependencies, task: t.task },
              ];
            }),
          ),
        };
        const file = path.join(GOLDEN, `${name}.json`);
        const text = JSON.stringify(doc, null, 2) + '\n';
        if (process.env.MOZHARNESS_ARCHIVE_UPDATE_GOLDEN) fs.writeFileSync(file, text);
        assert.equal(
          text,
          fs.readFileSync(file, 'utf8'),
          `golden ${name} differs (MOZHARNESS_ARCHIVE_UPDATE_GOLDEN=1 regenerates)`,
        );
        for (const [id, entry] of Object.entries(doc.taskGraph)) assertTaskConforms(id, entry);
      });
    }

    it('hg-push level 3: archive routes, dependencies and downstream payloads', async () => {
      const p = PARAM_SETS['hg-push-level-3']!;
      const r = await decide(p);
      const archiveId = r.labelToTaskId['mozharness-archive']!;
      const archive = r.resolved.tasks[archiveId]!.task;
      assert.deepEqual(archive.routes, [
        `index.mozharness.v1.mozilla-central.revision.${p.head_rev}.mozharness`,
        'index.mozharness.v1.mozilla-central.pushlog-id.40123.mozharness',
        'index.mozharness.v1.mozilla-central.pushdate.2025.11.28.20251128003320.mozharness',
        'index.mozharness.v1.mozilla-central.latest.mozharness',
        `index.mozharness.cache.level-3.mozharness.hash.${DIGEST.treeDigest}`,
        `tc-treeherder.v2.mozilla-central.${p.head_rev}.40123`,
      ]);
      assert.equal((archive.extra as any).index.rank, p.pushdate);
      assert.deepEqual(
        {
          symbol: (archive.extra as any).treeherder.symbol,
          jobKind: (archive.extra as any).treeherder.jobKind,
          tier: 1,
        },
        { symbol: 'MH', jobKind: 'build', tier: (archive.extra as any).treeherder.tier },
      );
      assert.equal(archive.metadata.name, 'mozharness-archive');
      assert.equal(archive.payload.treeDigest, DIGEST.treeDigest);
      assert.equal(archive.taskGroupId, p.decision_task_id);
      assert.equal(archive.schedulerId, 'mozharness-level-3');
      assert.equal(archive.created, new Date(p.pushdate * 1000).toISOString());
      const url = queueClient({ rootUrl: p.taskcluster_root_url }).buildUrl(
        queueClient({ rootUrl: p.taskcluster_root_url }).getLatestArtifact,
        archiveId,
        'public/build/mozharness.zip',
      );
      let docker = 0;
      let generic = 0;
      for (const id of r.resolved.order) {
        const { task, label } = r.resolved.tasks[id]!;
        if (label === 'mozharness-archive') continue;
        assert.ok(task.dependencies!.includes(archiveId), `${label} depends on the archive`);
        if (task.tags!['worker-implementation'] === 'docker-worker') {
          docker++;
          assert.equal((task.payload as any).env.MOZHARNESS_URL, url);
          assert.equal((task.payload as any).env.MOZHARNESS_SHA256, DIGEST.zip!.sha256);
          assert.equal((task.payload as any).command[0], 'taskcluster/scripts/run-mozharness.sh');
          assert.match((task.payload as any).command[1], /^scripts\/.*\.py$/);
        } else {
          generic++;
          assert.deepEqual(task.payload.mounts, [
            {
              directory: 'mozharness',
              format: 'zip',
              content: {
                taskId: archiveId,
                artifact: 'public/build/mozharness.zip',
                sha256: DIGEST.zip!.sha256,
              },
            },
          ]);
        }
      }
      assert.ok(docker > 0 && generic > 0, 'both worker implementations are exercised');
    });

    it('try (level 1) runs on level-1 queues, scheduler and cache, and skips m-c-only tasks', async () => {
      const r = await decide(PARAM_SETS['try-level-1']!);
      const all = r.resolved.order.map((id) => r.resolved.tasks[id]!.task);
      assert.ok(all.every((t) => t.schedulerId === 'mozharness-level-1'));
      assert.ok(!r.target.order.includes('test-macosx1015-64/opt-xpcshell'));
      const archive = all.find((t) => t.tags!.kind === 'mozharness-archive')!;
      assert.equal(archive.taskQueueId, 'mozharness-1/archive');
      assert.ok(
        archive.routes!.includes(
          `index.mozharness.cache.level-1.mozharness.hash.${DIGEST.treeDigest}`,
        ),
      );
    });
  });

  describe('optimize: content-digest reuse', () => {
    const L3 = cacheNamespace('mozharness', 3, DIGEST.treeDigest);
    const L1 = cacheNamespace('mozharness', 1, DIGEST.treeDigest);
    const reusedId = deterministicSlugid('an old archive');

    it('hit: an indexed, completed archive replaces the archive task; dependents point at it', async () => {
      const f = fakeServices([{ taskId: reusedId, namespace: L3, sha256: 'cd'.repeat(32) }]);
      const r = await decide(params(), { index: f.index, queue: f.queue, dryRun: true });
      assert.equal(f.calls.findTasksAtIndex.length, 1, 'one batched index request');
      assert.deepEqual(f.calls.findTasksAtIndex[0], [L3], 'a level-3 push reads only level 3');
      assert.equal(r.labelToTaskId['mozharness-archive'], reusedId);
      assert.ok(
        !r.resolved.order.some((id) => r.resolved.tasks[id]!.label === 'mozharness-archive'),
      );
      for (const id of r.resolved.order) {
        const t = r.resolved.tasks[id]!.task;
        assert.ok(t.dependencies!.includes(reusedId));
        if (r.resolved.tasks[id]!.kind === 'build') {
          assert.ok(
            t.dependencies!.includes(params().decision_task_id),
            'builds wait for the decision task',
          );
        }
        const sha =
          (t.payload as any).env?.MOZHARNESS_SHA256 ??
          (t.payload as any).mounts?.[0].content.sha256;
        assert.equal(sha, 'cd'.repeat(32), 'the indexed archive sha256 is what dependents verify');
      }
      const rec = r.optimized.records.find((x) => x.label === 'mozharness-archive')!;
      assert.equal(rec.result, 'hit');
      assert.equal(rec.decision, 'replaced');
      assert.equal(rec.treeDigest, DIGEST.treeDigest);
      assert.deepEqual(rec.namespacesTried, [L3]);
      assert.match(rec.reason, /replaced by/);
    });

    it('miss: nothing indexed keeps the archive task, with the digest in its payload', async () => {
      const f = fakeServices([]);
      const r = await decide(params(), { index: f.index, queue: f.queue, dryRun: true });
      const rec = r.optimized.records.find((x) => x.label === 'mozharness-archive')!;
      assert.equal(rec.result, 'miss');
      assert.match(rec.reason, /no indexed archive/);
      const id = r.labelToTaskId['mozharness-archive']!;
      assert.equal(r.resolved.tasks[id]!.task.payload.treeDigest, DIGEST.treeDigest);
    });

    it('refused: an artifact expiring before the dependents’ deadline, an incomplete task', async () => {
      const soon = new Date(params().pushdate * 1000 + 3600_000).toISOString();
      for (const a of [
        { artifactExpires: soon, why: /artifact expires/ },
        { taskExpires: soon, why: /task expires/ },
        { state: 'failed', why: /task is failed, not completed/ },
        { artifactExpires: null, why: /no artifact public\/build\/mozharness.tar.gz/ },
      ]) {
        const { why, ...over } = a;
        const f = fakeServices([{ taskId: reusedId, namespace: L3, ...over }]);
        const r = await decide(params(), { index: f.index, queue: f.queue, dryRun: true });
        const rec = r.optimized.records.find((x) => x.label === 'mozharness-archive')!;
        assert.equal(rec.result, 'miss', JSON.stringify(over));
        assert.match(rec.reason, why);
        assert.equal(rec.candidates![0]!.usable, false);
        assert.notEqual(r.labelToTaskId['mozharness-archive'], reusedId);
      }
    });

    it('a refused level-3 candidate falls back to a usable level-2 one', async () => {
      const soon = new Date(params().pushdate * 1000 + 3600_000).toISOString();
      const other = deterministicSlugid('level 2 archive');
      const L2 = cacheNamespace('mozharness', 2, DIGEST.treeDigest);
      const f = fakeServices([
        { taskId: reusedId, namespace: L3, artifactExpires: soon },
        { taskId: other, namespace: L2 },
      ]);
      const r = await decide(params({ level: '2' }), {
        index: f.index,
        queue: f.queue,
        dryRun: true,
      });
      assert.deepEqual(f.calls.findTasksAtIndex[0], [L3, L2]);
      assert.equal(r.labelToTaskId['mozharness-archive'], other);
    });

    it('trust levels: level 3 never reads a level-1 cache; level 1 may read level 3', async () => {
      const f = fakeServices([{ taskId: reusedId, namespace: L1 }]);
      const r = await decide(params(), { index: f.index, queue: f.queue, dryRun: true });
      assert.ok(
        !f.calls.findTasksAtIndex
          .flat()
          .some((ns) => ns.includes('level-1') || ns.includes('level-2')),
      );
      assert.equal(
        r.optimized.records.find((x) => x.label === 'mozharness-archive')!.result,
        'miss',
      );
      assert.notEqual(r.labelToTaskId['mozharness-archive'], reusedId);

      const g = fakeServices([{ taskId: reusedId, namespace: L3 }]);
      const t = await decide(PARAM_SETS['try-level-1']!, {
        index: g.index,
        queue: g.queue,
        dryRun: true,
      });
      assert.deepEqual(g.calls.findTasksAtIndex[0], [
        L3,
        cacheNamespace('mozharness', 2, DIGEST.treeDigest),
        L1,
      ]);
      assert.equal(t.labelToTaskId['mozharness-archive'], reusedId);
    });

    it('an index failure is recorded and the archive is built', async () => {
      const f = fakeServices([]);
      (f.index as any).findTasksAtIndex = async () => {
        throw Object.assign(new Error('Internal Server Error'), { statusCode: 500 });
      };
      const r = await decide(params(), { index: f.index, queue: f.queue, dryRun: true });
      const rec = r.optimized.records.find((x) => x.label === 'mozharness-archive')!;
      assert.equal(rec.decision, 'scheduled');
      assert.match(
        rec.reason,
        /index lookup failed, building a new archive: Internal Server Error/,
      );
    });

    it('without an index client nothing is looked up', async () => {
      const r = await decide(params());
      const rec = r.optimized.records.find((x) => x.label === 'mozharness-archive')!;
      assert.equal(rec.result, 'not-looked-up');
    });

    it('a reused archive is indexed for this push at revision, pushlog-id, pushdate and latest', async () => {
      const f = fakeServices([{ taskId: reusedId, namespace: L3 }]);
      const p = params();
      const r = await decide(p, {
        index: f.index,
        queue: f.queue,
        dryRun: false,
        now: () => new Date(p.pushdate * 1000),
      });
      const nss = pushIndexNamespaces('mozharness', pushFacts(p));
      assert.deepEqual(r.indexed, nss);
      assert.deepEqual(
        f.calls.insertTask.map(([ns]) => ns),
        nss,
      );
      for (const [, body] of f.calls.insertTask) {
        assert.equal(body.taskId, reusedId);
        assert.equal(body.rank, p.pushdate);
        assertUpstream('/schemas/index/v1/insert-task-request.json', body);
      }
    });
  });

  describe('submit', () => {
    it('creates parents before children, and a rerun creates no new task', async () => {
      const p = params();
      const f = fakeServices([]);
      const now = () => new Date(p.pushdate * 1000 + 60_000);
      const first = await decide(p, { index: f.index, queue: f.queue, dryRun: false, now });
      assert.equal(first.submitted!.created.length, first.resolved.order.length);
      const pos = new Map(f.createOrder.map((id, i) => [id, i]));
      for (const id of f.createOrder) {
        for (const d of first.resolved.tasks[id]!.task.dependencies!) {
          if (first.resolved.tasks[d]) assert.ok(pos.get(d)! < pos.get(id)!, 'parent first');
        }
      }
      // a later rerun of the same decision task: same ids, found in the queue, nothing created
      const again = await decide(p, {
        index: f.index,
        queue: f.queue,
        dryRun: false,
        now: () => new Date(p.pushdate * 1000 + 3 * 3600_000),
      });
      assert.deepEqual(again.labelToTaskId, first.labelToTaskId);
      assert.equal(again.submitted!.created.length, 0);
      assert.equal(again.submitted!.existing.length, first.resolved.order.length);
      assert.equal(f.createOrder.length, first.resolved.order.length);
    });

    it('an existing task with a different definition is a conflict', async () => {
      const p = params();
      const f = fakeServices([]);
      const first = await decide(p, { index: f.index, queue: f.queue, dryRun: true });
      const id = first.resolved.order[0]!;
      f.queueTasks.set(id, { ...first.resolved.tasks[id]!.task, priority: 'highest' });
      await assert.rejects(submitTaskGraph(first.resolved, f.queue), (e: unknown) => {
        assert.ok(isArchiveError(e));
        assert.match(e.message, /already exists with a different definition/);
        assert.match(e.message, /dependent task\(s\) not submitted/);
        return true;
      });
    });

    it('bounded concurrency, and every failure reported together', async () => {
      const p = params();
      const r = await decide(p);
      let inFlight = 0;
      let maxInFlight = 0;
      const created: string[] = [];
      const failing = new Set(
        ['build-linux64/opt', 'build-macosx64/opt'].map((l) => r.labelToTaskId[l]!),
      );
      const queue = {
        async task() {
          throw Object.assign(new Error('nope'), { statusCode: 404 });
        },
        async createTask(id: string) {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((res) => setTimeout(res, 5));
          inFlight--;
          if (failing.has(id))
            throw Object.assign(new Error('InsufficientScopes'), { statusCode: 403 });
          created.push(id);
          return {};
        },
      } as unknown as QueueClient;
      await assert.rejects(submitTaskGraph(r.resolved, queue, { concurrency: 2 }), (e: unknown) => {
        assert.ok(isArchiveError(e));
        assert.match(e.message, /2 of 8 tasks could not be submitted/);
        assert.match(e.message, /build-linux64\/opt/);
        assert.match(e.message, /build-macosx64\/opt/);
        const report = e.details.report as any;
        assert.deepEqual(report.skipped.map((s: any) => s.label).sort(), [
          'test-linux64/opt-mochitest-plain-1',
          'test-linux64/opt-mochitest-plain-2',
          'test-macosx1015-64/opt-xpcshell',
        ]);
        return true;
      });
      assert.ok(maxInFlight <= 2, `at most 2 in flight (saw ${maxInFlight})`);
      assert.equal(created.length, 3, 'archive, linux64/debug build and its test were created');
    });
  });

  describe('limits', () => {
    it('routes, deadline, expires and dependency expiry are checked with clear errors', async () => {
      const r = await decide(params());
      assert.deepEqual(limitProblems(r.resolved), []);
      const [archiveId, buildId] = r.resolved.order;
      const a = r.resolved.tasks[archiveId!]!.task;
      const b = r.resolved.tasks[buildId!]!.task;
      a.routes = [...a.routes!, ...Array.from({ length: 70 }, (_, i) => `index.x.${i}`)];
      a.routes.push('index.' + 'y'.repeat(250));
      a.expires = new Date(Date.parse(b.deadline) - 1000).toISOString();
      b.deadline = new Date(Date.parse(b.created) + 6 * 86400_000).toISOString();
      const problems = limitProblems(r.resolved);
      const text = problems.join('\n');
      assert.match(
        text,
        /task 'mozharness-archive' \(.+\): routes: 77 routes, the queue allows 64/,
      );
      assert.match(text, /routes: 'index\.yyy.*' is 256 characters, the queue allows 249/);
      assert.match(text, /task 'mozharness-archive' .*: expires: .* is before the deadline/);
      assert.match(text, /task 'build-linux64\/opt' .*: deadline: .* is more than 5 days ahead/);
      assert.match(
        text,
        /task 'build-linux64\/opt' .*: dependencies: 'mozharness-archive' .* expires .* before this task's deadline/,
      );
      assert.throws(
        () => checkLimits(r.resolved),
        (e: unknown) => isArchiveError(e, 'limit-exceeded'),
      );
      assert.match(
        limitProblems(r.resolved, new Date(Date.parse(a.created) + 10 * 86400_000)).join('\n'),
        /deadline: .* is in the past/,
      );
    });
  });

  describe('in-tree configuration errors name file, task and field', () => {
    it('the shipped config and kinds load', async () => {
      const config = await loadGraphConfig(ROOT);
      const kinds = await loadKinds(ROOT, config);
      assert.equal(kinds.archive.subdir, 'testing/mozharness');
      assert.deepEqual(
        kinds.downstream.map((k) => k.name),
        ['build', 'test'],
      );
      assert.equal(loadFullGraph(kinds).order[0], 'mozharness-archive');
    });

    it('bad fields, unknown worker aliases, bad dependencies, cycles', async () => {
      const config = await loadGraphConfig(ROOT);
      const file = 'taskcluster/kinds/test/kind.yml';
      const kind = (tasks: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
        'kind-dependencies': ['mozharness-archive', 'test'],
        'task-defaults': { 'worker-alias': 't-linux' },
        tasks,
        ...extra,
      });
      const good = {
        description: 'd',
        dependencies: { mozharness: 'mozharness-archive' },
        treeherder: { symbol: 'T', platform: 'linux64', kind: 'test' },
        mozharness: { script: 'scripts/x.py', config: [] },
      };
      const cases: Array<[unknown, RegExp]> = [
        [
          kind({
            'a/b': { ...good, treeherder: { symbol: 'T', platform: 'linux 64', kind: 'test' } },
          }),
          /^taskcluster\/kinds\/test\/kind\.yml: task 'a\/b': treeherder\.platform: must match pattern/m,
        ],
        [
          kind({ x: { ...good, 'max-run-time': 'long' } }),
          /task 'x': max-run-time: must be integer/,
        ],
        [kind({ x: { ...good, colour: 'red' } }), /task 'x': colour: is not a known field/],
        [
          kind({ x: { ...good, mozharness: { config: [] } } }),
          /task 'x': mozharness\.script: is required/,
        ],
        [
          kind({ x: { ...good, 'worker-alias': 'nope' } }),
          /task 'x': worker-alias: 'nope' is not in config\.yml/,
        ],
        [
          kind({ x: { ...good, 'worker-alias': 'archive' } }),
          /task 'x': worker-alias: 'archive' is a mozharness-archive worker, which runs no downstream tasks/,
        ],
        [
          kind({ x: { ...good, mozharness: { script: '../evil.py', config: [] } } }),
          /task 'x': mozharness\.script/,
        ],
        [{ tasks: {}, bogus: 1 }, /kind\.yml: bogus: is not a known field/],
      ];
      for (const [raw, re] of cases) {
        assert.throws(
          () => parseDownstreamKind('test', raw, config, file),
          (e: unknown) => {
            assert.ok(isArchiveError(e, 'invalid-config'), String(e));
            assert.match(e.message, re);
            return true;
          },
        );
      }
      const graphCase = (tasks: Record<string, unknown>, re: RegExp) => {
        const k = parseDownstreamKind('test', kind(tasks), config, file);
        const archive = { name: 'mozharness-archive', file: 'a', subdir: 's' } as any;
        assert.throws(() => loadFullGraph({ archive, downstream: [k] }), re);
      };
      graphCase(
        { x: { ...good, dependencies: { mozharness: 'mozharness-archive', build: 'build-nope' } } },
        /task 'x': dependencies\.build: no task labelled 'build-nope'/,
      );
      graphCase(
        { x: { ...good, dependencies: { mozharness: 'test-y' } }, y: good },
        /task 'x': dependencies\.mozharness: must be 'mozharness-archive'/,
      );
      graphCase(
        {
          x: { ...good, dependencies: { mozharness: 'mozharness-archive', a: 'test-y' } },
          y: { ...good, dependencies: { mozharness: 'mozharness-archive', a: 'test-x' } },
        },
        /dependencies: cycle test-x → test-y → test-x/,
      );
      assert.throws(
        () =>
          parseGraphConfig(
            {
              'trust-domain': 'Bad Domain',
              'index-prefix': 'x',
              workers: { aliases: {} },
              archive: {},
            },
            'taskcluster/config.yml',
          ),
        /taskcluster\/config\.yml: trust-domain: must match pattern[\s\S]*archive\.artifact-name: is required/,
      );
    });
  });

  describe('digest and CLI', () => {
    it('computes the tree digest and exact sha256 with the archive engine (directory source)', async () => {
      const checkout = path.join(tmp, 'checkout');
      writeSampleTree(checkout);
      const d = await computeHarnessDigest(checkout, DIGEST.revision, 'testing/mozharness');
      const built = await buildArchive({
        source: { kind: 'dir', path: checkout },
        revision: DIGEST.revision,
        subdir: 'testing/mozharness',
        out: path.join(tmp, 'mh.tar.gz'),
      });
      assert.equal(d.sha256, built.sha256);
      assert.equal(d.treeDigest, built.treeDigest);
      assert.match(d.treeDigest, /^[0-9a-f]{64}$/);
    });

    it('decision --dry-run: same parameters and --task-id give byte-identical artifacts', async () => {
      const checkout = path.join(tmp, 'checkout');
      if (!fs.existsSync(checkout)) writeSampleTree(checkout);
      const p = params();
      const args = (out: string) => [
        'node',
        'mozharness-archive',
        'decision',
        '--dry-run',
        '--checkout',
        checkout,
        '--root',
        ROOT,
        '--out',
        out,
        '--project',
        p.project,
        '--level',
        p.level,
        '--repository',
        p.head_repository,
        '--revision',
        p.head_rev,
        '--base-revision',
        p.base_rev,
        '--owner',
        p.owner,
        '--pushlog-id',
        p.pushlog_id,
        '--pushdate',
        String(p.pushdate),
        '--tasks-for',
        'hg-push',
        '--task-id',
        p.decision_task_id,
        '--json',
      ];
      const write = process.stdout.write;
      const captured: string[] = [];
      process.stdout.write = ((s: string) => (
        captured.push(String(s)),
        true
      )) as typeof process.stdout.write;
      let codes: number[];
      const level = process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL;
      process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL = 'warn';
      try {
        codes = [await main(args(path.join(tmp, 'a'))), await main(args(path.join(tmp, 'b')))];
      } finally {
        process.stdout.write = write;
        if (level === undefined) delete process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL;
        else process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL = level;
      }
      assert.deepEqual(codes, [0, 0]);
      const summary = JSON.parse(captured[0]!);
      assert.equal(summary.archive.result, 'not-looked-up');
      assert.equal(summary.tasks, 8);
      for (const name of [
        'task-graph.json',
        'label-to-taskid.json',
        'full-task-graph.json',
        'optimizations.json',
        'parameters.yml',
        'actions.json',
      ]) {
        const a = fs.readFileSync(path.join(tmp, 'a', name));
        assert.ok(a.equals(fs.readFileSync(path.join(tmp, 'b', name))), `${name} identical`);
      }
      assertUpstream(
        '/schemas/common/action-schema-v1.json',
        JSON.parse(fs.readFileSync(path.join(tmp, 'a', 'actions.json'), 'utf8')),
      );
      const reread = await loadParametersFile(path.join(tmp, 'a', 'parameters.yml'));
      assert.deepEqual(reread, {
        ...p,
        taskcluster_root_url: 'https://firefox-ci-tc.services.mozilla.com',
      });
      const tg = JSON.parse(fs.readFileSync(path.join(tmp, 'a', 'task-graph.json'), 'utf8'));
      for (const [id, entry] of Object.entries(tg)) assertTaskConforms(id, entry);
      const opt = JSON.parse(fs.readFileSync(path.join(tmp, 'a', 'optimizations.json'), 'utf8'));
      assert.equal(opt.records[0].label, 'mozharness-archive');
      assert.match(opt.treeDigest, /^[0-9a-f]{64}$/);
      assert.ok(yaml.load(fs.readFileSync(path.join(tmp, 'a', 'parameters.yml'), 'utf8')));
    });

    it("actions.json offers the in-tree action hooks of the revision's .taskcluster.yml", async () => {
      const tcyml = fs.readFileSync('.taskcluster.yml', 'utf8');
      const out = path.join(tmp, 'with-actions');
      await decide(params(), { out, tcyml });
      const actions = JSON.parse(fs.readFileSync(path.join(out, 'actions.json'), 'utf8'));
      assertUpstream('/schemas/common/action-schema-v1.json', actions, 'actions.json');
      const names = actions.actions.map((a: any) => a.name);
      assert.ok(names.includes('retrigger-multiple') && names.includes('add-new-jobs'));
      const hash = createHash('sha256').update(tcyml).digest('hex').slice(0, 10);
      for (const a of actions.actions) {
        assert.equal(a.kind, 'hook');
        assert.equal(a.hookGroupId, 'project-mozharness');
        assert.equal(a.hookId, `in-tree-action-3-generic/${hash}`);
      }
    });

    it('graph full|target|optimized shows each phase for a parameters file', async () => {
      const checkout = path.join(tmp, 'checkout');
      if (!fs.existsSync(checkout)) writeSampleTree(checkout);
      const pfile = path.join(tmp, 'try-params.yml');
      fs.writeFileSync(pfile, yaml.dump(PARAM_SETS['try-level-1']));
      const run = async (...args: string[]) => {
        const out: string[] = [];
        const w = process.stdout.write;
        process.stdout.write = ((x: string) => (
          out.push(String(x)),
          true
        )) as typeof process.stdout.write;
        try {
          const code = await main([
            'node',
            'mozharness-archive',
            'graph',
            ...args,
            '--params',
            pfile,
            '--root',
            ROOT,
          ]);
          return { code, text: out.join('') };
        } finally {
          process.stdout.write = w;
        }
      };
      const full = await run('full', '--json');
      assert.equal(full.code, 0);
      assert.equal(Object.keys(JSON.parse(full.text)).length, 8);
      const target = await run('target');
      assert.equal(target.code, 0);
      assert.ok(!target.text.includes('macosx'), 'try leaves out the m-c-only tasks');
      assert.match(target.text, /^mozharness-archive \(mozharness-archive\)$/m);
      const optimized = await run('optimized', '--json', '--checkout', checkout);
      assert.equal(optimized.code, 0);
      const doc = JSON.parse(optimized.text);
      assert.equal(doc.optimizations[0].result, 'not-looked-up');
      assert.equal(Object.keys(doc.taskGraph).length, 6);
      const bad = await run('everything');
      assert.equal(bad.code, 2);
    });

    it("runnable-jobs.json lists every task of the full graph as Treeherder's add-new-jobs reads it", async () => {
      const out = path.join(tmp, 'runnable');
      const r = await decide(PARAM_SETS['try-level-1']!, { out });
      const jobs = JSON.parse(fs.readFileSync(path.join(out, 'runnable-jobs.json'), 'utf8'));
      assert.deepEqual(
        Object.keys(jobs).sort(),
        [...r.full.order].sort(),
        'the full graph, not only the target',
      );
      assert.ok(Object.keys(jobs).length > r.target.order.length);
      for (const [label, job] of Object.entries<Record<string, unknown>>(jobs)) {
        assert.deepEqual(
          Object.keys(job).filter(
            (k) => !['symbol', 'groupSymbol', 'groupName', 'collection', 'platform'].includes(k),
          ),
          [],
          label,
        );
        assert.equal(typeof job.symbol, 'string', label);
      }
      // the same Treeherder facts as the task definitions of the scheduled tasks
      for (const t of Object.values(r.resolved.tasks)) {
        const th = (t.task.extra as any).treeherder;
        const job = jobs[t.label];
        assert.equal(job.symbol, th.symbol, t.label);
        assert.equal(job.groupSymbol, th.groupSymbol, t.label);
        assert.equal(job.groupName, th.groupName, t.label);
        assert.deepEqual(job.collection, th.collection, t.label);
        assert.equal(job.platform, th.machine.platform, t.label);
      }
    });

    it("parameters.yml uses taskgraph's names and types and validates against its schema", async () => {
      const out = path.join(tmp, 'taskgraph-params');
      await decide(PARAM_SETS['github-push']!, { out });
      const doc = yaml.load(fs.readFileSync(path.join(out, 'parameters.yml'), 'utf8')) as Record<
        string,
        unknown
      >;
      const schema = JSON.parse(
        fs.readFileSync(path.join(SHARED_TASKCLUSTER, 'taskgraph-parameters.schema.json'), 'utf8'),
      );
      const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
      assert.ok(validate(doc), JSON.stringify(validate.errors));
      // every base parameter taskgraph defines, none missing
      for (const k of schema.required as string[]) assert.ok(k in doc, k);
      assert.equal(doc.head_rev, PARAM_SETS['github-push']!.head_rev);
      assert.equal(doc.head_ref, 'refs/heads/main');
      assert.equal(doc.build_date, doc.pushdate);
      assert.equal(doc.moz_build_date, '20251128003320');
      // and the project's own keys, which taskgraph allows
      assert.equal(doc.decision_task_id, PARAM_SETS['github-push']!.decision_task_id);
      assert.deepEqual(
        Object.keys(doc),
        Object.keys(doc).sort(),
        'keys sorted, as taskgraph writes',
      );
    });

    const graphCli = async (pfile: string, ...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const [w, e] = [process.stdout.write, process.stderr.write];
      process.stdout.write = ((x: string) => (out.push(String(x)), true)) as typeof w;
      process.stderr.write = ((x: string) => (err.push(String(x)), true)) as typeof e;
      try {
        const code = await main([
          'node',
          'mozharness-archive',
          'graph',
          ...args,
          '--params',
          pfile,
          '--root',
          ROOT,
        ]);
        return { code, text: out.join(''), err: err.join('') };
      } finally {
        process.stdout.write = w;
        process.stderr.write = e;
      }
    };

    it("graph --params reads a real taskgraph parameters.yml (gecko's shape, extra keys and all)", async () => {
      // as taskgraph's decision task writes it for a mozilla-central push: sorted keys, taskgraph's
      // base parameters plus gecko's own, no decision task id or root URL of this project
      const pfile = path.join(tmp, 'gecko-parameters.yml');
      fs.writeFileSync(
        pfile,
        [
          'app_version: 150.0a1',
          'backstop: false',
          'base_ref: null',
          'base_repository: https://hg.mozilla.org/mozilla-unified',
          'base_rev: bada551111111111111111111111111111111111',
          'build_date: 1764290000',
          'build_number: 1',
          'do_not_optimize: []',
          'enable_always_target:',
          '- docker-image',
          'existing_tasks: {}',
          'files_changed:',
          '- testing/mozharness/mozharness/base/script.py',
          'filters:',
          '- target_tasks_method',
          'head_ref: c0ffee0000000000000000000000000000000000',
          'head_repository: https://hg.mozilla.org/mozilla-central',
          'head_rev: c0ffee0000000000000000000000000000000000',
          "head_tag: ''",
          'hg_branch: default',
          "level: '3'",
          'message: Bug 1 - fix the harness',
          "moz_build_date: '20251128003320'",
          'next_version: null',
          'optimize_strategies: null',
          'optimize_target_tasks: true',
          'owner: ffxbld@mozilla.com',
          'phabricator_diff: null',
          'project: mozilla-central',
          'pushdate: 1764290000',
          "pushlog_id: '40123'",
          'release_type: nightly',
          'repository_type: hg',
          'target_tasks_method: default',
          'tasks_for: hg-push',
          'test_manifest_loader: default',
          'try_mode: null',
          'version: 150.0a1',
          '',
        ].join('\n'),
      );
      const r = await graphCli(pfile, 'target', '--json');
      assert.equal(r.code, 0, r.err);
      assert.equal(r.err, '', 'no warning for a taskgraph file');
      const labels = Object.keys(JSON.parse(r.text));
      assert.deepEqual(labels, (await decide(params())).target.order, 'same target as the push');
      const loaded = await loadParametersFile(pfile, {
        taskId: params().decision_task_id,
        rootUrl: 'https://tc.example.com/',
      });
      assert.equal((loaded as unknown as Record<string, unknown>).release_type, 'nightly');
      assert.equal(loaded.taskcluster_root_url, 'https://tc.example.com');
    });

    it('an old-style parameters file is read with a migration message', async () => {
      const p = params();
      const old = {
        project: p.project,
        level: p.level,
        repository: p.head_repository,
        repository_type: p.repository_type,
        revision: p.head_rev,
        base_revision: p.base_rev,
        owner: p.owner,
        pushlog_id: p.pushlog_id,
        pushdate: p.pushdate,
        tasks_for: p.tasks_for,
        decision_task_id: p.decision_task_id,
        taskcluster_root_url: p.taskcluster_root_url,
      };
      const pfile = path.join(tmp, 'old-parameters.yml');
      fs.writeFileSync(pfile, yaml.dump(old));
      const warnings: string[] = [];
      const loaded = await loadParametersFile(pfile, { warn: (m) => warnings.push(m) });
      assert.deepEqual(loaded, p);
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0]!,
        /old-style parameter names, read as taskgraph's: repository → head_repository, revision → head_rev, base_revision → base_rev\. Rename them/,
      );
      const r = await graphCli(pfile, 'target');
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /warning: .*old-style parameter names/);
      // a file with neither spelling is an error naming what is missing
      fs.writeFileSync(pfile, yaml.dump({ project: 'x', level: '3' }));
      const bad = await graphCli(pfile, 'target');
      assert.equal(bad.code, 2);
      assert.match(bad.err, /head_rev: is required/);
    });

    it('bad push parameters are usage errors naming the flag', async () => {
      const err: string[] = [];
      const w = process.stderr.write;
      process.stderr.write = ((s: string) => (
        err.push(String(s)),
        true
      )) as typeof process.stderr.write;
      try {
        const code = await main([
          'node',
          'mozharness-archive',
          'decision',
          '--dry-run',
          '--project',
          'x',
        ]);
        assert.equal(code, 2, err.join(''));
        assert.match(
          err.join(''),
          /missing push parameters: --level \(or MOZHARNESS_ARCHIVE_LEVEL\)/,
        );
      } finally {
        process.stderr.write = w;
      }
      assert.equal(parsePushdate('2026-11-28T01:00:00Z'), 1795827600);
      assert.throws(() => parsePushdate('yesterday'), /--pushdate/);
    });
  });
});
