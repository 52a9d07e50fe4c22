// `mozharness-archive local run` (`npm start`): replay pushes on one machine, end to end, with the
// same code as production. The embedded services stand in for Taskcluster, s3rver for S3, and git
// smart HTTP (`git http-backend`) or `hg serve` for the repository host; for each push the
// producer's rendering of .taskcluster.yml creates the decision task, and the local runners play
// the workers: the decision task in-process, the real archive worker core, and shell runners for
// docker-worker and generic-worker payloads (which really fetch, verify and unpack the archive).
// Then a retrigger goes through Treeherder's path (actions.json → hook → action task).
// Phases: set up, then per push (decision task, drain the group, read the archive's fate), then
// the retrigger.
import fs from 'node:fs';
import path from 'node:path';
import { triggerAction } from '../actions/trigger.js';
import { ARCHIVE_LABEL } from '../contract/index.js';
import type { GraphConfig } from '../decision/config.js';
import type { TasksFor } from '../decision/parameters.js';
import { indexClient, queueClient, type QueueClient } from '../taskcluster/client.js';
import { listTaskGroup } from '../taskcluster/listing.js';
import { ArchiveError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { sleepUnlessAborted } from '../util/retry.js';
import { startEmbedded, type Embedded } from './embedded.js';
import {
  pushArchive,
  pushLabels,
  PushLog,
  PushProducer,
  type PushArchive,
  type PushRecord,
} from './pushes.js';
import { detectVcs, lastRevisions, resolveRevisions, which } from './repo.js';
import { startGitHttp, startHgServe, type RepoServer } from './repo-server.js';
import { localRunners, type LocalRunner } from './runners.js';
import { createSampleRepo, type Vcs } from './sample-repo.js';

export interface ReplayOptions {
  /** State directory of the embedded services, s3rver and the sample repository. */
  stateDir: string;
  /** This project's root (its taskcluster/scripts play the docker images' contents). */
  projectRoot: string;
  /** A local hg or git repository to replay instead of the sample one. */
  repo?: string;
  /** The kind of sample repository (default git, or hg where git is missing). */
  vcs?: Vcs;
  /** Revisions to replay (default: the sample repository's three pushes, or the repo's last 3). */
  revisions?: string[];
  project?: string;
  level?: '1' | '2' | '3';
  /** Show a retrigger through Treeherder's path after the pushes (default true). */
  retrigger?: boolean;
  log?: Logger;
  /** One line per step, for a terminal or a plain log. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface TaskSummary {
  label: string;
  taskId: string;
  state: string;
  ms?: number;
  logTail?: string[];
}

export interface PushSummary {
  revision: string;
  description?: string;
  decisionTaskId: string;
  pushlogId: string;
  /** The producer whose rendering of .taskcluster.yml created the decision task. */
  producer: TasksFor;
  /** Project and trust level of the push, as the producer's rendering set them. */
  project: string;
  level: string;
  archive: PushArchive;
  /** Requests the repository server answered during this push. */
  repoRequests: number;
  tasks: TaskSummary[];
}

export interface RetriggerSummary {
  action: string;
  decisionTaskId: string;
  actionTaskId: string;
  labels: string[];
  tasks: TaskSummary[];
}

export interface ReplaySummary {
  rootUrl: string;
  stateDir: string;
  repository: string;
  vcs: Vcs;
  pushes: PushSummary[];
  retrigger?: RetriggerSummary;
  ok: boolean;
}

/** What the replay runs on: the services, the repository and its server, the runners. */
interface Stage {
  o: ReplayOptions;
  say: (line: string) => void;
  embedded: Embedded;
  queue: QueueClient;
  repoDir: string;
  vcs: Vcs;
  revisions: string[];
  descriptions: Map<string, string>;
  server: RepoServer;
  runTask: LocalRunner;
}

/** The repository to replay and the revisions: --repo's, or the sample repository's pushes. */
async function chooseRepository(o: ReplayOptions, stateDir: string, say: (l: string) => void) {
  const descriptions = new Map<string, string>();
  if (o.repo) {
    const repoDir = path.resolve(o.repo);
    const vcs = detectVcs(repoDir);
    const revisions = o.revisions?.length
      ? await resolveRevisions(repoDir, vcs, o.revisions)
      : await lastRevisions(repoDir, vcs, 3);
    return { repoDir, vcs, revisions, descriptions };
  }
  const vcs: Vcs = o.vcs ?? ((await which('git')) ? 'git' : 'hg');
  const repoDir = path.join(stateDir, `sample-repo-${vcs}`);
  let pushes;
  if (!fs.existsSync(repoDir)) {
    say(`creating the sample ${vcs} repository in ${repoDir}`);
    pushes = (await createSampleRepo(repoDir, vcs, o.projectRoot)).pushes;
  } else {
    const revs = await lastRevisions(repoDir, vcs, 3);
    pushes = revs.map((revision) => ({ revision, description: '' }));
  }
  for (const p of pushes) if (p.description) descriptions.set(p.revision, p.description);
  const revisions = o.revisions?.length
    ? await resolveRevisions(repoDir, vcs, o.revisions)
    : pushes.map((p) => p.revision);
  return { repoDir, vcs, revisions, descriptions };
}

/** Start the services, the repository server and the runners; register their clean-ups. */
async function setUp(
  o: ReplayOptions,
  stateDir: string,
  cleanups: Array<() => Promise<unknown>>,
): Promise<Stage> {
  const log = o.log ?? silentLogger;
  const say = o.onProgress ?? (() => {});
  say(`starting the embedded services in ${stateDir}`);
  const embedded = await startEmbedded({ stateDir, log, claimWorkPollMs: 500 });
  cleanups.push(() => embedded.close());
  const { repoDir, vcs, revisions, descriptions } = await chooseRepository(o, stateDir, say);
  const project = o.project ?? 'mozilla-central';
  const server: RepoServer =
    vcs === 'hg'
      ? await startHgServe(repoDir, { prefix: project })
      : await startGitHttp(repoDir, { prefix: project });
  cleanups.push(() => server.close());
  say(`serving ${repoDir} at ${server.url} (${vcs === 'hg' ? 'hg serve' : 'git http-backend'})`);
  const runTask = localRunners({
    rootUrl: embedded.rootUrl,
    credentials: embedded.credentials,
    s3: embedded.s3!,
    projectRoot: o.projectRoot,
    stateDir,
    repo: { path: repoDir, vcs },
    allowRepos: [server.url],
    log,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const rootOpts = { rootUrl: embedded.rootUrl, credentials: embedded.credentials };
  return {
    o,
    say,
    embedded,
    queue: queueClient(rootOpts),
    repoDir,
    vcs,
    revisions,
    descriptions,
    server,
    runTask,
  };
}

/** Run every task of a group until none is pending or running; record each in `seen`. */
async function drain(st: Stage, taskGroupId: string, seen: Map<string, TaskSummary>) {
  for (;;) {
    if (st.o.signal?.aborted) throw new ArchiveError('internal', 'interrupted');
    const statuses = (await listTaskGroup(st.queue, taskGroupId)).map((t) => t.status);
    const pending = statuses.filter((s) => s.state === 'pending');
    if (!pending.length) {
      if (statuses.some((s) => s.state === 'running')) {
        await sleepUnlessAborted(200, st.o.signal);
        continue;
      }
      for (const s of statuses) {
        const t = seen.get(s.taskId);
        if (t) t.state = s.state;
        else seen.set(s.taskId, { label: s.taskId, taskId: s.taskId, state: s.state });
      }
      return;
    }
    const res = await st.queue.claimWork(pending[0]!.taskQueueId, {
      workerGroup: 'local',
      workerId: 'runner',
      tasks: 1,
    });
    for (const claim of res.tasks) {
      st.say(`  running ${claim.task.metadata.name} ${claim.status.taskId}`);
      const outcome = await st.runTask(claim);
      seen.set(outcome.taskId, {
        label: outcome.label,
        taskId: outcome.taskId,
        state: outcome.state,
        ms: outcome.ms,
        ...(outcome.state !== 'completed' ? { logTail: outcome.logTail } : {}),
      });
      st.say(`  ${outcome.state.padEnd(9)} ${outcome.label} (${(outcome.ms / 1000).toFixed(1)} s)`);
    }
  }
}

/** One push: its decision task, every task it creates, and what became of its archive. */
async function replayPush(
  st: Stage,
  producer: PushProducer,
  revision: string,
  previous: string,
): Promise<{ summary: PushSummary; labels: Record<string, string> }> {
  const description = st.descriptions.get(revision);
  const push: PushRecord & { config: Pick<GraphConfig, 'indexPrefix' | 'archive'> } =
    await producer.push({
      revision,
      baseRevision: previous,
      owner: 'developer@example.com',
      ...(description ? { message: description } : {}),
    });
  st.say(`push ${push.pushlogId}: ${revision}${description ? ` (${description})` : ''}`);
  const before = st.server.requests.length;
  const seen = new Map<string, TaskSummary>();
  await drain(st, push.decisionTaskId, seen);
  const repoRequests = st.server.requests.length - before;
  const rootOpts = { rootUrl: st.embedded.rootUrl, credentials: st.embedded.credentials };
  const archive = await pushArchive(
    { queue: st.queue, index: indexClient(rootOpts) },
    push,
    push.config,
  );
  const labels = await pushLabels(st.queue, push.decisionTaskId);
  for (const [label, id] of Object.entries(labels)) {
    const t = seen.get(id);
    if (t) t.label = label;
  }
  const decisionSummary = seen.get(push.decisionTaskId);
  if (decisionSummary) decisionSummary.label = 'decision';
  return {
    summary: {
      revision,
      ...(description ? { description } : {}),
      decisionTaskId: push.decisionTaskId,
      pushlogId: push.pushlogId,
      producer: push.producer,
      project: push.project,
      level: push.level,
      archive,
      repoRequests,
      tasks: [...seen.values()],
    },
    labels,
  };
}

/** A retrigger through Treeherder's path: actions.json → hook → action task → new tasks. */
async function replayRetrigger(
  st: Stage,
  decisionTaskId: string,
  labels: Record<string, string>,
): Promise<RetriggerSummary | undefined> {
  const label =
    Object.keys(labels).find((l) => l.startsWith('test-')) ??
    Object.keys(labels).find((l) => l !== ARCHIVE_LABEL);
  if (!label) return undefined;
  st.say(`retrigger: ${label} on the last push, as Treeherder's Retrigger button does`);
  const before = new Set(
    (await listTaskGroup(st.queue, decisionTaskId)).map((t) => t.status.taskId),
  );
  const r = await triggerAction({
    rootUrl: st.embedded.rootUrl,
    credentials: st.embedded.credentials,
    decisionTaskId,
    action: 'retrigger-multiple',
    input: { requests: [{ tasks: [label], times: 1 }] },
    log: st.o.log ?? silentLogger,
  });
  const seen = new Map<string, TaskSummary>();
  await drain(st, decisionTaskId, seen);
  return {
    action: r.action.name,
    decisionTaskId,
    actionTaskId: r.actionTaskId,
    labels: [label],
    tasks: [...seen.values()].filter((t) => !before.has(t.taskId)),
  };
}

export async function replay(o: ReplayOptions): Promise<ReplaySummary> {
  const stateDir = path.resolve(o.stateDir);
  fs.mkdirSync(stateDir, { recursive: true });
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const st = await setUp(o, stateDir, cleanups);
    const producer = new PushProducer({
      rootUrl: st.embedded.rootUrl,
      credentials: st.embedded.credentials,
      repoDir: st.repoDir,
      vcs: st.vcs,
      repository: st.server.url,
      project: o.project ?? 'mozilla-central',
      level: o.level ?? '3',
      pushLog: new PushLog(stateDir),
    });
    const pushes: PushSummary[] = [];
    let last: { decisionTaskId: string; labels: Record<string, string> } | undefined;
    let previous = '';
    for (const revision of st.revisions) {
      const { summary, labels } = await replayPush(st, producer, revision, previous);
      pushes.push(summary);
      last = { decisionTaskId: summary.decisionTaskId, labels };
      previous = revision;
    }
    const retrigger =
      (o.retrigger ?? true) && last
        ? await replayRetrigger(st, last.decisionTaskId, last.labels)
        : undefined;
    const all = [...pushes.flatMap((p) => p.tasks), ...(retrigger?.tasks ?? [])];
    return {
      rootUrl: st.embedded.rootUrl,
      stateDir,
      repository: st.server.url,
      vcs: st.vcs,
      pushes,
      ...(retrigger ? { retrigger } : {}),
      ok: all.every((t) => t.state === 'completed') && pushes.every((p) => p.archive.sha256),
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
}
