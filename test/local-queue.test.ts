// The embedded Queue over real HTTP with the real taskcluster-client: createTask checks,
// scopes, the task life cycle (dependencies, claims, retries, deadlines, rerun, cancel),
// claimWork long polling, persistence. Every request/response body is checked against upstream.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded } from '../src/local/embedded.js';
import { ApiError, ManualClock } from '../src/local/framework.js';
import { indexClient, queueClient } from '../src/taskcluster/client.js';
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

async function claimOne(h: QueueHarness, workerId = 'w1', queueId = TASK_QUEUE_ID) {
  const res = await call(h.client, 'claimWork', queueId, {
    workerGroup: 'wg',
    workerId,
    tasks: 1,
  });
  assert.equal(res.tasks.length, 1, 'expected one claimed task');
  return res.tasks[0];
}

describe('local queue: createTask', function () {
  let h: QueueHarness;
  before(async () => {
    h = await startQueue();
  });
  after(async () => {
    await h.close();
  });

  it('creates a pending task with upstream defaults, and serves task and status', async () => {
    const taskId = slugid();
    const def = taskDef(h.clock);
    const res = await call(h.client, 'createTask', taskId, def);
    assert.equal(res.status.state, 'pending');
    assert.equal(res.status.runs[0].reasonCreated, 'scheduled');
    assert.equal(res.status.taskGroupId, taskId);
    const task = await call(h.client, 'task', taskId);
    assert.equal(task.provisionerId, 'proj-test');
    assert.equal(task.workerType, 'worker');
    assert.equal(task.schedulerId, '-');
    assert.equal(task.projectId, 'none');
    assert.equal(task.priority, 'lowest');
    assert.equal(task.retries, 5);
    assert.equal(task.requires, 'all-completed');
    assert.deepEqual([task.routes, task.dependencies, task.scopes], [[], [], []]);
    assert.deepEqual([task.tags, task.extra], [{}, {}]);
    const expires = new Date(def.deadline);
    expires.setUTCFullYear(expires.getUTCFullYear() + 1);
    assert.equal(task.expires, expires.toISOString());
    const status = await call(h.client, 'status', taskId);
    assert.deepEqual(status, res);
  });

  it('accepts provisionerId/workerType instead of taskQueueId, and refuses a mismatch', async () => {
    const { taskQueueId: _q, ...rest } = taskDef(h.clock);
    const def = { ...rest, provisionerId: 'proj-test', workerType: 'other' };
    const res = await call(h.client, 'createTask', slugid(), def);
    assert.equal(res.status.taskQueueId, 'proj-test/other');
    const err = await rejection(
      h.client.createTask(slugid(), { ...def, taskQueueId: 'proj-test/worker' }),
    );
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'InputError');
  });

  it('is idempotent for an identical definition and answers 409 for a different one', async () => {
    const taskId = slugid();
    const def = taskDef(h.clock, { routes: ['index.a.b'] });
    const first = await call(h.client, 'createTask', taskId, def);
    const again = await call(h.client, 'createTask', taskId, { ...def });
    assert.deepEqual(again, first);
    const err = await rejection(h.client.createTask(taskId, { ...def, retries: 2 }));
    assert.equal(err.statusCode, 409);
    assert.equal(err.code, 'RequestConflict');
  });

  it('enforces created, deadline and expires limits as upstream', async () => {
    const now = h.clock.now().getTime();
    const cases: Array<[string, Partial<ReturnType<typeof taskDef>>]> = [
      ['created 16 min ago', { created: new Date(now - 16 * MIN).toISOString() }],
      ['created 16 min ahead', { created: new Date(now + 16 * MIN).toISOString() }],
      ['deadline in the past', { deadline: new Date(now - MIN).toISOString() }],
      [
        'deadline > 5 days',
        { deadline: new Date(now + 5 * 24 * 60 * MIN + 16 * MIN).toISOString() },
      ],
      ['expires before deadline', { expires: new Date(now + 30 * MIN).toISOString() }],
    ];
    for (const [what, over] of cases) {
      const err = await rejection(h.client.createTask(slugid(), taskDef(h.clock, over)));
      assert.equal(err.statusCode, 400, what);
      assert.equal(err.code, 'InputError', what);
    }
    // 5 days + a few minutes of slack is still fine
    await call(
      h.client,
      'createTask',
      slugid(),
      taskDef(h.clock, { deadline: new Date(now + 5 * 24 * 60 * MIN + 5 * MIN).toISOString() }),
    );
  });

  it('validates the body against the create-task schema (routes, dependencies, fields)', async () => {
    const routes = Array.from({ length: 65 }, (_, i) => `index.r${i}`);
    const tooMany = await rejection(h.client.createTask(slugid(), taskDef(h.clock, { routes })));
    assert.equal(tooMany.statusCode, 400);
    assert.equal(tooMany.code, 'InputValidationError');
    assert.match(tooMany.message, /routes/);
    const long = await rejection(
      h.client.createTask(slugid(), taskDef(h.clock, { routes: ['x'.repeat(250)] })),
    );
    assert.equal(long.code, 'InputValidationError');
    const deps = Array.from({ length: 10_001 }, () => slugid());
    const manyDeps = await rejection(
      h.client.createTask(slugid(), taskDef(h.clock, { dependencies: deps })),
    );
    assert.equal(manyDeps.code, 'InputValidationError');
    assert.match(manyDeps.message, /dependencies/);
    const extra = await rejection(
      h.client.createTask(slugid(), { ...taskDef(h.clock), colour: 'red' } as any),
    );
    assert.equal(extra.code, 'InputValidationError');
    const requires = await rejection(
      h.client.createTask(slugid(), taskDef(h.clock, { requires: 'any' as any })),
    );
    assert.equal(requires.code, 'InputValidationError');
    // 64 routes is the limit, and allowed
    await call(h.client, 'createTask', slugid(), taskDef(h.clock, { routes: routes.slice(0, 64) }));
  });

  it('refuses missing dependencies and dependencies expiring before the deadline', async () => {
    const missing = slugid();
    const err = await rejection(
      h.client.createTask(slugid(), taskDef(h.clock, { dependencies: [missing] })),
    );
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'InputError');
    assert.match(err.message, new RegExp(missing));

    const now = h.clock.now().getTime();
    const shortLived = slugid();
    await call(
      h.client,
      'createTask',
      shortLived,
      taskDef(h.clock, {
        deadline: new Date(now + 10 * MIN).toISOString(),
        expires: new Date(now + 20 * MIN).toISOString(),
      }),
    );
    const dependentId = slugid();
    const expiring = await rejection(
      h.client.createTask(
        dependentId,
        taskDef(h.clock, {
          dependencies: [shortLived],
          deadline: new Date(now + 60 * MIN).toISOString(),
        }),
      ),
    );
    assert.equal(expiring.code, 'InputError');
    assert.match(expiring.message, /expire/);
    // nothing was half-created
    const gone = await rejection(h.client.status(dependentId));
    assert.equal(gone.statusCode, 404);
  });

  it('keeps one schedulerId per task group (409 otherwise)', async () => {
    const group = slugid();
    await call(h.client, 'createTask', slugid(), taskDef(h.clock, { taskGroupId: group }));
    const err = await rejection(
      h.client.createTask(slugid(), taskDef(h.clock, { taskGroupId: group, schedulerId: 'other' })),
    );
    assert.equal(err.statusCode, 409);
    assert.equal(err.code, 'RequestConflict');
  });

  it('lists a task group and dependent tasks with continuation tokens', async () => {
    const group = slugid();
    const parent = slugid();
    await call(h.client, 'createTask', parent, taskDef(h.clock, { taskGroupId: group }));
    const children: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = slugid();
      children.push(id);
      await call(
        h.client,
        'createTask',
        id,
        taskDef(h.clock, { taskGroupId: group, dependencies: [parent] }),
      );
    }
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const q: Record<string, string | number> = { limit: 2 };
      if (token) q.continuationToken = token;
      const page = await call(h.client, 'listTaskGroup', group, q);
      assert.equal(page.taskGroupId, group);
      assert.equal(page.schedulerId, '-');
      seen.push(...page.tasks.map((t: any) => t.status.taskId));
      token = page.continuationToken;
      pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [parent, ...children]);

    const dependents: string[] = [];
    token = undefined;
    do {
      const q: Record<string, string | number> = { limit: 3 };
      if (token) q.continuationToken = token;
      const page = await call(h.client, 'listDependentTasks', parent, q);
      dependents.push(...page.tasks.map((t: any) => t.status.taskId));
      for (const t of page.tasks) assert.equal(t.status.state, 'unscheduled');
      token = page.continuationToken;
    } while (token);
    assert.deepEqual(dependents.sort(), [...children].sort());

    const bad = await rejection(h.client.listTaskGroup(group, { continuationToken: '%%%' }));
    assert.equal(bad.statusCode, 400);
    const unknown = await rejection(h.client.listTaskGroup(slugid()));
    assert.equal(unknown.statusCode, 404);
  });
});

describe('local queue: scopes', function () {
  let h: QueueHarness;
  before(async () => {
    h = await startQueue();
  });
  after(async () => {
    await h.close();
  });

  const base = [
    'queue:create-task:project:none',
    'queue:scheduler-id:-',
    `queue:create-task:lowest:${TASK_QUEUE_ID}`,
  ];

  it('needs queue:route:<route> for every route (403 otherwise)', async () => {
    const client = h.clientWith(base);
    await call(client, 'createTask', slugid(), taskDef(h.clock));
    const err = await rejection(
      client.createTask(slugid(), taskDef(h.clock, { routes: ['index.project.x'] })),
    );
    assert.equal(err.statusCode, 403);
    assert.equal(err.code, 'InsufficientScopes');
    assert.match(err.message, /queue:route:index\.project\.x/);
    const allowed = h.clientWith([...base, 'queue:route:index.project.*']);
    await call(allowed, 'createTask', slugid(), taskDef(h.clock, { routes: ['index.project.x'] }));
  });

  it('needs task.scopes, the scheduler id, the project and a priority at or above the task', async () => {
    const client = h.clientWith(base);
    const noTaskScopes = await rejection(
      client.createTask(slugid(), taskDef(h.clock, { scopes: ['secrets:get:x'] })),
    );
    assert.equal(noTaskScopes.statusCode, 403);
    const otherScheduler = await rejection(
      client.createTask(slugid(), taskDef(h.clock, { schedulerId: 'gecko-level-3' })),
    );
    assert.equal(otherScheduler.statusCode, 403);
    const otherProject = await rejection(
      client.createTask(slugid(), taskDef(h.clock, { projectId: 'secret-project' })),
    );
    assert.equal(otherProject.statusCode, 403);
    const higher = await rejection(
      client.createTask(slugid(), taskDef(h.clock, { priority: 'high' })),
    );
    assert.equal(higher.statusCode, 403);

    // a scope for a higher priority covers lower ones, not the other way round
    const high = h.clientWith([
      'queue:create-task:project:none',
      'queue:scheduler-id:-',
      `queue:create-task:high:${TASK_QUEUE_ID}`,
    ]);
    await call(high, 'createTask', slugid(), taskDef(h.clock, { priority: 'low' }));
    const highest = await rejection(
      high.createTask(slugid(), taskDef(h.clock, { priority: 'highest' })),
    );
    assert.equal(highest.statusCode, 403);
  });

  it('refuses unauthenticated reads of tasks and status', async () => {
    const taskId = slugid();
    await call(h.client, 'createTask', taskId, taskDef(h.clock));
    assert.equal((await rejection(h.anonymous.task(taskId))).statusCode, 403);
    assert.equal((await rejection(h.anonymous.status(taskId))).statusCode, 403);
    const reader = h.clientWith([`queue:status:${taskId}`]);
    await call(reader, 'status', taskId);
    assert.equal((await rejection(reader.task(taskId))).statusCode, 403);
  });

  it('createTaskAs checks the given scopes like createTask', async () => {
    const def = taskDef(h.clock, { routes: ['index.hooks.x'] });
    assert.throws(
      () => h.queue.createTaskAs(slugid(), def, base),
      (e: unknown) => e instanceof ApiError && e.code === 'InsufficientScopes',
    );
    const taskId = slugid();
    const res = h.queue.createTaskAs(taskId, def, [...base, 'queue:route:index.hooks.*']);
    assertUpstream('/schemas/queue/v1/task-status-response.json', res);
    assert.equal(res.status.state, 'pending');
  });

  it('temporary credentials of a claimed run work for that run only', async () => {
    const a = slugid();
    const b = slugid();
    await call(h.client, 'createTask', a, taskDef(h.clock, { taskQueueId: 'proj-test/creds' }));
    await call(h.client, 'createTask', b, taskDef(h.clock, { taskQueueId: 'proj-test/creds' }));
    const res = await call(h.client, 'claimWork', 'proj-test/creds', {
      workerGroup: 'wg',
      workerId: 'w1',
      tasks: 2,
    });
    assert.equal(res.tasks.length, 2);
    const [ca, cb] = [a, b].map((id) => res.tasks.find((t: any) => t.status.taskId === id));
    assert.match(ca.credentials.clientId, new RegExp(`^task-client/${a}/0/on/wg/w1/until/`));
    const cert = JSON.parse(ca.credentials.certificate);
    assert.deepEqual(cert.scopes, [
      `queue:reclaim-task:${a}/0`,
      `queue:resolve-task:${a}/0`,
      `queue:create-artifact:${a}/0`,
    ]);
    assert.equal(cert.expiry, Date.parse(ca.takenUntil));
    const asA = h.clientFor(ca.credentials);
    // used on another task: refused
    const wrong = await rejection(asA.reportCompleted(b, 0));
    assert.equal(wrong.statusCode, 403);
    assert.equal(wrong.code, 'InsufficientScopes');
    const wrongReclaim = await rejection(asA.reclaimTask(b, 0));
    assert.equal(wrongReclaim.statusCode, 403);
    // and nothing else than the run's own operations
    assert.equal((await rejection(asA.createTask(slugid(), taskDef(h.clock)))).statusCode, 403);
    // but fine for its own run
    const reclaimed = await call(asA, 'reclaimTask', a, 0);
    const asA2 = h.clientFor(reclaimed.credentials);
    await call(asA2, 'reportCompleted', a, 0);
    await call(h.clientFor(cb.credentials), 'reportFailed', b, 0);
  });

  it('claimWork needs queue:claim-work and queue:worker-id', async () => {
    const worker = h.clientWith([`queue:claim-work:${TASK_QUEUE_ID}`, 'queue:worker-id:wg/w1']);
    const denied = await rejection(
      worker.claimWork(TASK_QUEUE_ID, { workerGroup: 'wg', workerId: 'w2', tasks: 1 }),
    );
    assert.equal(denied.statusCode, 403);
    const other = await rejection(
      worker.claimWork('proj-test/other-queue', { workerGroup: 'wg', workerId: 'w1', tasks: 1 }),
    );
    assert.equal(other.statusCode, 403);
  });
});

describe('local queue: life cycle', function () {
  let h: QueueHarness;
  beforeEach(async () => {
    h = await startQueue({ claimWorkPollMs: 200 });
  });
  afterEach(async () => {
    await h.close();
  });

  it('releases all-completed dependents on completion, and only then', async () => {
    const a = slugid();
    const b = slugid();
    await call(h.client, 'createTask', a, taskDef(h.clock));
    const created = await call(h.client, 'createTask', b, taskDef(h.clock, { dependencies: [a] }));
    assert.equal(created.status.state, 'unscheduled');
    assert.deepEqual(created.status.runs, []);
    const claim = await claimOne(h);
    assert.equal(claim.status.taskId, a);
    assert.equal(claim.status.state, 'running');
    assert.equal((await call(h.client, 'status', b)).status.state, 'unscheduled');
    await call(h.client, 'reportCompleted', a, 0);
    assert.deepEqual(h.completed, [a]);
    const after = await call(h.client, 'status', b);
    assert.equal(after.status.state, 'pending');
    assert.equal(after.status.runs[0].reasonCreated, 'scheduled');
    // a dependency that is already completed is satisfied at creation
    const c = slugid();
    const res = await call(h.client, 'createTask', c, taskDef(h.clock, { dependencies: [a] }));
    assert.equal(res.status.state, 'pending');
  });

  it('a failed dependency blocks all-completed dependents until their deadline, releases all-resolved ones', async () => {
    const a = slugid();
    await call(h.client, 'createTask', a, taskDef(h.clock));
    const blocked = slugid();
    const resolved = slugid();
    await call(
      h.client,
      'createTask',
      blocked,
      taskDef(h.clock, {
        dependencies: [a],
        deadline: new Date(h.clock.now().getTime() + 30 * MIN).toISOString(),
      }),
    );
    await call(
      h.client,
      'createTask',
      resolved,
      taskDef(h.clock, { dependencies: [a], requires: 'all-resolved' }),
    );
    await claimOne(h);
    await call(h.client, 'reportFailed', a, 0);
    assert.deepEqual(h.completed, [], 'no completion event for a failed task');
    assert.equal((await call(h.client, 'status', resolved)).status.state, 'pending');
    assert.equal((await call(h.client, 'status', blocked)).status.state, 'unscheduled');

    h.clock.advance(31 * MIN);
    h.queue.sweep();
    const st = (await call(h.client, 'status', blocked)).status;
    assert.equal(st.state, 'exception');
    assert.equal(st.runs.length, 1);
    assert.equal(st.runs[0].reasonCreated, 'exception');
    assert.equal(st.runs[0].reasonResolved, 'deadline-exceeded');
  });

  it('expires claims: claim-expired, retried while retries remain', async () => {
    const taskId = slugid();
    await call(h.client, 'createTask', taskId, taskDef(h.clock, { retries: 1 }));
    const first = await claimOne(h);
    assert.equal(Date.parse(first.takenUntil) - h.clock.now().getTime(), 20 * MIN);

    h.clock.advance(19 * MIN);
    h.queue.sweep();
    assert.equal((await call(h.client, 'status', taskId)).status.state, 'running');
    h.clock.advance(2 * MIN);
    h.queue.sweep();
    let st = (await call(h.client, 'status', taskId)).status;
    assert.equal(st.state, 'pending');
    assert.equal(st.retriesLeft, 0);
    assert.equal(st.runs[0].state, 'exception');
    assert.equal(st.runs[0].reasonResolved, 'claim-expired');
    assert.equal(st.runs[1].reasonCreated, 'retry');
    // the old run's worker learns it lost the claim
    const stale = await rejection(h.clientFor(first.credentials).reclaimTask(taskId, 0));
    assert.equal(stale.statusCode, 409);

    const second = await claimOne(h, 'w2');
    assert.equal(second.runId, 1);
    h.clock.advance(21 * MIN);
    h.queue.sweep();
    st = (await call(h.client, 'status', taskId)).status;
    assert.equal(st.state, 'exception');
    assert.equal(st.runs.length, 2);
    assert.equal(st.runs[1].reasonResolved, 'claim-expired');
  });

  it('reclaimTask extends takenUntil and returns new credentials', async () => {
    const taskId = slugid();
    await call(h.client, 'createTask', taskId, taskDef(h.clock));
    const claim = await claimOne(h);
    h.clock.advance(15 * MIN);
    const re = await call(h.clientFor(claim.credentials), 'reclaimTask', taskId, 0);
    assert.equal(Date.parse(re.takenUntil) - h.clock.now().getTime(), 20 * MIN);
    assert.notEqual(re.credentials.accessToken, claim.credentials.accessToken);
    h.clock.advance(15 * MIN);
    h.queue.sweep();
    assert.equal((await call(h.client, 'status', taskId)).status.state, 'running');
    await call(h.clientFor(re.credentials), 'reportCompleted', taskId, 0);
    // idempotent re-resolution; a different resolution is a conflict
    await call(h.client, 'reportCompleted', taskId, 0);
    assert.equal((await rejection(h.client.reportFailed(taskId, 0))).statusCode, 409);
    assert.equal((await rejection(h.client.reclaimTask(taskId, 0))).statusCode, 409);
    assert.equal((await rejection(h.client.reclaimTask(taskId, 1))).statusCode, 404);
  });

  it('reportException: worker-shutdown and intermittent-task retry, others resolve', async () => {
    const taskId = slugid();
    await call(h.client, 'createTask', taskId, taskDef(h.clock, { retries: 2 }));
    await claimOne(h);
    let st = (await call(h.client, 'reportException', taskId, 0, { reason: 'worker-shutdown' }))
      .status;
    assert.equal(st.state, 'pending');
    assert.equal(st.runs[1].reasonCreated, 'retry');
    // idempotent
    const again = await call(h.client, 'reportException', taskId, 0, { reason: 'worker-shutdown' });
    assert.equal(again.status.runs.length, 2);
    await claimOne(h);
    st = (await call(h.client, 'reportException', taskId, 1, { reason: 'intermittent-task' }))
      .status;
    assert.equal(st.runs[2].reasonCreated, 'task-retry');
    assert.equal(st.retriesLeft, 0);
    await claimOne(h);
    st = (await call(h.client, 'reportException', taskId, 2, { reason: 'worker-shutdown' })).status;
    assert.equal(st.state, 'exception', 'no retries left');
    assert.equal(st.runs.length, 3);

    const other = slugid();
    await call(h.client, 'createTask', other, taskDef(h.clock));
    await claimOne(h);
    st = (await call(h.client, 'reportException', other, 0, { reason: 'malformed-payload' }))
      .status;
    assert.equal(st.state, 'exception');
    assert.equal(st.runs.length, 1);
    const bad = await rejection(h.client.reportException(other, 0, { reason: 'superseded' }));
    assert.equal(bad.statusCode, 400);
  });

  it('rerunTask adds a run to a resolved task; cancelTask resolves exception/canceled', async () => {
    const taskId = slugid();
    await call(h.client, 'createTask', taskId, taskDef(h.clock, { retries: 0 }));
    await claimOne(h);
    await call(h.client, 'reportFailed', taskId, 0);
    const rerun = await call(h.client, 'rerunTask', taskId);
    assert.equal(rerun.status.state, 'pending');
    assert.equal(rerun.status.runs[1].reasonCreated, 'rerun');
    // an earlier run is no longer resolvable, not even idempotently
    assert.equal((await rejection(h.client.reportFailed(taskId, 0))).statusCode, 409);
    // idempotent while pending
    assert.equal((await call(h.client, 'rerunTask', taskId)).status.runs.length, 2);
    await claimOne(h);
    const canceled = await call(h.client, 'cancelTask', taskId);
    assert.equal(canceled.status.state, 'exception');
    assert.equal(canceled.status.runs[1].reasonResolved, 'canceled');
    // the canceled run can no longer be resolved
    assert.equal((await rejection(h.client.reportCompleted(taskId, 1))).statusCode, 409);

    // cancel of an unscheduled task adds an exception run; dependents with all-resolved proceed
    const dep = slugid();
    await call(h.client, 'createTask', dep, taskDef(h.clock));
    const waiting = slugid();
    await call(h.client, 'createTask', waiting, taskDef(h.clock, { dependencies: [dep, waiting] }));
    const c = await call(h.client, 'cancelTask', waiting);
    assert.equal(c.status.runs[0].reasonCreated, 'exception');
    assert.equal(c.status.runs[0].reasonResolved, 'canceled');

    // scope refusal: rerun needs the AnyOf forms
    const nobody = h.clientWith(['queue:rerun-task:other/*']);
    assert.equal((await rejection(nobody.rerunTask(taskId))).statusCode, 403);
    const project = h.clientWith(['queue:rerun-task-in-project:none']);
    await call(project, 'rerunTask', taskId);
  });

  it('scheduleTask schedules a task waiting on itself', async () => {
    const taskId = slugid();
    const res = await call(
      h.client,
      'createTask',
      taskId,
      taskDef(h.clock, { dependencies: [taskId] }),
    );
    assert.equal(res.status.state, 'unscheduled');
    const scheduled = await call(h.client, 'scheduleTask', taskId);
    assert.equal(scheduled.status.state, 'pending');
    const lateId = slugid();
    await call(h.client, 'createTask', lateId, taskDef(h.clock, { dependencies: [lateId] }));
    h.clock.advance(2 * 60 * MIN);
    const late = await rejection(h.client.scheduleTask(lateId));
    assert.equal(late.statusCode, 409);
    assert.equal((await rejection(h.client.scheduleTask(slugid()))).statusCode, 404);
  });

  it('deadline resolves pending and running tasks as deadline-exceeded', async () => {
    const pending = slugid();
    const running = slugid();
    await call(h.client, 'createTask', running, taskDef(h.clock));
    await claimOne(h);
    await call(h.client, 'createTask', pending, taskDef(h.clock));
    h.clock.advance(61 * MIN);
    h.queue.sweep();
    for (const id of [pending, running]) {
      const st = (await call(h.client, 'status', id)).status;
      assert.equal(st.state, 'exception');
      assert.equal(st.runs[st.runs.length - 1].reasonResolved, 'deadline-exceeded');
    }
    const empty = await call(h.client, 'claimWork', TASK_QUEUE_ID, {
      workerGroup: 'wg',
      workerId: 'w1',
      tasks: 1,
    });
    assert.deepEqual(empty.tasks, []);
    assert.equal((await rejection(h.client.rerunTask(pending))).statusCode, 409);
  });

  it('claims by priority, then first in first out, at most `tasks` per call', async () => {
    const low1 = slugid();
    const low2 = slugid();
    const high = slugid();
    await call(h.client, 'createTask', low1, taskDef(h.clock, { priority: 'low' }));
    await call(h.client, 'createTask', low2, taskDef(h.clock, { priority: 'low' }));
    await call(h.client, 'createTask', high, taskDef(h.clock, { priority: 'very-high' }));
    const two = await call(h.client, 'claimWork', TASK_QUEUE_ID, {
      workerGroup: 'wg',
      workerId: 'w1',
      tasks: 2,
    });
    assert.deepEqual(
      two.tasks.map((t: any) => t.status.taskId),
      [high, low1],
    );
    const counts = await call(h.client, 'taskQueueCounts', TASK_QUEUE_ID);
    assert.deepEqual(
      [counts.provisionerId, counts.workerType, counts.pendingTasks, counts.claimedTasks],
      ['proj-test', 'worker', 1, 2],
    );
    assert.equal((await call(h.client, 'pendingTasks', TASK_QUEUE_ID)).pendingTasks, 1);
    assert.equal((await claimOne(h)).status.taskId, low2);
    assert.equal((await call(h.client, 'pendingTasks', TASK_QUEUE_ID)).pendingTasks, 0);
    const group = await call(h.client, 'getTaskGroup', low1);
    assert.equal(group.schedulerId, '-');
    assert.equal((await rejection(h.anonymous.pendingTasks(TASK_QUEUE_ID))).statusCode, 403);
  });
});

describe('local queue: claimWork long poll', function () {
  let h: QueueHarness;
  before(async () => {
    h = await startQueue({ claimWorkPollMs: 60_000 });
  });
  after(async () => {
    await h.close();
  });

  it('returns as soon as a task becomes pending, long before the poll ends', async function () {
    this.timeout(20_000); // the poll is 60 s: only an early return passes
    const queueId = 'proj-test/long-poll';
    const claim = call(h.client, 'claimWork', queueId, {
      workerGroup: 'wg',
      workerId: 'w1',
      tasks: 1,
    });
    await new Promise((r) => setTimeout(r, 200));
    const taskId = slugid();
    await call(h.client, 'createTask', taskId, taskDef(h.clock, { taskQueueId: queueId }));
    const res = await claim;
    assert.equal(res.tasks.length, 1);
    assert.equal(res.tasks[0].status.taskId, taskId);
  });

  it('wakes when a dependency completes and releases a task', async function () {
    this.timeout(20_000);
    const queueId = 'proj-test/long-poll-deps';
    const a = slugid();
    const b = slugid();
    await call(h.client, 'createTask', a, taskDef(h.clock, { taskQueueId: queueId }));
    await call(
      h.client,
      'createTask',
      b,
      taskDef(h.clock, { taskQueueId: queueId, dependencies: [a] }),
    );
    const first = await claimOne(h, 'w1', queueId);
    const waiting = call(h.client, 'claimWork', queueId, {
      workerGroup: 'wg',
      workerId: 'w2',
      tasks: 1,
    });
    await new Promise((r) => setTimeout(r, 100));
    await call(h.clientFor(first.credentials), 'reportCompleted', a, 0);
    const res = await waiting;
    assert.equal(res.tasks[0].status.taskId, b);
  });
});

describe('local queue: persistence', function () {
  it('keeps tasks, runs, claims and dependencies across a restart', async () => {
    const h1 = await startQueue();
    const a = slugid();
    const b = slugid();
    const c = slugid();
    await call(h1.client, 'createTask', a, taskDef(h1.clock));
    await call(h1.client, 'createTask', b, taskDef(h1.clock, { dependencies: [a] }));
    await call(h1.client, 'createTask', c, taskDef(h1.clock));
    const claim = await claimOne(h1);
    assert.equal(claim.status.taskId, a);
    const before = await call(h1.client, 'status', a);
    await h1.close(true);

    const h2 = await startQueue({ stateDir: h1.stateDir, clock: h1.clock });
    try {
      assert.deepEqual(await call(h2.client, 'status', a), before);
      // the claim's credentials still work: the issuer and the run survived
      await call(h2.clientFor(claim.credentials), 'reportCompleted', a, 0);
      assert.equal((await call(h2.client, 'status', b)).status.state, 'pending');
      const next = await call(h2.client, 'claimWork', TASK_QUEUE_ID, {
        workerGroup: 'wg',
        workerId: 'w1',
        tasks: 2,
      });
      assert.deepEqual(
        next.tasks.map((t: any) => t.status.taskId),
        [c, b],
      );
    } finally {
      await h2.close();
    }
  });
});

describe('local queue: inside startEmbedded', function () {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mha-queue-embedded-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('indexes index.* routes on completion only, and keeps the queue across a restart', async () => {
    const clock = new ManualClock(new Date());
    let e = await startEmbedded({ stateDir: dir, s3: false, clock, sweepIntervalMs: 0 });
    let done = false;
    try {
      const creds = e.credentials;
      const queue = queueClient({ rootUrl: e.rootUrl, credentials: creds, retries: 0 });
      const index = indexClient({ rootUrl: e.rootUrl, credentials: creds, retries: 0 });
      const ok = slugid();
      const bad = slugid();
      const extra = { index: { rank: 7, data: { digest: 'abc' } } };
      await call(queue, 'createTask', ok, taskDef(clock, { routes: ['index.test.ok'], extra }));
      await call(queue, 'createTask', bad, taskDef(clock, { routes: ['index.test.bad'], extra }));
      const claimed = await call(queue, 'claimWork', TASK_QUEUE_ID, {
        workerGroup: 'wg',
        workerId: 'w1',
        tasks: 2,
      });
      assert.equal(claimed.tasks.length, 2);
      for (const t of claimed.tasks) {
        const asRun = queueClient({ rootUrl: e.rootUrl, credentials: t.credentials, retries: 0 });
        if (t.status.taskId === ok) await call(asRun, 'reportCompleted', ok, t.runId);
        else await call(asRun, 'reportFailed', bad, t.runId);
      }
      const found = await index.findTask('test.ok');
      assert.equal(found.taskId, ok);
      assert.equal(found.rank, 7);
      assert.deepEqual(found.data, { digest: 'abc' });
      assert.equal((await rejection(index.findTask('test.bad'))).statusCode, 404);

      const pending = slugid();
      await call(queue, 'createTask', pending, taskDef(clock));
      await e.close();
      done = true;

      e = await startEmbedded({ stateDir: dir, s3: false, clock, sweepIntervalMs: 0 });
      done = false;
      const again = queueClient({ rootUrl: e.rootUrl, credentials: e.credentials, retries: 0 });
      assert.equal((await call(again, 'status', ok)).status.state, 'completed');
      assert.equal((await call(again, 'status', bad)).status.state, 'failed');
      const next = await call(again, 'claimWork', TASK_QUEUE_ID, {
        workerGroup: 'wg',
        workerId: 'w1',
        tasks: 1,
      });
      assert.equal(next.tasks[0].status.taskId, pending);
      // the embedded sweep drives claim expiry from the same clock
      clock.advance(21 * MIN);
      await e.sweep();
      const st = (await call(again, 'status', pending)).status;
      assert.equal(st.runs[0].reasonResolved, 'claim-expired');
      assert.equal(st.runs[1].reasonCreated, 'retry');
    } finally {
      if (!done) await e.close();
    }
  });
});
