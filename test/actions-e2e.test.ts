// The Treeherder retrigger path end to end, on one machine: the embedded Queue, Index, Hooks and
// Auth over real HTTP with the real taskcluster-client, s3rver for artifacts, the real
// .taskcluster.yml rendered by the action hook, and the action task run by the local runner with
// its own temporary credentials. The push (decision artifacts and its tasks) comes from the
// actions fixture; archive/build tasks are resolved by a minimal stand-in worker in this file.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import {
  authClient,
  hooksClient,
  queueClient,
  slugid,
  type Credentials,
} from '../src/taskcluster/client.js';
import { renderActionsJson, tcymlHash } from '../src/actions/registry.js';
import { setUpActionHooks } from '../src/actions/hooks.js';
import { triggerAction } from '../src/actions/trigger.js';
import {
  runActionTaskOnce,
  runActionClaim,
  s3Publisher,
  type ArtifactPublisher,
} from '../src/local/action-runner.js';
import { spawn } from 'node:child_process';
import { buildProgram } from '../src/cli/main.js';
import { registerLocalTriggerAction } from '../src/cli/commands/actions.js';
import { decisionTaskDefiner, retargetArchiveTask } from '../src/actions/define.js';
import { makePush, DIGEST, type PushFixture } from './helpers/actions-fixture.js';
import { assertUpstream } from './helpers/upstream.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const DAY = 24 * 3600e3;

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('actions end to end (embedded services, Treeherder path)', function () {
  this.timeout(120_000);
  let emb: Embedded;
  let stateDir: string;
  let rootUrl: string;
  let root: Credentials;
  let sheriff: Credentials;
  let publish: ArtifactPublisher;
  let tcyml: string;
  const archiveBytes = crypto.randomBytes(2048);
  const archiveSha = crypto.createHash('sha256').update(archiveBytes).digest('hex');
  let archiveFile: string;

  interface Push extends PushFixture {
    level: string;
  }

  before(async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'actions-e2e-'));
    emb = await startEmbedded({ stateDir, claimWorkPollMs: 200, sweepIntervalMs: 0 });
    rootUrl = emb.rootUrl;
    root = emb.credentials;
    sheriff = emb.createClient('mozilla-auth0/ad|Mozilla-LDAP|sheriff', [
      'hooks:trigger-hook:project-mozharness/*',
      'queue:get-task:*',
      'auth:expand-scopes',
    ]);
    publish = s3Publisher(emb.s3!);
    archiveFile = path.join(stateDir, 'mozharness.tar.gz');
    await fs.writeFile(archiveFile, archiveBytes);
    tcyml = await fs.readFile(path.join(ROOT, '.taskcluster.yml'), 'utf8');
    await setUpActionHooks({
      hooks: hooksClient({ rootUrl, credentials: root }),
      auth: authClient({ rootUrl, credentials: root }),
      tcyml,
      trustDomain: 'mozharness',
      indexPrefix: 'mozharness',
      projectId: ['mozharness', 'none'],
      repositories: {
        '1': ['https://hg.example.com/try'],
        '3': ['https://hg.example.com/mozilla-central'],
      },
      taskQueueIds: (level) => [
        `mozharness-${level}/decision`,
        `mozharness-${level}/archive`,
        `mozharness-${level}/b-linux`,
        'mozharness-t/t-linux-large',
      ],
    });
  });

  after(async () => {
    await emb?.close();
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  const rootQueue = () => queueClient({ rootUrl, credentials: root });

  async function claimAll(taskQueueId: string): Promise<any[]> {
    const out: any[] = [];
    for (;;) {
      const res = await rootQueue().claimWork(taskQueueId, {
        workerGroup: 'test',
        workerId: 'stand-in',
        tasks: 32,
      });
      if (!res.tasks.length) return out;
      out.push(...res.tasks);
    }
  }

  /** The stand-in archive worker: the archive artifact (same bytes every time) and completion. */
  async function completeArchives(level: string, artifactExpires?: Date): Promise<string[]> {
    const done: string[] = [];
    for (const c of await claimAll(`mozharness-${level}/archive`)) {
      const q = queueClient({ rootUrl, credentials: c.credentials });
      const url = await publish(`archives/${archiveSha}.tar.gz`, archiveFile, 'application/gzip');
      await q.createArtifact(c.status.taskId, c.runId, 'public/build/mozharness.tar.gz', {
        storageType: 'reference',
        expires: (artifactExpires ?? new Date(c.task.expires)).toISOString(),
        contentType: 'application/gzip',
        url,
      });
      await q.reportCompleted(c.status.taskId, c.runId);
      done.push(c.status.taskId);
    }
    return done;
  }

  async function completeBuilds(level: string): Promise<string[]> {
    const done: string[] = [];
    for (const c of await claimAll(`mozharness-${level}/b-linux`)) {
      await queueClient({ rootUrl, credentials: c.credentials }).reportCompleted(
        c.status.taskId,
        c.runId,
      );
      done.push(c.status.taskId);
    }
    return done;
  }

  /** A decision task that publishes the fixture push's artifacts and creates its tasks. */
  async function setUpPush(
    level: string,
    project: string,
    opts: { archiveExpires?: Date; digest?: string } = {},
  ): Promise<Push> {
    const push = makePush({
      level,
      project,
      rootUrl,
      created: new Date(),
      ...(opts.digest ? { digest: opts.digest } : {}),
    });
    const D = push.decisionTaskId;
    const now = new Date();
    await rootQueue().createTask(D, {
      taskQueueId: `mozharness-${level}/decision`,
      schedulerId: `mozharness-level-${level}`,
      taskGroupId: D,
      created: now.toISOString(),
      deadline: new Date(now.getTime() + DAY).toISOString(),
      expires: new Date(now.getTime() + 365 * DAY).toISOString(),
      scopes: [`in-tree:hook-action:project-mozharness/in-tree-action-${level}-*`],
      routes: [`tc-treeherder.v2.${project}.${'a'.repeat(40)}.42`],
      payload: {},
      metadata: {
        name: 'Mozharness Archive Decision Task',
        description: 'decision',
        owner: 'pusher@example.com',
        source: `https://hg.example.com/${project}/raw-file/tip/.taskcluster.yml`,
      },
      tags: { kind: 'decision-task' },
      extra: { treeherder: { symbol: 'D', machine: { platform: 'gecko-decision' } } },
    });
    const [claim] = await claimAll(`mozharness-${level}/decision`);
    assert.equal(claim.status.taskId, D);
    const q = queueClient({ rootUrl, credentials: claim.credentials });
    const actionsJson = renderActionsJson(push.parameters, {
      decisionTaskId: D,
      tcymlHash: tcymlHash(tcyml),
      trustDomain: 'mozharness',
    });
    assertUpstream('/schemas/common/action-schema-v1.json', actionsJson, 'actions.json');
    const files: Record<string, string> = {
      'public/actions.json': JSON.stringify(actionsJson),
      'public/parameters.yml': yaml.dump(push.parameters),
      'public/task-graph.json': JSON.stringify(push.taskGraph),
      'public/label-to-taskid.json': JSON.stringify(push.labelToTaskId),
      'public/full-task-graph.json': JSON.stringify(push.fullGraph),
    };
    for (const [name, body] of Object.entries(files)) {
      const file = path.join(stateDir, `${D}-${path.basename(name)}`);
      await fs.writeFile(file, body);
      const url = await publish(`tasks/${D}/0/${name}`, file, 'application/json');
      await q.createArtifact(D, claim.runId, name, {
        storageType: 'reference',
        expires: new Date(now.getTime() + 300 * DAY).toISOString(),
        contentType: 'application/json',
        url,
      });
    }
    for (const id of [push.ids.archive!, push.ids.build!, push.ids.test1!]) {
      await rootQueue().createTask(id, push.taskGraph[id].task);
    }
    await q.reportCompleted(D, claim.runId);
    await completeArchives(level, opts.archiveExpires);
    await completeBuilds(level);
    return { ...push, level };
  }

  /** Treeherder's trigger, then the local runner runs the action task. */
  async function act(
    push: Push,
    action: string,
    opts: { taskId?: string; input?: unknown; validateInput?: boolean; inTree?: boolean } = {},
  ) {
    const trig = await triggerAction({
      rootUrl,
      credentials: sheriff,
      decisionTaskId: push.decisionTaskId,
      action,
      ...(opts.taskId ? { taskId: opts.taskId } : {}),
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      validateInput: opts.validateInput ?? true,
    });
    const outcome = await runActionTaskOnce({
      rootUrl,
      credentials: root,
      taskQueueId: `mozharness-${push.level}/decision`,
      publish,
      ...(opts.inTree
        ? {
            defineTask: decisionTaskDefiner({ root: path.join(ROOT, 'taskcluster') }),
            retarget: retargetArchiveTask,
          }
        : {}),
    });
    assert.ok(outcome, 'the action task was created and claimed');
    assert.equal(outcome.taskId, trig.actionTaskId);
    return { trig, outcome };
  }

  async function group(push: Push): Promise<any[]> {
    const out: any[] = [];
    let continuationToken: string | undefined;
    do {
      const page = await rootQueue().listTaskGroup(
        push.decisionTaskId,
        continuationToken ? { continuationToken } : {},
      );
      out.push(...page.tasks);
      continuationToken = page.continuationToken;
    } while (continuationToken);
    return out;
  }
  const byLabel = (tasks: any[], label: string) =>
    tasks.filter((t) => t.task.metadata.name === label);
  const TEST = 'test-linux64/opt-mochitest-plain-1';
  const BUILD = 'build-linux64/opt';

  let p3: Push;
  let p1: Push;

  it('retrigger-multiple: an unknown label fails the action and creates nothing; then times: 2 works', async () => {
    p3 = await setUpPush('3', 'mozilla-central');
    const before = (await group(p3)).length;
    const bad = await act(p3, 'retrigger-multiple', {
      input: { requests: [{ tasks: [TEST, 'test-no-such-label'], times: 2 }] },
    });
    assert.equal(bad.outcome.state, 'failed');
    assert.match(bad.outcome.error!, /unknown task label\(s\): 'test-no-such-label'/);
    const afterBad = await group(p3);
    assert.equal(afterBad.length, before + 1, 'only the failed action task was added');
    const actionTask = afterBad.find((t) => t.status.taskId === bad.trig.actionTaskId);
    assert.equal(actionTask.status.state, 'failed');
    assert.equal(actionTask.task.tags.kind, 'action-callback');
    assert.equal(actionTask.task.extra.treeherder.symbol, 'rt');
    assertUpstream('/schemas/queue/v1/task.json', actionTask.task, 'action task');
    assertUpstream('treeherder/task-treeherder-config.json', actionTask.task.extra.treeherder);

    const good = await act(p3, 'retrigger-multiple', {
      input: { requests: [{ tasks: [TEST], times: 2 }] },
    });
    assert.equal(good.outcome.state, 'completed', good.outcome.error);
    assert.deepEqual(good.outcome.artifacts, [
      'public/label-to-taskid.json',
      'public/logs/live_backing.log',
      'public/task-graph.json',
    ]);
    const tests = byLabel(await group(p3), TEST);
    assert.equal(tests.length, 3);
    for (const t of tests.filter((x) => x.status.taskId !== p3.ids.test1)) {
      assert.deepEqual(
        [...t.task.dependencies].sort(),
        [p3.ids.archive, p3.ids.build, good.trig.actionTaskId].sort(),
        'reuses the completed archive and build, and waits for the action task',
      );
      assert.equal(t.task.taskGroupId, p3.decisionTaskId);
      assert.equal(t.status.state, 'pending', 'released once the action task completed');
      assert.ok(t.task.routes.includes(`tc-treeherder.v2.mozilla-central.${'a'.repeat(40)}.42`));
      assertUpstream('treeherder/task-treeherder-config.json', t.task.extra.treeherder);
      assert.ok(
        Date.parse(t.task.created) > Date.parse(p3.taskGraph[p3.ids.test1!].task.created) - 1,
      );
    }
  });

  it('retrigger of a retrigger: the label comes from the earlier action task graph', async () => {
    const tests = byLabel(await group(p3), TEST).filter((t) => t.status.taskId !== p3.ids.test1);
    const target = tests[0].status.taskId;
    const r = await act(p3, 'retrigger', { taskId: target, input: { times: 1 } });
    assert.equal(r.outcome.state, 'completed', r.outcome.error);
    assert.equal(r.outcome.result!.created.length, 1);
    assert.equal(r.outcome.result!.created[0]!.label, TEST);
    assert.equal(byLabel(await group(p3), TEST).length, 4);
  });

  it('add-new-jobs schedules a label again; retrigger with downstream re-creates dependents on the new build', async () => {
    const a = await act(p3, 'add-new-jobs', { input: { tasks: [BUILD] } });
    assert.equal(a.outcome.state, 'completed', a.outcome.error);
    assert.equal(byLabel(await group(p3), BUILD).length, 2);

    const r = await act(p3, 'retrigger', { taskId: p3.ids.build!, input: { downstream: true } });
    assert.equal(r.outcome.state, 'completed', r.outcome.error);
    const created = r.outcome.result!.created;
    assert.deepEqual(
      created.map((c) => c.label),
      [BUILD, TEST],
    );
    const newTest = (await rootQueue().task(created[1]!.taskId)) as any;
    assert.ok(newTest.dependencies.includes(created[0]!.taskId));
    assert.ok(newTest.payload.env.GECKO_INSTALLER_URL.includes(created[0]!.taskId));
    assert.ok(newTest.dependencies.includes(p3.ids.archive));

    const plain = await act(p3, 'retrigger', { taskId: p3.ids.build!, input: {} });
    assert.deepEqual(
      plain.outcome.result!.created.map((c) => c.label),
      [BUILD],
    );
  });

  it('input that fails the action schema creates no task', async () => {
    const before = await group(p3);
    const r = await act(p3, 'retrigger-multiple', {
      input: { requests: [{ tasks: [TEST], times: 1000 }] },
      validateInput: false,
    });
    assert.equal(r.outcome.state, 'failed');
    assert.match(r.outcome.error!, /times must be <= 100/);
    const after = await group(p3);
    assert.equal(after.length, before.length + 1);
    await assert.rejects(
      triggerAction({
        rootUrl,
        credentials: sheriff,
        decisionTaskId: p3.decisionTaskId,
        action: 'retrigger-multiple',
        input: { requests: [{ tasks: [TEST], times: 1000 }] },
      }),
      /input for 'retrigger-multiple' is invalid/,
    );
  });

  it('rebuild-mozharness-archive: a new archive with the same bytes indexed at a higher rank; the old one still resolves', async () => {
    const ns = `mozharness.cache.level-3.mozharness.hash.${DIGEST}`;
    const idx = () => ({ rootUrl });
    const { indexClient } = await import('../src/taskcluster/client.js');
    const before = await indexClient(idx()).findTask(ns);
    assert.equal(before.taskId, p3.ids.archive);
    const r = await act(p3, 'rebuild-mozharness-archive', { taskId: p3.ids.archive!, input: {} });
    assert.equal(r.outcome.state, 'completed', r.outcome.error);
    const [rebuilt] = r.outcome.result!.created;
    assert.equal(rebuilt!.label, 'mozharness-archive');
    assert.deepEqual(await completeArchives('3'), [rebuilt!.taskId]);
    const after = await indexClient(idx()).findTask(ns);
    assert.equal(after.taskId, rebuilt!.taskId);
    assert.ok(after.rank > before.rank);
    for (const id of [p3.ids.archive!, rebuilt!.taskId]) {
      const url = queueClient({ rootUrl }).buildUrl(
        (queueClient({ rootUrl }) as any).getLatestArtifact,
        id,
        'public/build/mozharness.tar.gz',
      );
      const res = await fetch(url);
      assert.equal(res.status, 200);
      const sha = crypto
        .createHash('sha256')
        .update(Buffer.from(await res.arrayBuffer()))
        .digest('hex');
      assert.equal(sha, archiveSha);
    }
    // a later retrigger finds the rebuilt archive as the push's archive
    const t = await act(p3, 'retrigger-multiple', { input: { requests: [{ tasks: [TEST] }] } });
    const def = (await rootQueue().task(t.outcome.result!.created[0]!.taskId)) as any;
    assert.ok(def.dependencies.includes(rebuilt!.taskId));
    assert.ok(def.payload.env.MOZHARNESS_URL.includes(rebuilt!.taskId));
  });

  it('cancel and cancel-all', async () => {
    const pending = byLabel(await group(p3), TEST).find((t) => t.status.state === 'pending');
    const c = await act(p3, 'cancel', { taskId: pending.status.taskId });
    assert.equal(c.outcome.state, 'completed', c.outcome.error);
    assert.equal((await rootQueue().status(pending.status.taskId)).status.state, 'exception');
    const all = await act(p3, 'cancel-all');
    assert.equal(all.outcome.state, 'completed', all.outcome.error);
    const left = (await group(p3)).filter(
      (t) =>
        ['pending', 'unscheduled'].includes(t.status.state) &&
        t.status.taskId !== all.trig.actionTaskId,
    );
    assert.deepEqual(left, []);
  });

  it('a retrigger after the archive artifacts expire: found again by digest, else a new archive first', async () => {
    // same tree as the first push, whose rebuilt archive is indexed by digest and long-lived;
    // this push's archive artifact has already expired (the queue accepts up to 15 min ago)
    const p = await setUpPush('3', 'mozilla-central', {
      archiveExpires: new Date(Date.now() - 10 * 60e3),
    });
    const r = await act(p, 'retrigger-multiple', {
      input: { requests: [{ tasks: [TEST], times: 1 }] },
    });
    assert.equal(r.outcome.state, 'completed', r.outcome.error);
    const dep = r.outcome.result!.dependencies.find((d) => d.label === 'mozharness-archive')!;
    assert.equal(dep.decision, 'found-by-digest', JSON.stringify(dep));
    assert.match(dep.reason, /artifact public\/build\/mozharness\.tar\.gz expires|has no artifact/);
    assert.notEqual(dep.taskId, p.ids.archive);
    const def = (await rootQueue().task(r.outcome.result!.created[0]!.taskId)) as any;
    assert.ok(def.dependencies.includes(dep.taskId));
    assert.ok(!def.dependencies.includes(p.ids.archive));
    assert.ok(def.payload.env.MOZHARNESS_URL.includes(dep.taskId));

    // a tree nobody else archived, its archive expiring before the new deadline: the retrigger
    // schedules a new archive task first
    const q = await setUpPush('3', 'mozilla-central', {
      archiveExpires: new Date(Date.now() + 3600e3),
      digest: 'c'.repeat(64),
    });
    const r2 = await act(q, 'retrigger-multiple', {
      input: { requests: [{ tasks: [TEST], times: 2 }] },
    });
    assert.equal(r2.outcome.state, 'completed', r2.outcome.error);
    const created = r2.outcome.result!.created;
    assert.deepEqual(
      created.map((c) => c.label),
      ['mozharness-archive', TEST, TEST],
    );
    const newArchive = created[0]!.taskId;
    for (const c of created.slice(1)) {
      const t = (await rootQueue().task(c.taskId)) as any;
      assert.ok(t.dependencies.includes(newArchive));
      assert.ok(!t.dependencies.includes(q.ids.archive));
      assert.ok(t.payload.env.MOZHARNESS_URL.includes(newArchive));
      assert.equal((await rootQueue().status(c.taskId)).status.state, 'unscheduled');
    }
    assert.deepEqual(await completeArchives('3'), [newArchive]);
    for (const c of created.slice(1)) {
      assert.equal((await rootQueue().status(c.taskId)).status.state, 'pending');
    }
  });

  it("the action task's scopes are limited to its level", async () => {
    p1 = await setUpPush('1', 'try');
    // a level-1 action task holds the try repository's action role, nothing of level 3
    await triggerAction({
      rootUrl,
      credentials: sheriff,
      decisionTaskId: p1.decisionTaskId,
      action: 'retrigger-multiple',
      input: { requests: [{ tasks: [TEST] }] },
    });
    const res = await rootQueue().claimWork('mozharness-1/decision', {
      workerGroup: 'test',
      workerId: 'scopes',
      tasks: 1,
    });
    const claim = res.tasks[0]!;
    assert.deepEqual(claim.task.scopes, ['assume:repo:hg.example.com/try:action:generic']);
    const expanded = (
      await authClient({ rootUrl, credentials: root }).expandScopes({ scopes: claim.task.scopes! })
    ).scopes;
    assert.ok(expanded.includes('queue:scheduler-id:mozharness-level-1'));
    assert.ok(!expanded.some((s: string) => /level-3|mozharness-3\//.test(s)), expanded.join(' '));
    // with its own credentials it cannot create a level-3 task
    const asAction = queueClient({ rootUrl, credentials: claim.credentials });
    const now = new Date();
    await assert.rejects(
      asAction.createTask(slugid(), {
        taskQueueId: 'mozharness-3/b-linux',
        schedulerId: 'mozharness-level-3',
        created: now.toISOString(),
        deadline: new Date(now.getTime() + DAY).toISOString(),
        payload: {},
        metadata: {
          name: 'x',
          description: 'x',
          owner: 'x@example.com',
          source: 'https://example.com/x',
        },
      }),
      (e: any) => e.statusCode === 403,
    );
    const outcome = await runActionClaim(claim, { rootUrl, publish });
    assert.equal(outcome.state, 'completed', outcome.error);

    // the level-1 hook cannot be used to act for a level-3 repository
    const hookId = `in-tree-action-1-generic/${tcymlHash(tcyml)}`;
    const before = (await group(p3)).length;
    await assert.rejects(
      hooksClient({ rootUrl, credentials: sheriff }).triggerHook('project-mozharness', hookId, {
        decision: {
          action: {
            name: 'cancel-all',
            title: 'Cancel all',
            description: 'x',
            taskGroupId: p3.decisionTaskId,
            cb_name: 'cancel-all',
            symbol: 'cxA',
          },
          repository: {
            url: 'https://hg.example.com/mozilla-central',
            project: 'mozilla-central',
            level: '1',
          },
          push: { owner: 'o@example.com', revision: 'a'.repeat(40), pushlog_id: '42' },
        },
        user: { input: null, taskId: null, taskGroupId: p3.decisionTaskId },
      }),
    );
    assert.equal((await group(p3)).length, before);
  });

  it("add-new-jobs schedules a task the push's target set left out, generated from the in-tree kinds", async () => {
    const label = 'build-macosx64/opt';
    assert.ok(!(label in p1.labelToTaskId));
    const r = await act(p1, 'add-new-jobs', { input: { tasks: [label] }, inTree: true });
    assert.equal(r.outcome.state, 'completed', r.outcome.error);
    const [c] = r.outcome.result!.created;
    assert.equal(c!.label, label);
    const def = (await rootQueue().task(c!.taskId)) as any;
    assert.equal(def.taskQueueId, 'mozharness-1/b-linux');
    assert.equal(def.schedulerId, 'mozharness-level-1');
    assert.equal(def.taskGroupId, p1.decisionTaskId);
    assert.ok(def.dependencies.includes(p1.ids.archive));
    assert.ok(def.payload.env.MOZHARNESS_URL.includes(p1.ids.archive));
    assert.ok(def.routes.includes(`tc-treeherder.v2.try.${'a'.repeat(40)}.42`));
    assertUpstream('/schemas/docker-worker/v1/payload.json', def.payload);
    assertUpstream('treeherder/task-treeherder-config.json', def.extra.treeherder);
    // now part of the push: adding it again needs no kinds, the action's task-graph.json has it
    const r2 = await act(p1, 'add-new-jobs', { input: { tasks: [label], times: 2 } });
    assert.equal(r2.outcome.state, 'completed', r2.outcome.error);
    assert.deepEqual(
      r2.outcome.result!.created.map((x) => x.label),
      [label, label],
    );
  });

  it('CLI: `local trigger-action --json`, then `action-callback` in a subprocess with the task credentials', async () => {
    const credsFile = path.join(stateDir, 'local-up.json');
    await fs.writeFile(
      credsFile,
      JSON.stringify({
        rootUrl,
        credentials: sheriff,
        s3: emb.s3,
        archiveTaskQueueId: emb.archiveTaskQueueId,
      }) + '\n',
    );
    const program = await buildProgram();
    program.exitOverride();
    const local = program.commands.find((c) => c.name() === 'local') ?? program.command('local');
    registerLocalTriggerAction(local);
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    (process.stdout as any).write = (chunk: string) => (out.push(String(chunk)), true);
    const level = process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL;
    process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL = 'warn';
    try {
      await program.parseAsync([
        'node',
        'mozharness-archive',
        'local',
        'trigger-action',
        '--credentials',
        credsFile,
        '--decision-task',
        p1.decisionTaskId,
        '--action',
        'retrigger',
        '--task',
        p1.ids.test1!,
        '--input',
        '{"times": 2}',
        '--json',
      ]);
    } finally {
      (process.stdout as any).write = write;
      if (level === undefined) delete process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL;
      else process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL = level;
    }
    const triggered = JSON.parse(out.join(''));
    assert.equal(triggered.action.name, 'retrigger');
    assert.equal(triggered.action.hookId, `in-tree-action-1-generic/${tcymlHash(tcyml)}`);

    const res = await rootQueue().claimWork('mozharness-1/decision', {
      workerGroup: 'test',
      workerId: 'cli',
      tasks: 1,
    });
    const claim = res.tasks[0]!;
    assert.equal(claim.status.taskId, triggered.actionTaskId);
    const outDir = path.join(stateDir, 'cli-out');
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(claim.task.payload as any).env,
      TASK_ID: claim.status.taskId,
      TASKCLUSTER_ROOT_URL: rootUrl,
      TASKCLUSTER_CLIENT_ID: claim.credentials.clientId,
      TASKCLUSTER_ACCESS_TOKEN: claim.credentials.accessToken,
      TASKCLUSTER_CERTIFICATE: claim.credentials.certificate,
    };
    // asynchronously: the embedded services answer from this process's event loop
    const child = await run(
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'action-callback',
        '--out',
        outDir,
        '--root-url',
        rootUrl,
        '--json',
      ],
      env,
    );
    assert.equal(child.status, 0, child.stderr);
    const result = JSON.parse(child.stdout);
    assert.deepEqual(
      result.created.map((c: any) => c.label),
      [TEST, TEST],
    );
    assert.ok(!child.stderr.includes(claim.credentials.accessToken), 'no credential in the log');
    const l2t = JSON.parse(await fs.readFile(path.join(outDir, 'label-to-taskid.json'), 'utf8'));
    assert.equal(l2t[TEST], result.created[1].taskId);
    await queueClient({ rootUrl, credentials: claim.credentials }).reportCompleted(
      claim.status.taskId,
      claim.runId,
    );

    // a bad context is a usage error (exit 2) that names what is missing
    const bad = await run(
      ['--import', 'tsx', 'src/cli/main.ts', 'action-callback', '--root-url', rootUrl],
      {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
      },
    );
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /missing action context: --callback \(or ACTION_CALLBACK\)/);
  });
});
