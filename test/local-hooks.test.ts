// The embedded Hooks service: triggerHook renders the hook's task template with json-e in the
// hooks service's context and creates the task with the hook's own scopes — first with a recording
// createTask, then through the real embedded Queue.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HawkAuthenticator } from '../src/local/auth.js';
import { rootCredentials } from '../src/local/auth-store.js';
import { openDatabase, type Database } from '../src/local/db.js';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import { ManualClock } from '../src/local/framework.js';
import { HooksService, type HookConfig } from '../src/local/hooks-service.js';
import { ApiServer } from '../src/local/server.js';
import { hooksClient, makeClients, type HooksClient } from '../src/taskcluster/client.js';
import type { TaskDefinition } from '../src/taskcluster/types.js';
import { assertUpstream, upstreamMethodSchema } from './helpers/upstream.js';

const DAY = 24 * 3600e3;

const template: HookConfig = {
  metadata: { name: 'action hook', description: 'renders an action task', owner: 'a@example.com' },
  triggerSchema: {
    type: 'object',
    properties: {
      revision: { type: 'string', pattern: '^[0-9a-f]{40}$' },
      times: { type: 'integer' },
    },
    required: ['revision'],
    additionalProperties: false,
  },
  task: {
    $let: { rev: { $eval: 'payload.revision' } },
    in: {
      taskQueueId: 'proj-mozharness/archive',
      schedulerId: 'mozharness-level-1',
      routes: ['index.mh.v1.hooks.${rev}'],
      payload: {
        revision: '${rev}',
        firedBy: '${firedBy}',
        clientId: '${clientId}',
        own: '${taskId}',
      },
      metadata: {
        name: 'hook task ${rev[:12]}',
        description: 'fired by ${firedBy}',
        owner: 'a@example.com',
        source: 'https://example.com/hook',
      },
      tags: { kind: 'action-callback' },
    },
  },
};

const rev = 'a'.repeat(40);

describe('embedded services: hooks (recording createTask)', function () {
  let dir: string;
  let db: Database;
  let server: ApiServer;
  let hooks: HooksClient;
  let clock: ManualClock;
  const created: Array<{ taskId: string; def: TaskDefinition; scopes: string[] }> = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-hooks-'));
    db = openDatabase(dir);
    clock = new ManualClock(new Date('2026-03-01T12:00:00.000Z'));
    const auth = new HawkAuthenticator(db, { clock });
    auth.roles.set('hook-id:project-mh/in-tree-action-1-generic/abc', ['queue:create-task:*']);
    server = new ApiServer(auth, { clock });
    server.register(
      new HooksService({
        db,
        clock,
        rootUrl: () => server.rootUrl,
        expandScopes: (s) => auth.expandScopes(s),
        createTask: (taskId, def, scopes) => {
          created.push({ taskId, def, scopes });
          return { status: { taskId } as any };
        },
      }),
    );
    const rootUrl = await server.listen();
    hooks = hooksClient({ rootUrl, credentials: rootCredentials(db), retries: 0 });
  });

  after(async () => {
    await server.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates a hook and renders its task on trigger with upstream defaults', async () => {
    const def = await (hooks as any).createHook(
      'project-mh',
      'in-tree-action-1-generic/abc',
      template,
    );
    assert.equal(def.hookId, 'in-tree-action-1-generic/abc');
    assert.deepEqual(
      (await hooks.hook('project-mh', 'in-tree-action-1-generic/abc')).task,
      template.task,
    );
    const payload = { revision: rev, times: 2 };
    assertUpstream(upstreamMethodSchema('hooks', 'triggerHook', 'input')!, payload);
    const out = await hooks.triggerHook('project-mh', 'in-tree-action-1-generic/abc', payload);
    assertUpstream(upstreamMethodSchema('hooks', 'triggerHook', 'output')!, out);
    assert.equal(created.length, 1);
    const { taskId, def: task, scopes } = created[0]!;
    assert.equal(out.taskId, taskId);
    const now = clock.now().getTime();
    assert.equal(task.created, new Date(now).toISOString());
    assert.equal(task.deadline, new Date(now + DAY).toISOString());
    assert.equal(task.expires, '2026-04-01T12:00:00.000Z');
    assert.equal(task.taskGroupId, taskId);
    assert.deepEqual(task.routes, [`index.mh.v1.hooks.${rev}`]);
    assert.deepEqual(task.payload, {
      revision: rev,
      firedBy: 'triggerHook',
      clientId: 'static/taskcluster/root',
      own: taskId,
    });
    assert.equal(task.metadata.name, `hook task ${rev.slice(0, 12)}`);
    assertUpstream('/schemas/queue/v1/create-task-request.json', task);
    assert.ok(scopes.includes('queue:create-task:*'));
    assert.ok(scopes.includes('assume:hook-id:project-mh/in-tree-action-1-generic/abc'));
  });

  it('validates the payload against the triggerSchema', async () => {
    await assert.rejects(
      hooks.triggerHook('project-mh', 'in-tree-action-1-generic/abc', { revision: 'nope' }),
      (e: any) => e.statusCode === 400 && /triggerSchema/.test(e.message),
    );
  });

  it('needs hooks:trigger-hook:<group>/<id>', async () => {
    const rootUrl = server.rootUrl;
    const anon = hooksClient({ rootUrl, retries: 0 });
    await assert.rejects(
      anon.triggerHook('project-mh', 'in-tree-action-1-generic/abc', { revision: rev }),
      (e: any) => e.statusCode === 403 && e.code === 'InsufficientScopes',
    );
  });

  it('answers {} when the template renders no task, and 404 for unknown hooks', async () => {
    await (hooks as any).createHook('project-mh', 'maybe', {
      ...template,
      triggerSchema: { $schema: 'http://json-schema.org/draft-06/schema#', type: 'object' },
      task: { $if: 'payload.go', then: (template.task as any).in },
    });
    const out = await hooks.triggerHook('project-mh', 'maybe', { go: false });
    assertUpstream(upstreamMethodSchema('hooks', 'triggerHook', 'output')!, out);
    assert.deepEqual(out, {});
    await assert.rejects(
      hooks.triggerHook('project-mh', 'unknown', {}),
      (e: any) => e.statusCode === 404,
    );
    const list = await (hooks as any).listHooks('project-mh');
    assert.deepEqual(
      list.hooks.map((h: any) => h.hookId),
      ['in-tree-action-1-generic/abc', 'maybe'],
    );
  });
});

describe('embedded services: hooks through the real queue', function () {
  let dir: string;
  let e: Embedded;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-hooks-e2e-'));
    e = await startEmbedded({ stateDir: dir, s3: false, sweepIntervalMs: 0 });
  });

  after(async () => {
    await e.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates the rendered task with the hook role scopes, and refuses what the role lacks', async () => {
    e.hooks.configureHook('project-mh', 'decision', template);
    e.setRole('hook-id:project-mh/decision', [
      'queue:create-task:*',
      'queue:scheduler-id:mozharness-level-1',
      'queue:route:index.mh.v1.hooks.*',
    ]);
    const caller = e.createClient('project/mh/treeherder', [
      'hooks:trigger-hook:project-mh/decision',
    ]);
    const c = makeClients({ rootUrl: e.rootUrl, credentials: caller, retries: 0 });
    const out = await c.hooks.triggerHook('project-mh', 'decision', { revision: rev });
    assertUpstream(upstreamMethodSchema('hooks', 'triggerHook', 'output')!, out);
    const root = makeClients({ rootUrl: e.rootUrl, credentials: e.credentials, retries: 0 });
    const task = await root.queue.task(out.taskId!);
    assertUpstream(upstreamMethodSchema('queue', 'task', 'output')!, task);
    assert.equal(task.taskGroupId, out.taskId);
    assert.equal(task.payload.clientId, 'project/mh/treeherder');
    const status = await root.queue.status(out.taskId!);
    assert.equal(status.status.state, 'pending');

    // without the route scope in the hook's role, the queue refuses the task
    e.setRole('hook-id:project-mh/decision', [
      'queue:create-task:*',
      'queue:scheduler-id:mozharness-level-1',
    ]);
    await assert.rejects(
      c.hooks.triggerHook('project-mh', 'decision', { revision: rev }),
      (err: any) => err.statusCode === 403 && /queue:route:index\.mh\.v1\.hooks/.test(err.message),
    );
    await assert.rejects(
      c.hooks.triggerHook('project-mh', 'other', { revision: rev }),
      (err: any) => err.statusCode === 403,
    );
  });
});
