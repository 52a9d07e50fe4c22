// `mozharness-archive local run` (`npm start`): replay pushes on one machine, end to end, with the
// same code as production. The embedded services stand in for Taskcluster, s3rver for S3 and
// `hg serve` for hg.mozilla.org; for each push the hg-push producer's rendering of
// .taskcluster.yml creates the decision task, and local runners play the workers: the decision
// task in-process, the real archive worker core, and shell runners for docker-worker and
// generic-worker payloads (which really fetch, verify and unpack the archive). Then a retrigger
// goes through Treeherder's path (actions.json → hook → action task).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { decisionTaskDefiner, retargetArchiveTask } from '../actions/define.js';
import { actionHookDefinition, actionRoles, installActionHooks } from '../actions/hooks.js';
import { runActionClaim, s3Publisher } from '../actions/local-runner.js';
import { triggerAction } from '../actions/trigger.js';
import {
  ARCHIVE_LABEL,
  cacheNamespace,
  latestNamespace,
  METADATA_ARTIFACT,
  pushlogIdNamespace,
  revisionNamespace,
} from '../contract/index.js';
import { loadGraphConfig, type GraphConfig } from '../decision/config.js';
import { makeParameters, type Parameters } from '../decision/parameters.js';
import { taskQueueId as aliasQueue } from '../decision/resolve.js';
import { renderDecisionTask } from '../decision/tcyml.js';
import { ArchiveStore } from '../storage/index.js';
import {
  authClient,
  hooksClient,
  indexClient,
  queueClient,
  slugid,
  type QueueClient,
} from '../taskcluster/client.js';
import type { ClaimedTask, TaskStatus } from '../taskcluster/types.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import {
  runOneClaim,
  S3TaskLogStore,
  validateWorkerConfig,
  workerS3Client,
  type WorkerConfig,
} from '../worker/index.js';
import { startEmbedded, type Embedded } from './embedded.js';
import { startGitHttp, startHgServe, type RepoServer } from './repo-server.js';
import { createSampleRepo, type Vcs } from './sample-repo.js';
import {
  runDecisionClaim,
  runDockerWorkerClaim,
  runGenericWorkerClaim,
  type LocalRunOutcome,
  type RunnerContext,
} from './task-runners.js';

const run = promisify(execFile);

export interface ReplayOptions {
  /** State directory of the embedded services, s3rver and the sample repository. */
  stateDir: string;
  /** This project's root (its taskcluster/scripts play the docker images' contents). */
  projectRoot: string;
  /** A local hg or git repository to replay instead of the sample one. */
  repo?: string;
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
  archive: {
    taskId: string;
    reused: boolean;
    reason: string;
    treeDigest: string;
    sha256: string;
    url: string;
    namespaces: string[];
  };
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

interface LocalState {
  nextPushlogId: number;
  lastPushdate: number;
}

function readState(file: string): LocalState {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LocalState;
  } catch {
    return { nextPushlogId: 1, lastPushdate: 0 };
  }
}

function writeState(file: string, s: LocalState): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

async function which(cmd: string): Promise<boolean> {
  try {
    await run(cmd, ['--version']);
    return true;
  } catch {
    return false;
  }
}

function detectVcs(repo: string): Vcs {
  if (fs.existsSync(path.join(repo, '.hg'))) return 'hg';
  if (fs.existsSync(path.join(repo, '.git')) || fs.existsSync(path.join(repo, 'HEAD')))
    return 'git';
  throw new ArchiveError('usage', `--repo ${repo}: not a Mercurial or git repository`);
}

async function readAtRevision(repo: string, vcs: Vcs, revision: string, file: string) {
  const { stdout } =
    vcs === 'hg'
      ? await run('hg', ['--cwd', repo, 'cat', '-r', revision, file], { maxBuffer: 16 << 20 })
      : await run('git', ['-C', repo, 'show', `${revision}:${file}`], { maxBuffer: 16 << 20 });
  return stdout;
}

async function resolveRevisions(repo: string, vcs: Vcs, revs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of revs) {
    try {
      const { stdout } =
        vcs === 'hg'
          ? await run('hg', ['-R', repo, 'log', '-r', r, '-T', '{node}'])
          : await run('git', ['-C', repo, 'rev-parse', '--verify', `${r}^{commit}`]);
      out.push(stdout.trim());
    } catch {
      throw new ArchiveError('not-found', `revision ${r} is not in ${repo}`);
    }
  }
  return out;
}

async function lastRevisions(repo: string, vcs: Vcs, n: number): Promise<string[]> {
  const { stdout } =
    vcs === 'hg'
      ? await run('hg', ['-R', repo, 'log', '-r', `last(all(), ${n})`, '-T', '{node}\n'])
      : await run('git', ['-C', repo, 'rev-list', '--reverse', `--max-count=${n}`, 'HEAD']);
  return stdout.split('\n').filter(Boolean);
}

function repoPath(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
}

/** The roles a deployment gives a repository's pushes at its level (what the decision task may do). */
export function pushRoles(config: GraphConfig, repository: string, project: string, level: string) {
  const queues = [
    ...Object.values(config.workers).map((w) => aliasQueue(w, { level } as Parameters)),
    `${config.trustDomain}-${level}/decision`,
  ];
  const [hookRole, actionRole] = actionRoles({
    trustDomain: config.trustDomain,
    level,
    repositories: [repository],
    taskQueueIds: queues,
    projectId: [config.projectId ?? 'none', 'none'],
    indexPrefix: config.indexPrefix,
  });
  return [
    hookRole!,
    actionRole!,
    {
      roleId: `repo:${repoPath(repository)}:branch:default`,
      description: `Pushes to ${project} (level ${level})`,
      scopes: actionRole!.scopes,
    },
  ];
}

async function fetchJson(url: string): Promise<any> {
  const res = await fetch(url, { redirect: 'follow' });
  if (!res.ok) throw new ArchiveError('not-found', `GET ${url}: ${res.status}`);
  return res.json();
}

type Runner = (claim: ClaimedTask) => Promise<LocalRunOutcome>;

/** Which local runner plays the worker for a claimed task. */
function kindOf(claim: ClaimedTask): 'action' | 'decision' | 'archive' | 'generic' | 'docker' {
  const p = claim.task.payload as any;
  if (typeof p?.env?.ACTION_CALLBACK === 'string') return 'action';
  if (typeof p?.env?.MOZHARNESS_ARCHIVE_TASKS_FOR === 'string') return 'decision';
  if (typeof p?.subdir === 'string' && typeof p?.repository === 'string') return 'archive';
  if (Array.isArray(p?.command?.[0])) return 'generic';
  return 'docker';
}

export async function replay(o: ReplayOptions): Promise<ReplaySummary> {
  const log = o.log ?? silentLogger;
  const say = o.onProgress ?? (() => {});
  const stateDir = path.resolve(o.stateDir);
  fs.mkdirSync(stateDir, { recursive: true });
  const level = o.level ?? '3';
  const project = o.project ?? 'mozilla-central';
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    say(`starting the embedded services in ${stateDir}`);
    const embedded: Embedded = await startEmbedded({ stateDir, log, claimWorkPollMs: 500 });
    cleanups.push(() => embedded.close());
    const s3 = embedded.s3!;
    const rootOpts = { rootUrl: embedded.rootUrl, credentials: embedded.credentials };
    const queue = queueClient(rootOpts);
    const index = indexClient(rootOpts);

    // the repository and its server
    let repoDir: string;
    let vcs: Vcs;
    let revisions: string[];
    const descriptions = new Map<string, string>();
    if (o.repo) {
      repoDir = path.resolve(o.repo);
      vcs = detectVcs(repoDir);
      revisions = o.revisions?.length
        ? await resolveRevisions(repoDir, vcs, o.revisions)
        : await lastRevisions(repoDir, vcs, 3);
    } else {
      vcs = (await which('hg')) ? 'hg' : 'git';
      repoDir = path.join(stateDir, `sample-repo-${vcs}`);
      let pushes;
      if (!fs.existsSync(repoDir)) {
        say(`creating the sample ${vcs} repository in ${repoDir}`);
        pushes = (await createSampleRepo(repoDir, vcs, o.projectRoot)).pushes;
      } else {
        const revs = await lastRevisions(repoDir, vcs, 3);
        pushes = revs.map((revision) => ({ revision, description: '' }));
      }
      for (const p of pushes) if (p.description) descriptions.set(p.revision, p.description);
      revisions = o.revisions?.length
        ? await resolveRevisions(repoDir, vcs, o.revisions)
        : pushes.map((p) => p.revision);
    }
    const server: RepoServer =
      vcs === 'hg'
        ? await startHgServe(repoDir, { prefix: project })
        : await startGitHttp(repoDir, { prefix: project });
    cleanups.push(() => server.close());
    const repository = server.url;
    say(`serving ${repoDir} at ${repository} (${vcs === 'hg' ? 'hg serve' : 'git http-backend'})`);

    // runners
    const publish = s3Publisher(s3);
    const rctx: RunnerContext = {
      rootUrl: embedded.rootUrl,
      publish,
      log,
      ...(o.signal ? { signal: o.signal } : {}),
    };
    const s3Settings = {
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: s3.region,
      publicBaseUrl: s3.publicBaseUrl,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      prefix: 'mozharness',
    };
    const workerConfig = (taskQueueId: string): WorkerConfig =>
      validateWorkerConfig({
        rootUrl: embedded.rootUrl,
        credentials: embedded.credentials,
        taskQueueId,
        workerGroup: 'local',
        workerId: 'archive-1',
        capacity: 1,
        s3: s3Settings,
        allowRepos: [repository],
        shutdownGraceSeconds: 30,
        workDir: path.join(stateDir, 'work'),
        // On a development machine the test user may not exist: the task log says what is missing.
        testIsolation: 'best-effort',
        once: true,
      });
    const store = new ArchiveStore(workerS3Client(s3Settings) as any, s3Settings);
    const logs = new S3TaskLogStore(workerS3Client(s3Settings), s3Settings);
    const scriptsDir = path.join(o.projectRoot, 'taskcluster', 'scripts');
    const runners: Record<ReturnType<typeof kindOf>, Runner> = {
      action: async (claim) => {
        const start = Date.now();
        const r = await runActionClaim(claim, {
          rootUrl: embedded.rootUrl,
          publish,
          log,
          // labels the push left out are generated from the in-tree kinds, as the action task's
          // checkout would (this project's taskcluster/ is the sample repository's)
          defineTask: decisionTaskDefiner({ root: path.join(o.projectRoot, 'taskcluster') }),
          retarget: retargetArchiveTask,
        });
        return {
          taskId: r.taskId,
          runId: r.runId,
          label: claim.task.metadata.name,
          state: r.state,
          ...(r.error ? { reason: r.error } : {}),
          logTail: r.error ? [r.error] : [],
          ms: Date.now() - start,
        };
      },
      decision: (claim) => runDecisionClaim(claim, { ...rctx, repo: { path: repoDir, vcs } }),
      archive: async (claim) => {
        const start = Date.now();
        const r = await runOneClaim(claim, workerConfig(claim.task.taskQueueId), {
          store,
          logs,
          log,
        });
        const res = r.resolution;
        return {
          taskId: claim.status.taskId,
          runId: claim.runId,
          label: claim.task.metadata.name,
          state: res.state === 'abandoned' ? 'exception' : res.state,
          ...(res.state !== 'completed' ? { reason: res.message } : {}),
          logTail: res.state !== 'completed' ? [res.message] : [],
          ms: Date.now() - start,
        };
      },
      docker: (claim) => runDockerWorkerClaim(claim, { ...rctx, scriptsDir }),
      generic: (claim) => runGenericWorkerClaim(claim, rctx),
    };

    /** Run every task of a group until none is pending or running. */
    const drain = async (taskGroupId: string, seen: Map<string, TaskSummary>) => {
      for (;;) {
        if (o.signal?.aborted) throw new ArchiveError('internal', 'interrupted');
        const statuses = await listGroup(queue, taskGroupId);
        const pending = statuses.filter((s) => s.state === 'pending');
        if (!pending.length) {
          if (statuses.some((s) => s.state === 'running')) {
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
          for (const s of statuses) {
            const t = seen.get(s.taskId);
            if (t) t.state = s.state;
            else seen.set(s.taskId, { label: s.taskId, taskId: s.taskId, state: s.state });
          }
          return;
        }
        const queueId = pending[0]!.taskQueueId;
        const res = await queue.claimWork(queueId, {
          workerGroup: 'local',
          workerId: 'runner',
          tasks: 1,
        });
        for (const claim of res.tasks) {
          const kind = kindOf(claim);
          say(`  running ${claim.task.metadata.name} (${kind}) ${claim.status.taskId}`);
          let outcome: LocalRunOutcome;
          try {
            outcome = await runners[kind](claim);
          } catch (e) {
            outcome = {
              taskId: claim.status.taskId,
              runId: claim.runId,
              label: claim.task.metadata.name,
              state: 'exception',
              reason: errorMessage(e),
              logTail: [errorMessage(e)],
              ms: 0,
            };
          }
          seen.set(outcome.taskId, {
            label: outcome.label,
            taskId: outcome.taskId,
            state: outcome.state,
            ms: outcome.ms,
            ...(outcome.state !== 'completed' ? { logTail: outcome.logTail } : {}),
          });
          say(
            `  ${outcome.state.padEnd(9)} ${outcome.label} (${(outcome.ms / 1000).toFixed(1)} s)`,
          );
        }
      }
    };

    const statePath = path.join(stateDir, 'local-run.json');
    const state = readState(statePath);
    const pushes: PushSummary[] = [];
    let previous = '';
    let lastDecision: { taskId: string; labels: Record<string, string> } | undefined;
    const installed = new Set<string>();
    for (const revision of revisions) {
      const pushlogId = String(state.nextPushlogId++);
      const pushdate = Math.max(Math.floor(Date.now() / 1000), state.lastPushdate + 1);
      state.lastPushdate = pushdate;
      writeState(statePath, state);
      say(
        `push ${pushlogId}: ${revision}${descriptions.has(revision) ? ` (${descriptions.get(revision)})` : ''}`,
      );
      const tcyml = await readAtRevision(repoDir, vcs, revision, '.taskcluster.yml');
      const config = await loadConfigAt(repoDir, vcs, revision);
      if (!installed.has(tcyml)) {
        // what ci-admin does for a deployment: roles per level, and the action hooks of this
        // .taskcluster.yml
        const roles = pushRoles(config, repository, project, level);
        await installActionHooks(
          { hooks: hooksClient(rootOpts), auth: authClient(rootOpts) },
          [actionHookDefinition({ tcyml, trustDomain: config.trustDomain, level })],
          roles,
        );
        installed.add(tcyml);
      }
      const decisionTaskId = slugid();
      const params: Parameters = makeParameters({
        project,
        level,
        head_repository: repository,
        repository_type: vcs,
        head_rev: revision,
        base_rev: previous,
        owner: 'developer@example.com',
        pushlog_id: pushlogId,
        pushdate,
        tasks_for: 'hg-push',
        decision_task_id: decisionTaskId,
        taskcluster_root_url: embedded.rootUrl,
      });
      const { taskId, ...def } = renderDecisionTask(tcyml, 'hg-push', params);
      await queue.createTask(taskId ?? decisionTaskId, def as any);
      const before = server.requests.length;
      const seen = new Map<string, TaskSummary>();
      await drain(decisionTaskId, seen);
      const repoRequests = server.requests.length - before;

      // what happened, from the decision task's artifacts and the index
      const art = (name: string) =>
        fetchJson(queue.buildUrl(queue.getLatestArtifact, decisionTaskId, name));
      const labels: Record<string, string> = await art('public/label-to-taskid.json').catch(
        () => ({}),
      );
      const opts: any[] = await art('public/optimizations.json')
        .then((j) => (Array.isArray(j) ? j : (j.records ?? j.optimizations ?? [])))
        .catch(() => []);
      const rec = opts.find((r) => r.label === ARCHIVE_LABEL) ?? {};
      const archiveTaskId: string = rec.replacement?.taskId ?? labels[ARCHIVE_LABEL] ?? '';
      const meta = archiveTaskId
        ? await fetchJson(
            queue.buildUrl(queue.getLatestArtifact, archiveTaskId, METADATA_ARTIFACT),
          ).catch(() => ({}))
        : {};
      const url = archiveTaskId
        ? queue.buildUrl(queue.getLatestArtifact, archiveTaskId, config.archive.artifactName)
        : '';
      const prefix = config.indexPrefix;
      const candidates = [
        revisionNamespace(prefix, project, revision),
        ...[pushlogIdNamespace(prefix, project, pushlogId)].filter((n) => n !== undefined),
        latestNamespace(prefix, project),
        ...(meta.treeDigest ? [cacheNamespace(prefix, level, meta.treeDigest)] : []),
      ];
      const namespaces: string[] = [];
      for (const n of candidates) {
        const found = await index.findTask(n).catch(() => undefined);
        if (found && found.taskId === archiveTaskId) namespaces.push(n);
      }
      for (const [label, id] of Object.entries(labels)) {
        const t = seen.get(id);
        if (t) t.label = label;
      }
      const decisionSummary = seen.get(decisionTaskId);
      if (decisionSummary) decisionSummary.label = 'decision';
      pushes.push({
        revision,
        ...(descriptions.has(revision) ? { description: descriptions.get(revision)! } : {}),
        decisionTaskId,
        pushlogId,
        archive: {
          taskId: archiveTaskId,
          reused: rec.decision === 'replaced',
          reason: rec.reason ?? '',
          treeDigest: meta.treeDigest ?? rec.treeDigest ?? '',
          sha256: meta.sha256 ?? rec.replacement?.sha256 ?? '',
          url,
          namespaces,
        },
        repoRequests,
        tasks: [...seen.values()],
      });
      lastDecision = { taskId: decisionTaskId, labels };
      previous = revision;
    }

    // a retrigger through Treeherder's path: actions.json → hook → action task → new tasks
    let retrigger: RetriggerSummary | undefined;
    if ((o.retrigger ?? true) && lastDecision) {
      const label =
        Object.keys(lastDecision.labels).find((l) => l.startsWith('test-')) ??
        Object.keys(lastDecision.labels).find((l) => l !== ARCHIVE_LABEL);
      if (label) {
        say(`retrigger: ${label} on the last push, as Treeherder's Retrigger button does`);
        const before = new Set((await listGroup(queue, lastDecision.taskId)).map((s) => s.taskId));
        const r = await triggerAction({
          rootUrl: embedded.rootUrl,
          credentials: embedded.credentials,
          decisionTaskId: lastDecision.taskId,
          action: 'retrigger-multiple',
          input: { requests: [{ tasks: [label], times: 1 }] },
          log,
        });
        const seen = new Map<string, TaskSummary>();
        await drain(lastDecision.taskId, seen);
        const tasks = [...seen.values()].filter((t) => !before.has(t.taskId));
        retrigger = {
          action: r.action.name,
          decisionTaskId: lastDecision.taskId,
          actionTaskId: r.actionTaskId,
          labels: [label],
          tasks,
        };
      }
    }

    const all = [...pushes.flatMap((p) => p.tasks), ...(retrigger?.tasks ?? [])];
    return {
      rootUrl: embedded.rootUrl,
      stateDir,
      repository,
      vcs,
      pushes,
      ...(retrigger ? { retrigger } : {}),
      ok: all.every((t) => t.state === 'completed') && pushes.every((p) => p.archive.sha256),
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
}

async function listGroup(queue: QueueClient, taskGroupId: string): Promise<TaskStatus[]> {
  const out: TaskStatus[] = [];
  let continuationToken: string | undefined;
  do {
    const res = await queue.listTaskGroup(taskGroupId, {
      ...(continuationToken ? { continuationToken } : {}),
    });
    for (const t of res.tasks) out.push(t.status);
    continuationToken = res.continuationToken;
  } while (continuationToken);
  return out;
}

async function loadConfigAt(repo: string, vcs: Vcs, revision: string): Promise<GraphConfig> {
  const dir = fs.mkdtempSync(path.join(repo, '..', '.config-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'config.yml'),
      await readAtRevision(repo, vcs, revision, 'taskcluster/config.yml'),
    );
    return await loadGraphConfig(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
