// The decision task against the embedded Taskcluster services over real HTTP with the real
// taskcluster-client: the rendered .taskcluster.yml decision task is created in the Queue, the
// generator anchors to its `created`, submits the graph, a rerun creates nothing, and once the
// archive task completed (and was indexed by its routes) the next push with the same harness
// reuses it and indexes it for its own revision.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { main } from '../src/cli/main.js';
import { runDecision } from '../src/decision/decision.js';
import type { HarnessDigest } from '../src/decision/digest.js';
import { makeParameters, type Parameters } from '../src/decision/parameters.js';
import { renderDecisionTask } from '../src/decision/tcyml.js';
import { deterministicSlugid } from '../src/decision/taskids.js';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import {
  indexClient,
  queueClient,
  slugid,
  type IndexClient,
  type QueueClient,
} from '../src/taskcluster/client.js';
import { createHgRepo, HG_ENV, hgCommit, startHgServe, writeSampleTree } from './helpers/repos.js';
import { assertUpstream } from './helpers/upstream.js';

const ROOT = path.resolve('taskcluster');
const TCYML = fs.readFileSync('.taskcluster.yml', 'utf8');
const DIGEST: HarnessDigest = {
  treeDigest: '7e'.repeat(32),
  sha256: '9a'.repeat(32),
  size: 4242,
  files: 12,
  revision: '1'.repeat(40),
  subdir: 'testing/mozharness',
  formatVersion: 1,
};

describe('decision: against the embedded services', function () {
  this.timeout(120_000);
  let tmp: string;
  let embedded: Embedded;
  let queue: QueueClient;
  let index: IndexClient;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-decision-emb-'));
    embedded = await startEmbedded({
      stateDir: path.join(tmp, 'state'),
      s3: false,
      sweepIntervalMs: 0,
      claimWorkPollMs: 200,
    });
    const o = { rootUrl: embedded.rootUrl, credentials: embedded.credentials, retries: 0 };
    queue = queueClient(o);
    index = indexClient(o);
  });
  after(async () => {
    await embedded?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function pushParams(n: number): Parameters {
    return makeParameters({
      project: 'mozilla-central',
      level: '3',
      head_repository: 'https://hg.mozilla.org/mozilla-central',
      repository_type: 'hg',
      head_rev: String(n).repeat(40).slice(0, 40),
      base_rev: '',
      owner: 'ffxbld@mozilla.com',
      pushlog_id: String(1000 + n),
      pushdate: Math.floor(Date.now() / 1000) - 600 + n,
      tasks_for: 'hg-push',
      decision_task_id: slugid(),
      taskcluster_root_url: embedded.rootUrl,
    });
  }

  /** Create the decision task exactly as the hg-push hook would, and claim it. */
  async function startDecisionTask(p: Parameters): Promise<number> {
    const { taskId, ...def } = renderDecisionTask(TCYML, 'hg-push', p);
    assert.equal(taskId, p.decision_task_id);
    await queue.createTask(taskId!, def as any);
    const claim = await queue.claimWork('mozharness-3/decision', {
      workerGroup: 'decision',
      workerId: 'decision-1',
      tasks: 1,
    });
    assert.equal(claim.tasks[0]?.status.taskId, p.decision_task_id);
    return claim.tasks[0]!.runId;
  }

  async function completeArchive(archiveTaskId: string): Promise<void> {
    const claim = await queue.claimWork('mozharness-3/archive', {
      workerGroup: 'archive',
      workerId: 'archive-1',
      tasks: 1,
    });
    const t = claim.tasks[0]!;
    assert.equal(t.status.taskId, archiveTaskId);
    await queue.createArtifact(archiveTaskId, t.runId, 'public/build/mozharness.tar.gz', {
      storageType: 'reference',
      url: `http://127.0.0.1:9/mozharness/${DIGEST.sha256}.tar.gz`,
      contentType: 'application/gzip',
      expires: t.task.expires!,
    });
    await queue.reportCompleted(archiveTaskId, t.runId);
  }

  it('submits a push graph, a rerun creates nothing, the next push reuses the archive', async () => {
    // push 1: no archive indexed yet → built
    const p1 = pushParams(1);
    const run1 = await startDecisionTask(p1);
    const first = await runDecision({
      params: p1,
      root: ROOT,
      digest: DIGEST,
      queue,
      index,
      dryRun: false,
    });
    const archive1 = first.labelToTaskId['mozharness-archive']!;
    assert.equal(first.optimized.records[0]!.result, 'miss');
    assert.equal(first.submitted!.created.length, 8);
    const decisionTask = await queue.task(p1.decision_task_id);
    assert.equal(first.created.toISOString(), new Date(decisionTask.created).toISOString());
    const listed = await queue.listTaskGroup(p1.decision_task_id);
    assert.equal(listed.tasks.length, 9, 'the decision task and its 8 tasks');
    const archiveDef = await queue.task(archive1);
    assert.deepEqual(archiveDef.dependencies, [p1.decision_task_id]);
    assert.equal(archiveDef.payload.treeDigest, DIGEST.treeDigest);

    // rerun of the same decision task: same ids, nothing created
    const again = await runDecision({
      params: p1,
      root: ROOT,
      digest: DIGEST,
      queue,
      index,
      dryRun: false,
    });
    assert.deepEqual(again.labelToTaskId, first.labelToTaskId);
    assert.equal(again.submitted!.created.length, 0);
    assert.equal(again.submitted!.existing.length, 8);
    assert.equal((await queue.listTaskGroup(p1.decision_task_id)).tasks.length, 9);

    // the decision task finishes; the archive task runs and completes; its routes index it
    await queue.reportCompleted(p1.decision_task_id, run1);
    await completeArchive(archive1);
    const byRevision = await index.findTask(
      `mozharness.v1.mozilla-central.revision.${p1.head_rev}.mozharness`,
    );
    assert.equal(byRevision.taskId, archive1);
    assert.equal(byRevision.data.sha256, DIGEST.sha256);
    const cached = await index.findTask(
      `mozharness.cache.level-3.mozharness.hash.${DIGEST.treeDigest}`,
    );
    assert.equal(cached.taskId, archive1);

    // push 2: same harness → reused, dependents point at archive 1, indexed for push 2
    const p2 = pushParams(2);
    await startDecisionTask(p2);
    const second = await runDecision({
      params: p2,
      root: ROOT,
      digest: DIGEST,
      queue,
      index,
      dryRun: false,
    });
    const rec = second.optimized.records.find((r) => r.label === 'mozharness-archive')!;
    assert.equal(rec.result, 'hit', rec.reason);
    assert.equal(second.labelToTaskId['mozharness-archive'], archive1);
    assert.equal(second.submitted!.created.length, 7, 'no archive task');
    for (const id of second.submitted!.created) {
      const t = await queue.task(id);
      assert.ok(
        t.dependencies!.includes(archive1),
        `${t.metadata.name} depends on the reused archive`,
      );
    }
    const reusedByRevision = await index.findTask(
      `mozharness.v1.mozilla-central.revision.${p2.head_rev}.mozharness`,
    );
    assert.equal(reusedByRevision.taskId, archive1);
    assert.equal(reusedByRevision.rank, p2.pushdate);
    const latest = await index.findTask('mozharness.v1.mozilla-central.latest.mozharness');
    assert.equal(latest.taskId, archive1);
    assert.equal(latest.rank, p2.pushdate, 'latest moved forward to push 2');
    const byPushlog = await index.findTask(
      `mozharness.v1.mozilla-central.pushlog-id.${p2.pushlog_id}.mozharness`,
    );
    assert.equal(byPushlog.taskId, archive1);
  });

  it('a level-1 push does not feed a level-3 push', async () => {
    const digest = { ...DIGEST, treeDigest: 'a1'.repeat(32) };
    const tryPush: Parameters = {
      ...pushParams(3),
      project: 'try',
      level: '1',
      head_repository: 'https://hg.mozilla.org/try',
      base_repository: 'https://hg.mozilla.org/try',
    };
    const { taskId, ...def } = renderDecisionTask(TCYML, 'hg-push', tryPush);
    await queue.createTask(taskId!, def as any);
    const c = await queue.claimWork('mozharness-1/decision', {
      workerGroup: 'd',
      workerId: 'd1',
      tasks: 1,
    });
    const r = await runDecision({
      params: tryPush,
      root: ROOT,
      digest,
      queue,
      index,
      dryRun: false,
    });
    await queue.reportCompleted(tryPush.decision_task_id, c.tasks[0]!.runId);
    const archiveId = r.labelToTaskId['mozharness-archive']!;
    const claim = await queue.claimWork('mozharness-1/archive', {
      workerGroup: 'a',
      workerId: 'a1',
      tasks: 1,
    });
    assert.equal(claim.tasks[0]!.status.taskId, archiveId);
    await queue.createArtifact(archiveId, 0, 'public/build/mozharness.tar.gz', {
      storageType: 'reference',
      url: 'http://127.0.0.1:9/x.tar.gz',
      contentType: 'application/gzip',
      expires: claim.tasks[0]!.task.expires!,
    });
    await queue.reportCompleted(archiveId, 0);
    assert.equal(
      (await index.findTask(`mozharness.cache.level-1.mozharness.hash.${digest.treeDigest}`))
        .taskId,
      archiveId,
    );
    // a level-3 push of the same tree does not read the level-1 cache
    const p = pushParams(4);
    const l3 = await runDecision({
      params: p,
      root: ROOT,
      digest,
      queue,
      index,
      dryRun: true,
      created: new Date(),
    });
    const rec = l3.optimized.records.find((x) => x.label === 'mozharness-archive')!;
    assert.equal(rec.result, 'miss');
    assert.ok(rec.namespacesTried.every((ns) => ns.includes('level-3')));
    assert.notEqual(l3.labelToTaskId['mozharness-archive'], archiveId);
    // and a second try push does reuse it
    const again = await runDecision({
      params: {
        ...tryPush,
        decision_task_id: deterministicSlugid('try 2'),
        head_rev: 'e'.repeat(40),
      },
      root: ROOT,
      digest,
      queue,
      index,
      dryRun: true,
      created: new Date(),
    });
    assert.equal(again.labelToTaskId['mozharness-archive'], archiveId);
  });
  it('the decision command submits with --root-url and credentials from the environment', async () => {
    const checkout = path.join(tmp, 'checkout');
    writeSampleTree(checkout);
    const p = pushParams(5);
    await startDecisionTask(p);
    const saved = { ...process.env };
    Object.assign(process.env, {
      TASKCLUSTER_ROOT_URL: embedded.rootUrl,
      TASKCLUSTER_CLIENT_ID: embedded.credentials.clientId,
      TASKCLUSTER_ACCESS_TOKEN: embedded.credentials.accessToken,
      MOZHARNESS_ARCHIVE_PROJECT: p.project,
      MOZHARNESS_ARCHIVE_LEVEL: p.level,
      MOZHARNESS_ARCHIVE_REPOSITORY: p.head_repository,
      MOZHARNESS_ARCHIVE_REVISION: p.head_rev,
      MOZHARNESS_ARCHIVE_OWNER: p.owner,
      MOZHARNESS_ARCHIVE_PUSHLOG_ID: p.pushlog_id,
      MOZHARNESS_ARCHIVE_PUSHDATE: String(p.pushdate),
      MOZHARNESS_ARCHIVE_TASKS_FOR: 'hg-push',
      MOZHARNESS_ARCHIVE_TASK_ID: p.decision_task_id,
      MOZHARNESS_ARCHIVE_LOG_LEVEL: 'debug',
    });
    const out: string[] = [];
    const err: string[] = [];
    const w = [process.stdout.write, process.stderr.write] as const;
    process.stdout.write = ((x: string) => (
      out.push(String(x)),
      true
    )) as typeof process.stdout.write;
    process.stderr.write = ((x: string) => (
      err.push(String(x)),
      true
    )) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main([
        'node',
        'mozharness-archive',
        'decision',
        '--checkout',
        checkout,
        '--root',
        ROOT,
        '--out',
        path.join(tmp, 'artifacts-cli'),
        '--root-url',
        embedded.rootUrl,
        '--json',
      ]);
    } finally {
      [process.stdout.write, process.stderr.write] = w;
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    assert.equal(code, 0, err.join(''));
    const summary = JSON.parse(out.join(''));
    assert.equal(summary.submitted.created.length, 8);
    assert.equal(summary.archive.result, 'miss');
    const archive = await queue.task(summary.archive.taskId);
    assert.equal(archive.payload.treeDigest, summary.treeDigest);
    assert.ok(
      !(out.join('') + err.join('')).includes(embedded.credentials.accessToken),
      'no credential in output',
    );
  });
  it("the rendered decision task's own command checks out the push and runs the decision", async () => {
    // a real hg repository with the harness, the in-tree config and .taskcluster.yml, served over HTTP
    const repo = await createHgRepo(path.join(tmp, 'hg-repo'));
    const files: Record<string, string> = { '.taskcluster.yml': TCYML };
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.yml'))
          files[path.relative(process.cwd(), p)] = fs.readFileSync(p, 'utf8');
      }
    };
    walk(ROOT);
    const revision = await hgCommit(repo.path, files, 'in-tree taskgraph');
    const server = await startHgServe(repo.path);
    try {
      const p: Parameters = {
        ...pushParams(6),
        head_repository: server.url,
        base_repository: server.url,
        head_rev: revision,
      };
      await startDecisionTask(p);
      const { payload } = await queue.task(p.decision_task_id);
      // `mozharness-archive` on PATH, as in the decision image
      const bin = path.join(tmp, 'bin');
      fs.mkdirSync(bin, { recursive: true });
      const loader = pathToFileURL(path.resolve('node_modules/tsx/dist/loader.mjs')).href;
      fs.writeFileSync(
        path.join(bin, 'mozharness-archive'),
        `#!/bin/sh\nexec "${process.execPath}" --import ${loader} "${path.resolve('src/cli/main.ts')}" "$@"\n`,
        { mode: 0o755 },
      );
      const work = path.join(tmp, 'decision-work');
      const env: NodeJS.ProcessEnv = {
        ...HG_ENV,
        ...(payload.env as NodeJS.ProcessEnv),
        MOZHARNESS_ARCHIVE_CHECKOUT: path.join(work, 'checkouts', 'src'),
        MOZHARNESS_ARCHIVE_OUT: path.join(work, 'artifacts'),
        PATH: `${bin}:${process.env.PATH}`,
        TASKCLUSTER_ROOT_URL: embedded.rootUrl,
        TASKCLUSTER_CLIENT_ID: embedded.credentials.clientId,
        TASKCLUSTER_ACCESS_TOKEN: embedded.credentials.accessToken,
        TASK_ID: p.decision_task_id,
      };
      const [cmd, ...args] = payload.command as string[];
      // async: the embedded services answer from this process while the command runs
      const result = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(cmd!, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (status) => resolve({ status, stderr }));
      });
      assert.equal(result.status, 0, result.stderr);
      const listed = await queue.listTaskGroup(p.decision_task_id);
      assert.equal(listed.tasks.length, 9, 'the decision task and its 8 tasks');
      const graph = JSON.parse(
        fs.readFileSync(path.join(work, 'artifacts', 'task-graph.json'), 'utf8'),
      );
      const archive = Object.values<any>(graph).find((t) => t.label === 'mozharness-archive');
      assert.equal(archive.task.payload.repository, server.url);
      assert.equal(archive.task.payload.revision, revision);
      const actions = JSON.parse(
        fs.readFileSync(path.join(work, 'artifacts', 'actions.json'), 'utf8'),
      );
      assertUpstream('/schemas/common/action-schema-v1.json', actions);
      assert.ok(actions.actions.length > 0, "actions from the checkout's .taskcluster.yml");
    } finally {
      await server.close();
    }
  });
});
