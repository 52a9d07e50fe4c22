// Pure parts of the in-tree actions: actions.json against the upstream schema, input validation,
// hook definitions, and the plan/callback against fake queue and index objects.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import jsone from 'json-e';
import { Ajv } from 'ajv';
import { assertUpstream } from './helpers/upstream.js';
import { makePush, DIGEST, SHA256, type PushFixture } from './helpers/actions-fixture.js';
import {
  ACTIONS,
  renderActionsJson,
  tcymlHash,
  contextMatches,
  actionPush,
} from '../src/actions/registry.js';
import { validateActionInput } from '../src/actions/schemas.js';
import { actionHookDefinition, actionRoles, actionTriggerSchema } from '../src/actions/hooks.js';
import {
  mergePushView,
  rebaseTimestamps,
  replaceTaskIds,
  downstreamClosure,
} from '../src/actions/graph.js';
import { planTasks, type PlanOracle } from '../src/actions/plan.js';
import { runActionCallback, actionContextFromEnv } from '../src/actions/callback.js';
import { retargetArchiveTask } from '../src/actions/define.js';
import { selectAction } from '../src/actions/trigger.js';
import { slugid } from '../src/taskcluster/client.js';
import { isArchiveError } from '../src/util/errors.js';
import type { IndexedTask, TaskStatus } from '../src/taskcluster/types.js';

const TCYML = `version: 1
tasks:
  - $let: {x: 1}
    in:
      taskId: '\${ownTaskId}'
      created: {$fromNow: ''}
      deadline: {$fromNow: '1 day'}
      metadata: {name: 'Action: \${action.title}', description: d, owner: o@example.com, source: 'https://example.com'}
      payload: {}
`;

function view(push: PushFixture) {
  return mergePushView({
    decisionTaskId: push.decisionTaskId,
    parameters: push.parameters,
    graphs: [
      { taskId: push.decisionTaskId, taskGraph: push.taskGraph, labelToTaskId: push.labelToTaskId },
    ],
    fullGraph: push.fullGraph,
  });
}

interface FakeWorld {
  statuses: Map<string, Partial<TaskStatus>>;
  artifacts: Map<string, Date>;
  index: Map<string, IndexedTask>;
}

function world(push: PushFixture, opts: { state?: string; expires?: Date } = {}): FakeWorld {
  const statuses = new Map<string, Partial<TaskStatus>>();
  const expires = opts.expires ?? new Date(Date.now() + 300 * 24 * 3600e3);
  for (const id of Object.values(push.ids)) {
    statuses.set(id, {
      taskId: id,
      state: (opts.state ?? 'completed') as any,
      expires: expires.toISOString(),
    });
  }
  const artifacts = new Map<string, Date>([[push.ids.archive!, expires]]);
  return { statuses, artifacts, index: new Map() };
}

function oracle(w: FakeWorld): PlanOracle {
  return {
    async status(id) {
      return (w.statuses.get(id) as TaskStatus) ?? null;
    },
    async artifactExpires(id, _name) {
      return w.artifacts.get(id) ?? null;
    },
    async findIndexed(namespaces) {
      return namespaces.flatMap((ns) => (w.index.has(ns) ? [w.index.get(ns)!] : []));
    },
    async task() {
      return null;
    },
  };
}

const OWN = slugid();

describe('actions: actions.json', () => {
  const push = makePush();
  const doc = renderActionsJson(push.parameters, {
    decisionTaskId: push.decisionTaskId,
    tcymlHash: tcymlHash(TCYML),
    trustDomain: 'mozharness',
  });

  it('validates against the upstream action schema and offers every action as a hook', () => {
    assertUpstream('/schemas/common/action-schema-v1.json', doc, 'actions.json');
    assert.deepEqual(
      doc.actions.map((a) => a.name),
      [
        'retrigger-multiple',
        'add-new-jobs',
        'retrigger',
        'rebuild-mozharness-archive',
        'cancel',
        'cancel-all',
      ],
    );
    for (const a of doc.actions) {
      assert.equal(a.kind, 'hook');
      assert.equal(a.hookGroupId, 'project-mozharness');
      assert.equal(a.hookId, `in-tree-action-3-generic/${tcymlHash(TCYML)}`);
      assert.match(a.hookId as string, /^in-tree-action-3-generic\/[0-9a-f]{10}$/);
    }
    const byName = Object.fromEntries(doc.actions.map((a) => [a.name, a]));
    assert.deepEqual(byName['retrigger-multiple']!.context, []);
    assert.deepEqual(byName['add-new-jobs']!.context, []);
    assert.deepEqual(byName['retrigger']!.context, [{ retrigger: 'true' }]);
    assert.deepEqual(byName['rebuild-mozharness-archive']!.context, [
      { kind: 'mozharness-archive' },
    ]);
    assert.equal(byName['cancel']!.schema, undefined);
  });

  it('renders a hookPayload, in Treeherder context, that the action hook accepts', () => {
    const action = selectAction(doc.actions as any, 'retrigger-multiple', null)!;
    const input = { requests: [{ tasks: ['build-linux64/opt'], times: 2 }] };
    const payload: any = jsone(action.hookPayload as object, {
      taskGroupId: push.decisionTaskId,
      taskId: null,
      input,
      ...doc.variables,
    });
    const ajv = new Ajv({ strict: false });
    const valid = ajv.validate(actionTriggerSchema(), structuredClone(payload));
    assert.ok(valid, JSON.stringify(ajv.errors));
    assert.deepEqual(payload.user, { input, taskId: null, taskGroupId: push.decisionTaskId });
    assert.equal(payload.decision.action.cb_name, 'retrigger-multiple');
    assert.equal(payload.decision.action.taskGroupId, push.decisionTaskId);
    assert.deepEqual(payload.decision.repository, {
      url: 'https://hg.example.com/mozilla-central',
      project: 'mozilla-central',
      level: '3',
    });
    assert.equal(payload.decision.push.pushlog_id, '42');
  });

  it('selects like Treeherder: first action by name whose context matches', () => {
    const tags = { kind: 'mozharness-archive', retrigger: 'true' };
    assert.equal(selectAction(doc.actions as any, 'retrigger', tags)!.name, 'retrigger');
    assert.equal(selectAction(doc.actions as any, 'retrigger', { kind: 'build' }), undefined);
    assert.equal(selectAction(doc.actions as any, 'retrigger', null), undefined);
    assert.equal(selectAction(doc.actions as any, 'cancel', { kind: 'test' })!.name, 'cancel');
    assert.ok(contextMatches([{}], {}));
    assert.ok(!contextMatches([], {}));
  });

  it('refuses parameters it cannot render from, and bad trust domains or hashes', () => {
    assert.throws(() => actionPush({ project: 'p' }), /lack level, repository, revision/);
    assert.throws(
      () =>
        renderActionsJson(push.parameters, {
          decisionTaskId: 'x',
          tcymlHash: 'nothex',
          trustDomain: 'm',
        }),
      /tcymlHash/,
    );
  });

  it('escapes parameters so json-e passes them through unchanged', () => {
    const params = { ...push.parameters, owner: 'we${ird}' };
    const d = renderActionsJson(params, {
      decisionTaskId: push.decisionTaskId,
      tcymlHash: tcymlHash(TCYML),
      trustDomain: 'mozharness',
      includeParameters: true,
    });
    const payload = jsone(d.actions[0]!.hookPayload as object, {
      taskGroupId: 'g',
      taskId: null,
      input: {},
    }) as any;
    assert.equal(payload.decision.parameters.owner, 'we${ird}');
    assert.equal(payload.decision.push.owner, 'we${ird}');
  });
});

describe('actions: input validation', () => {
  it('applies defaults and lists every problem', () => {
    const ok = validateActionInput('action-add-new-jobs.json', { tasks: ['a'] });
    assert.ok(ok.ok);
    assert.equal((ok as any).value.times, 1);
    const bad = validateActionInput('action-retrigger-multiple.json', {
      requests: [{ tasks: [], times: 0 }],
      extra: 1,
    });
    assert.ok(!bad.ok);
    const errors = (bad as any).errors.join('\n');
    assert.match(errors, /input\.extra is not a known field/);
    assert.match(errors, /input\.requests\[0\]\.tasks must list at least 1/);
    assert.match(errors, /input\.requests\[0\]\.times must be >= 1/);
    assert.ok(!validateActionInput('action-retrigger.json', { times: 101 }).ok);
    assert.ok(validateActionInput('action-retrigger.json', {}).ok);
  });
});

describe('actions: hooks and roles', () => {
  it('wraps .taskcluster.yml tasks[0] in the action context, named by its hash', () => {
    const h = actionHookDefinition({ tcyml: TCYML, trustDomain: 'mozharness', level: 1 });
    assert.equal(h.hookGroupId, 'project-mozharness');
    assert.equal(h.hookId, `in-tree-action-1-generic/${tcymlHash(TCYML)}`);
    const task = jsone(h.definition.task, {
      payload: {
        decision: {
          action: {
            name: 'cancel',
            title: 'Cancel',
            description: 'd',
            taskGroupId: 'G',
            cb_name: 'cancel',
            symbol: 'cx',
          },
          repository: { url: 'https://hg.example.com/try', project: 'try', level: '1' },
          push: { owner: 'o', revision: 'r', pushlog_id: '1' },
        },
        user: { input: null, taskId: 'T', taskGroupId: 'G' },
      },
      taskId: 'OWN',
      firedBy: 'triggerHook',
    }) as any;
    assert.equal(task.taskId, 'OWN');
    assert.equal(task.metadata.name, 'Action: Cancel');
    assert.throws(
      () => actionHookDefinition({ tcyml: 'tasks: {}', trustDomain: 'm', level: 1 }),
      /non-empty array/,
    );
    const roles = actionRoles({
      trustDomain: 'mozharness',
      level: 1,
      repositories: ['https://hg.example.com/try'],
      taskQueueIds: ['mozharness-1/archive'],
      projectId: 'mozharness',
      indexPrefix: 'mozharness',
    });
    assert.deepEqual(roles[0]!.scopes, ['assume:repo:hg.example.com/try:action:generic']);
    assert.ok(roles[1]!.scopes.includes('queue:scheduler-id:mozharness-level-1'));
    assert.ok(!roles[1]!.scopes.some((s) => s.includes('level-3')));
  });
});

describe('actions: graph helpers', () => {
  it('rebases every timestamp and replaces task ids as whole tokens', () => {
    const push = makePush({ created: new Date('2026-01-01T00:00:00.000Z') });
    const t = push.taskGraph[push.ids.build!].task;
    const now = new Date('2026-02-01T00:00:00.000Z');
    const r = rebaseTimestamps(t, now);
    assert.equal(r.created, now.toISOString());
    assert.equal(Date.parse(r.deadline) - Date.parse(r.created), 24 * 3600e3);
    assert.equal((r.payload as any).artifacts['public/build'].expires, '2026-03-01T00:00:00.000Z');
    const n = slugid();
    const x = replaceTaskIds(r, new Map([[push.ids.archive!, n]]));
    assert.ok((x.payload as any).env.MOZHARNESS_URL.includes(`/task/${n}/`));
    assert.deepEqual(x.dependencies, [n]);
  });

  it('finds the downstream closure among scheduled labels', () => {
    const push = makePush();
    const v = view(push);
    assert.deepEqual([...downstreamClosure(v, ['mozharness-archive'])].sort(), [
      'build-linux64/opt',
      'test-linux64/opt-mochitest-plain-1',
    ]);
    assert.deepEqual(
      [...downstreamClosure(v, ['build-linux64/opt'])],
      ['test-linux64/opt-mochitest-plain-1'],
    );
  });
});

describe('actions: plan', () => {
  const now = new Date();

  it('re-creates a label `times` times, reusing completed upstream tasks that outlive the deadline', async () => {
    const push = makePush();
    const w = world(push);
    const plan = await planTasks({
      view: view(push),
      requests: [{ labels: ['test-linux64/opt-mochitest-plain-1'], times: 3 }],
      now,
      ownTaskId: OWN,
      newTaskId: slugid,
      oracle: oracle(w),
    });
    assert.equal(plan.tasks.length, 3);
    const ids = new Set(plan.tasks.map((t) => t.taskId));
    assert.equal(ids.size, 3);
    for (const t of plan.tasks) {
      assert.deepEqual(t.dependencies, { mozharness: push.ids.archive, build: push.ids.build });
      assert.ok(t.task.dependencies!.includes(OWN));
      assert.equal(t.task.taskGroupId, push.decisionTaskId);
      assert.equal(t.task.created, now.toISOString());
      assert.equal(t.task.extra!.parent, OWN);
      assert.deepEqual((t.task.extra as any).treeherder.symbol, 'M(1)');
      assertUpstream('/schemas/queue/v1/create-task-request.json', t.task);
    }
    assert.deepEqual(plan.dependencies.map((d) => [d.label, d.decision]).sort(), [
      ['build-linux64/opt', 'reuse'],
      ['mozharness-archive', 'reuse'],
    ]);
  });

  it('rejects unknown labels, naming them, before anything', async () => {
    const push = makePush();
    await assert.rejects(
      planTasks({
        view: view(push),
        requests: [{ labels: ['build-linux64/opt', 'no-such-task', 'nor-this'], times: 1 }],
        now,
        newTaskId: slugid,
        oracle: oracle(world(push)),
      }),
      (e: unknown) =>
        isArchiveError(e, 'not-found') && /'no-such-task', 'nor-this'/.test((e as Error).message),
    );
  });

  it('re-resolves an archive whose artifact expires too soon by tree digest (same level or above)', async () => {
    const push = makePush({ level: '1' });
    const w = world(push);
    w.artifacts.set(push.ids.archive!, new Date(now.getTime() + 3600e3)); // 1 h: too soon
    const other = slugid();
    w.statuses.set(other, {
      taskId: other,
      state: 'completed',
      expires: new Date(now.getTime() + 90 * 864e5).toISOString(),
    });
    w.artifacts.set(other, new Date(now.getTime() + 90 * 864e5));
    w.index.set(`mozharness.cache.level-3.mozharness.hash.${DIGEST}`, {
      namespace: `mozharness.cache.level-3.mozharness.hash.${DIGEST}`,
      taskId: other,
      rank: 1,
      data: { sha256: SHA256 },
      expires: new Date(now.getTime() + 90 * 864e5).toISOString(),
    });
    const plan = await planTasks({
      view: view(push),
      requests: [{ labels: ['build-linux64/opt'], times: 1 }],
      now,
      newTaskId: slugid,
      oracle: oracle(w),
    });
    assert.equal(plan.tasks.length, 1);
    const t = plan.tasks[0]!;
    assert.equal(t.dependencies.mozharness, other);
    assert.ok((t.task.payload as any).env.MOZHARNESS_URL.includes(`/task/${other}/`));
    assert.ok(!JSON.stringify(t.task).includes(push.ids.archive!));
    assert.equal(plan.dependencies[0]!.decision, 'found-by-digest');
    assert.equal(plan.labelToTaskId['mozharness-archive'], other);
  });

  it('never reads a lower level cache, and schedules a new archive first when nothing is usable', async () => {
    const push = makePush({ level: '3' });
    const w = world(push);
    w.statuses.set(push.ids.archive!, {
      taskId: push.ids.archive!,
      state: 'completed',
      expires: new Date(now.getTime() + 3600e3).toISOString(),
    });
    const low = slugid();
    w.statuses.set(low, {
      taskId: low,
      state: 'completed',
      expires: new Date(now.getTime() + 90 * 864e5).toISOString(),
    });
    w.artifacts.set(low, new Date(now.getTime() + 90 * 864e5));
    w.index.set(`mozharness.cache.level-1.mozharness.hash.${DIGEST}`, {
      namespace: `mozharness.cache.level-1.mozharness.hash.${DIGEST}`,
      taskId: low,
      rank: 1,
      data: {},
      expires: new Date(now.getTime() + 90 * 864e5).toISOString(),
    });
    const plan = await planTasks({
      view: view(push),
      requests: [{ labels: ['test-linux64/opt-mochitest-plain-1'], times: 2 }],
      now,
      newTaskId: slugid,
      oracle: oracle(w),
    });
    // a new archive once, then the build is reused, then two tests pointing at the new archive
    assert.deepEqual(
      plan.tasks.map((t) => [t.label, t.copy]),
      [
        ['mozharness-archive', 0],
        ['test-linux64/opt-mochitest-plain-1', 1],
        ['test-linux64/opt-mochitest-plain-1', 2],
      ],
    );
    const archive = plan.tasks[0]!;
    for (const t of plan.tasks.slice(1)) {
      assert.equal(t.dependencies.mozharness, archive.taskId);
      assert.ok(t.task.dependencies!.includes(archive.taskId));
      assert.ok((t.task.payload as any).env.MOZHARNESS_URL.includes(archive.taskId));
      assert.equal(t.dependencies.build, push.ids.build);
    }
    assert.ok(!JSON.stringify(plan).includes(low));
  });

  it('re-creates failed upstream tasks; downstream: true re-creates the dependents on the new task', async () => {
    const push = makePush();
    const w = world(push);
    const plan = await planTasks({
      view: view(push),
      requests: [{ labels: ['build-linux64/opt'], times: 1 }],
      downstream: true,
      now,
      newTaskId: slugid,
      oracle: oracle(w),
    });
    assert.deepEqual(
      plan.tasks.map((t) => t.label),
      ['build-linux64/opt', 'test-linux64/opt-mochitest-plain-1'],
    );
    assert.equal(plan.tasks[1]!.dependencies.build, plan.tasks[0]!.taskId);
    assert.ok(
      (plan.tasks[1]!.task.payload as any).env.GECKO_INSTALLER_URL.includes(plan.tasks[0]!.taskId),
    );

    w.statuses.get(push.ids.build!)!.state = 'failed';
    const plan2 = await planTasks({
      view: view(push),
      requests: [{ labels: ['test-linux64/opt-mochitest-plain-1'], times: 1 }],
      now,
      newTaskId: slugid,
      oracle: oracle(w),
    });
    assert.deepEqual(
      plan2.tasks.map((t) => [t.label, t.copy]),
      [
        ['build-linux64/opt', 0],
        ['test-linux64/opt-mochitest-plain-1', 1],
      ],
    );
  });

  it('rebuild: a fresh archive at a higher rank, leaving `latest` alone when a newer push holds it', async () => {
    const push = makePush();
    const w = world(push);
    const newer = slugid();
    w.index.set('mozharness.v1.mozilla-central.latest.mozharness', {
      namespace: 'mozharness.v1.mozilla-central.latest.mozharness',
      taskId: newer,
      rank: 1700000001,
      data: {},
      expires: new Date(now.getTime() + 864e5).toISOString(),
    });
    const plan = await planTasks({
      view: view(push),
      requests: [{ labels: ['mozharness-archive'], times: 1 }],
      rebuild: ['mozharness-archive'],
      now,
      newTaskId: slugid,
      oracle: oracle(w),
    });
    assert.equal(plan.tasks.length, 1);
    const t = plan.tasks[0]!;
    assert.equal((t.task.extra as any).index.rank, 1700000001);
    assert.ok(!t.task.routes!.includes('index.mozharness.v1.mozilla-central.latest.mozharness'));
    assert.ok(t.task.routes!.includes(`index.mozharness.cache.level-3.mozharness.hash.${DIGEST}`));
  });
});

describe('actions: archives reused from another push', () => {
  it("a reused archive that has to be rebuilt becomes this push's (routes, rank), same tree", async () => {
    const other = makePush({ project: 'autoland' });
    const push = makePush();
    // this push reused the other push's archive: no archive entry in its task graph
    const reusedId = other.ids.archive!;
    delete push.taskGraph[push.ids.archive!];
    push.labelToTaskId['mozharness-archive'] = reusedId;
    for (const id of [push.ids.build!, push.ids.test1!]) {
      const e = push.taskGraph[id];
      e.dependencies.mozharness = reusedId;
      e.task = replaceTaskIds(e.task, new Map([[push.ids.archive!, reusedId]]));
    }
    const w = world(push);
    w.statuses.set(reusedId, {
      taskId: reusedId,
      state: 'completed',
      expires: new Date(Date.now() + 3600e3).toISOString(),
    });
    const o = oracle(w);
    o.task = async (id) => (id === reusedId ? other.taskGraph[reusedId].task : null);
    const plan = await planTasks({
      view: view(push),
      requests: [{ labels: ['build-linux64/opt'], times: 1 }],
      now: new Date(),
      newTaskId: slugid,
      oracle: o,
      retarget: retargetArchiveTask(push.parameters),
    });
    assert.deepEqual(
      plan.tasks.map((t) => t.label),
      ['mozharness-archive', 'build-linux64/opt'],
    );
    const archive = plan.tasks[0]!.task;
    assert.equal(archive.taskGroupId, push.decisionTaskId);
    assert.ok(archive.routes!.includes(`tc-treeherder.v2.mozilla-central.${'a'.repeat(40)}.42`));
    assert.ok(!archive.routes!.some((r) => r.includes('autoland')), archive.routes!.join(' '));
    assert.ok(archive.routes!.includes(`index.mozharness.cache.level-3.mozharness.hash.${DIGEST}`));
    assert.ok(archive.routes!.includes('index.mozharness.v1.mozilla-central.latest.mozharness'));
    assert.equal((archive.extra as any).index.rank, push.parameters.pushdate);
    assert.equal(plan.tasks[1]!.dependencies.mozharness, plan.tasks[0]!.taskId);
    assertUpstream('/schemas/queue/v1/create-task-request.json', archive);
  });
});

describe('actions: action-callback with fake clients', () => {
  function fakeClients(push: PushFixture, w: FakeWorld, files: Map<string, unknown>) {
    const created: Array<{ taskId: string; task: any }> = [];
    const canceled: string[] = [];
    const group: any[] = [];
    const queue: any = {
      async getLatestArtifact(taskId: string, name: string) {
        const key = `${taskId}/${name}`;
        if (!files.has(key)) throw Object.assign(new Error('not found'), { statusCode: 404 });
        return { storageType: 'reference', url: `http://127.0.0.1:9/${encodeURIComponent(key)}` };
      },
      async listTaskGroup() {
        return { tasks: group };
      },
      async status(id: string) {
        const s = w.statuses.get(id);
        if (!s) throw Object.assign(new Error('nf'), { statusCode: 404 });
        return { status: s };
      },
      async listLatestArtifacts(id: string) {
        const e = w.artifacts.get(id);
        return {
          artifacts: e
            ? [{ name: 'public/build/mozharness.tar.gz', expires: e.toISOString() }]
            : [],
        };
      },
      async task(id: string) {
        for (const e of Object.values(push.taskGraph))
          if (e.task && id in push.taskGraph) return push.taskGraph[id].task;
        throw Object.assign(new Error('nf'), { statusCode: 404 });
      },
      async createTask(taskId: string, task: any) {
        created.push({ taskId, task });
        return { status: { taskId } };
      },
      async cancelTask(id: string) {
        canceled.push(id);
        return {};
      },
    };
    const index: any = {
      async findTasksAtIndex({ indexes }: { indexes: string[] }) {
        return { tasks: indexes.flatMap((ns) => (w.index.has(ns) ? [w.index.get(ns)] : [])) };
      },
      async findTask() {
        throw Object.assign(new Error('nf'), { statusCode: 404 });
      },
    };
    const fetchImpl = (async (url: string) => {
      const key = decodeURIComponent(new URL(url).pathname.slice(1));
      const body = files.get(key);
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      return new Response(text, { status: 200 });
    }) as unknown as typeof fetch;
    return { queue, index, fetchImpl, created, canceled, group };
  }

  function decisionFiles(push: PushFixture): Map<string, unknown> {
    const d = push.decisionTaskId;
    return new Map<string, unknown>([
      [`${d}/public/parameters.yml`, `project: mozilla-central\nlevel: '3'\n`],
      [`${d}/public/task-graph.json`, push.taskGraph],
      [`${d}/public/label-to-taskid.json`, push.labelToTaskId],
      [`${d}/public/full-task-graph.json`, push.fullGraph],
    ]);
  }

  it('creates nothing when the input fails its schema or a label is unknown', async () => {
    const push = makePush();
    const c = fakeClients(push, world(push), decisionFiles(push));
    await assert.rejects(
      runActionCallback(
        {
          callback: 'retrigger-multiple',
          taskGroupId: push.decisionTaskId,
          taskId: null,
          input: { requests: [{ tasks: ['x'], times: 500 }] },
        },
        { queue: c.queue, index: c.index, fetchImpl: c.fetchImpl },
      ),
      /input\.requests\[0\]\.times must be <= 100/,
    );
    await assert.rejects(
      runActionCallback(
        {
          callback: 'retrigger-multiple',
          taskGroupId: push.decisionTaskId,
          taskId: null,
          input: { requests: [{ tasks: ['build-linux64/opt'], times: 2 }, { tasks: ['bogus'] }] },
        },
        { queue: c.queue, index: c.index, fetchImpl: c.fetchImpl },
      ),
      /unknown task label\(s\): 'bogus'/,
    );
    assert.equal(c.created.length, 0);
  });

  it("add-new-jobs accepts any label of the decision task's runnable-jobs.json", async () => {
    const push = makePush();
    const listed = 'test-android/opt-robocop-1';
    const v = mergePushView({
      decisionTaskId: push.decisionTaskId,
      parameters: push.parameters,
      graphs: [
        {
          taskId: push.decisionTaskId,
          taskGraph: push.taskGraph,
          labelToTaskId: push.labelToTaskId,
        },
      ],
      fullGraph: {},
      runnableJobs: { [listed]: { symbol: 'rc1', platform: 'android', collection: { opt: true } } },
    });
    assert.ok(v.fullLabels.has(listed), 'a runnable job is a label add-new-jobs may schedule');
    const oracle: PlanOracle = {
      status: async () => undefined,
      artifactExpires: async () => undefined,
      findIndexed: async () => [],
    } as unknown as PlanOracle;
    // the label check passes (what follows needs the label's definition)
    await assert.rejects(
      planTasks({
        view: v,
        oracle,
        now: new Date(),
        newTaskId: slugid,
        requests: [{ labels: [listed], times: 1 }],
      }),
      (e: Error) => !/unknown task label/.test(e.message),
    );
    await assert.rejects(
      planTasks({
        view: v,
        oracle,
        now: new Date(),
        newTaskId: slugid,
        requests: [{ labels: ['bogus'], times: 1 }],
      }),
      /unknown task label\(s\): 'bogus'/,
    );
  });

  it('add-new-jobs of a label the push left out needs its definition, and says so', async () => {
    const push = makePush();
    const c = fakeClients(push, world(push), decisionFiles(push));
    await assert.rejects(
      runActionCallback(
        {
          callback: 'add-new-jobs',
          taskGroupId: push.decisionTaskId,
          taskId: null,
          input: { tasks: ['build-macosx64/opt'] },
        },
        { queue: c.queue, index: c.index, fetchImpl: c.fetchImpl },
      ),
      /no task definition for label\(s\) 'build-macosx64\/opt'/,
    );
    assert.equal(c.created.length, 0);
  });

  it('retrigger-multiple creates parents first and writes task-graph.json / label-to-taskid.json', async () => {
    const push = makePush();
    const w = world(push);
    w.statuses.get(push.ids.build!)!.state = 'exception';
    const c = fakeClients(push, w, decisionFiles(push));
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'actions-'));
    try {
      const res = await runActionCallback(
        {
          callback: 'retrigger-multiple',
          taskGroupId: push.decisionTaskId,
          taskId: null,
          input: { requests: [{ tasks: ['test-linux64/opt-mochitest-plain-1'], times: 2 }] },
          ownTaskId: OWN,
        },
        { queue: c.queue, index: c.index, fetchImpl: c.fetchImpl, outDir: out },
      );
      assert.deepEqual(
        c.created.map((t) => t.task.metadata.name),
        [
          'build-linux64/opt',
          'test-linux64/opt-mochitest-plain-1',
          'test-linux64/opt-mochitest-plain-1',
        ],
      );
      const tg = JSON.parse(await fs.readFile(path.join(out, 'task-graph.json'), 'utf8'));
      const l2t = JSON.parse(await fs.readFile(path.join(out, 'label-to-taskid.json'), 'utf8'));
      assert.equal(Object.keys(tg).length, 3);
      assert.equal(l2t['build-linux64/opt'], c.created[0]!.taskId);
      assert.equal(l2t['test-linux64/opt-mochitest-plain-1'], c.created[2]!.taskId);
      assert.equal(res.created.length, 3);
    } finally {
      await fs.rm(out, { recursive: true, force: true });
    }
  });

  it('retrigger refuses a task outside its context; cancel-all cancels unresolved tasks only', async () => {
    const push = makePush();
    push.taskGraph[push.ids.build!].task.tags.retrigger = 'false';
    const c = fakeClients(push, world(push), decisionFiles(push));
    await assert.rejects(
      runActionCallback(
        {
          callback: 'retrigger',
          taskGroupId: push.decisionTaskId,
          taskId: push.ids.build!,
          input: {},
        },
        { queue: c.queue, index: c.index, fetchImpl: c.fetchImpl },
      ),
      /does not apply to task/,
    );
    c.group.push(
      { status: { taskId: push.decisionTaskId, state: 'completed' }, task: {} },
      { status: { taskId: push.ids.build, state: 'running' }, task: {} },
      { status: { taskId: push.ids.test1, state: 'unscheduled' }, task: {} },
      { status: { taskId: push.ids.archive, state: 'completed' }, task: {} },
      { status: { taskId: OWN, state: 'running' }, task: { tags: { kind: 'action-callback' } } },
    );
    const res = await runActionCallback(
      {
        callback: 'cancel-all',
        taskGroupId: push.decisionTaskId,
        taskId: null,
        input: null,
        ownTaskId: OWN,
      },
      { queue: c.queue, index: c.index, fetchImpl: c.fetchImpl },
    );
    assert.deepEqual(res.canceled.sort(), [push.ids.build, push.ids.test1].sort());
  });

  it('reads the ACTION_* environment as .taskcluster.yml sets it', () => {
    const ctx = actionContextFromEnv({
      ACTION_CALLBACK: 'retrigger',
      ACTION_TASK_GROUP_ID: 'G',
      ACTION_TASK_ID: '"abc"',
      ACTION_INPUT: '{"times":2}',
      TASK_ID: 'OWN',
    });
    assert.deepEqual(ctx, {
      callback: 'retrigger',
      taskGroupId: 'G',
      taskId: 'abc',
      input: { times: 2 },
      ownTaskId: 'OWN',
    });
    assert.equal(actionContextFromEnv({ ACTION_TASK_ID: 'null' }).taskId, null);
    assert.ok(ACTIONS.length === 6);
  });
});
