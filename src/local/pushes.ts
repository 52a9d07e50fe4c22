// A push on the local forest, as the producer and the deployment see it: the state directory's
// push log (pushlog ids, push dates, and the decision task of every push, which the dashboard
// lists), the roles and action hooks ci-admin would install for the repository, the producer's
// rendering of .taskcluster.yml into the decision task, and, once the push's tasks ran, what
// became of its archive (built or reused, digests, download link, index namespaces).
import fs from 'node:fs';
import path from 'node:path';
import { actionHookDefinition, actionRoles, installActionHooks } from '../actions/hooks.js';
import {
  ARCHIVE_LABEL,
  cacheNamespace,
  latestNamespace,
  METADATA_ARTIFACT,
  projectNamespace,
  pushlogIdNamespace,
  revisionNamespace,
} from '../contract/index.js';
import type { GraphConfig } from '../decision/config.js';
import { makeParameters, type Parameters, type TasksFor } from '../decision/parameters.js';
import { taskQueueId as aliasQueue } from '../decision/resolve.js';
import { renderDecisionTask } from '../decision/tcyml.js';
import {
  authClient,
  hooksClient,
  queueClient,
  slugid,
  type IndexClient,
  type QueueClient,
} from '../taskcluster/client.js';
import { ArchiveError } from '../util/errors.js';
import { getJson } from '../util/http.js';
import { loadConfigAt, readAtRevision } from './repo.js';
import type { Vcs } from './sample-repo.js';

/** One push the local forest created a decision task for. */
export interface PushRecord {
  pushlogId: string;
  revision: string;
  baseRevision: string;
  /** Unix seconds. */
  pushdate: number;
  author: string;
  message: string;
  decisionTaskId: string;
  producer: TasksFor;
  repository: string;
  project: string;
  level: string;
}

interface LocalState {
  nextPushlogId: number;
  lastPushdate: number;
  pushes?: PushRecord[];
}

/** The state directory's push log (`local-run.json`), shared by `local run` and `local up`. */
export class PushLog {
  readonly file: string;
  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'local-run.json');
  }
  private read(): LocalState {
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8')) as LocalState;
    } catch {
      return { nextPushlogId: 1, lastPushdate: 0 };
    }
  }
  private write(s: LocalState): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n');
    fs.renameSync(tmp, this.file);
  }
  /** The next pushlog id and a push date later than every earlier push's. */
  allocate(): { pushlogId: string; pushdate: number } {
    const s = this.read();
    const pushlogId = String(s.nextPushlogId++);
    const pushdate = Math.max(Math.floor(Date.now() / 1000), s.lastPushdate + 1);
    s.lastPushdate = pushdate;
    this.write(s);
    return { pushlogId, pushdate };
  }
  record(p: PushRecord): void {
    const s = this.read();
    s.pushes = [...(s.pushes ?? []).filter((q) => q.decisionTaskId !== p.decisionTaskId), p];
    this.write(s);
  }
  /** Every recorded push, oldest first. */
  list(): PushRecord[] {
    return this.read().pushes ?? [];
  }
}

/**
 * The producer that renders .taskcluster.yml for a push to a repository of this kind: Mozilla's
 * hg-push hook for hg, fxci-config's build-decision (git-push) for git.
 */
export function producerFor(vcs: Vcs): TasksFor {
  return vcs === 'git' ? 'git-push' : 'hg-push';
}

function repoPath(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
}

/**
 * The roles a deployment gives a repository's pushes at its level (what the decision task may do).
 * `pushRole` is the role the decision task assumes (hg: `repo:<path>:branch:default`).
 */
export function pushRoles(
  config: GraphConfig,
  repository: string,
  project: string,
  level: string,
  pushRole = `repo:${repoPath(repository)}:branch:default`,
) {
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
  // the project a producer gives the push (a git push's from the projects map) may differ from
  // the repository's name that actionRoles derives its routes from
  const scopes = [
    ...new Set([
      ...actionRole!.scopes,
      `queue:route:tc-treeherder.v2.${project}.*`,
      `queue:route:index.${projectNamespace(config.indexPrefix, project)}.*`,
      `queue:route:index.${config.trustDomain}.v2.${project}.*`,
    ]),
  ];
  return [
    hookRole!,
    { ...actionRole!, scopes },
    { roleId: pushRole, description: `Pushes to ${project} (level ${level})`, scopes },
  ];
}

/** Every task queue a graph config's workers use at these levels, plus the decision queues. */
export function configQueues(config: GraphConfig, levels: string[]): string[] {
  const out = new Set<string>();
  for (const level of levels) {
    out.add(`${config.trustDomain}-${level}/decision`);
    for (const w of Object.values(config.workers)) out.add(aliasQueue(w, { level } as Parameters));
  }
  return [...out];
}

export interface PushTarget {
  rootUrl: string;
  credentials: { clientId: string; accessToken: string };
  repoDir: string;
  vcs: Vcs;
  /** The URL the repository is served at (what the decision and archive tasks fetch). */
  repository: string;
  project: string;
  level: '1' | '2' | '3';
  pushLog: PushLog;
}

export interface PushInput {
  revision: string;
  /** git: the pushed branch (default refs/heads/main). */
  ref?: string;
  baseRevision: string;
  owner: string;
  author?: string;
  message?: string;
}

/**
 * Creates the decision task of each push, as the producer does, after installing (once per
 * distinct .taskcluster.yml) the roles and action hooks ci-admin would.
 */
export class PushProducer {
  private readonly installed = new Set<string>();
  constructor(private readonly t: PushTarget) {}

  async push(p: PushInput): Promise<PushRecord & { config: GraphConfig }> {
    const t = this.t;
    const rootOpts = { rootUrl: t.rootUrl, credentials: t.credentials };
    const tcyml = await readAtRevision(t.repoDir, t.vcs, p.revision, '.taskcluster.yml').catch(
      () => {
        throw new ArchiveError('not-found', `revision ${p.revision} has no .taskcluster.yml`);
      },
    );
    const config = await loadConfigAt(t.repoDir, t.vcs, p.revision);
    const { pushlogId, pushdate } = t.pushLog.allocate();
    const decisionTaskId = slugid();
    const producer = producerFor(t.vcs);
    const params: Parameters = makeParameters({
      project: t.project,
      level: t.level,
      head_repository: t.repository,
      repository_type: t.vcs,
      head_rev: p.revision,
      base_rev: p.baseRevision,
      owner: p.owner,
      pushlog_id: pushlogId,
      pushdate,
      tasks_for: producer,
      decision_task_id: decisionTaskId,
      taskcluster_root_url: t.rootUrl,
    });
    const { taskId, ...def } = renderDecisionTask(
      tcyml,
      producer,
      params,
      producer === 'git-push' ? { githubRef: p.ref ?? 'refs/heads/main' } : {},
    );
    // a git push takes its level and project from .taskcluster.yml's projects map
    const env = (def.payload?.env ?? {}) as Record<string, string | undefined>;
    const level = (env.MOZHARNESS_ARCHIVE_LEVEL ?? t.level) as PushTarget['level'];
    const project = env.MOZHARNESS_ARCHIVE_PROJECT ?? t.project;
    const pushRole = def.scopes?.find((s) => s.startsWith('assume:repo:'))?.slice('assume:'.length);
    const key = `${level}\n${pushRole}\n${tcyml}`;
    if (!this.installed.has(key)) {
      // what ci-admin does for a deployment: roles per level, and the action hooks of this
      // .taskcluster.yml
      const roles = pushRoles(config, t.repository, project, level, pushRole);
      await installActionHooks(
        { hooks: hooksClient(rootOpts), auth: authClient(rootOpts) },
        [actionHookDefinition({ tcyml, trustDomain: config.trustDomain, level })],
        roles,
      );
      this.installed.add(key);
    }
    const id = taskId ?? decisionTaskId;
    await queueClient(rootOpts).createTask(id, def);
    const record: PushRecord = {
      pushlogId,
      revision: p.revision,
      baseRevision: p.baseRevision,
      pushdate,
      author: p.author ?? p.owner,
      message: p.message ?? '',
      decisionTaskId: id,
      producer,
      repository: t.repository,
      project,
      level,
    };
    t.pushLog.record(record);
    return { ...record, config };
  }
}

export interface PushArchive {
  taskId: string;
  reused: boolean;
  reason: string;
  treeDigest: string;
  sha256: string;
  url: string;
  namespaces: string[];
}

async function fetchJson(url: string): Promise<unknown> {
  // The caller treats any failure as "not there yet": one attempt, no retries.
  return getJson(url, { retries: 0 });
}

/** label → taskId of a decision task's graph ({} while it has none). */
export async function pushLabels(
  queue: QueueClient,
  decisionTaskId: string,
): Promise<Record<string, string>> {
  return fetchJson(
    queue.buildUrl(queue.getLatestArtifact, decisionTaskId, 'public/label-to-taskid.json'),
  )
    .then((j) => (j && typeof j === 'object' ? (j as Record<string, string>) : {}))
    .catch(() => ({}));
}

/** One entry of a decision task's public/optimizations.json (the fields read here). */
interface OptimizationRecord {
  label?: string;
  decision?: string;
  reason?: string;
  treeDigest?: string;
  replacement?: { taskId?: string; sha256?: string };
}

/** What became of a push's archive, from its decision task's artifacts and the index. */
export async function pushArchive(
  clients: { queue: QueueClient; index: IndexClient },
  push: Pick<PushRecord, 'decisionTaskId' | 'revision' | 'pushlogId' | 'project' | 'level'>,
  config: Pick<GraphConfig, 'indexPrefix' | 'archive'>,
): Promise<PushArchive> {
  const { queue, index } = clients;
  const art = (name: string) =>
    fetchJson(queue.buildUrl(queue.getLatestArtifact, push.decisionTaskId, name));
  const labels = await pushLabels(queue, push.decisionTaskId);
  const opts: OptimizationRecord[] = await art('public/optimizations.json')
    .then((j) => {
      if (Array.isArray(j)) return j;
      const o = (j ?? {}) as { records?: unknown; optimizations?: unknown };
      return (o.records ?? o.optimizations ?? []) as OptimizationRecord[];
    })
    .catch(() => []);
  const rec = opts.find((r) => r.label === ARCHIVE_LABEL) ?? {};
  const archiveTaskId: string = rec.replacement?.taskId ?? labels[ARCHIVE_LABEL] ?? '';
  const meta = (
    archiveTaskId
      ? await fetchJson(
          queue.buildUrl(queue.getLatestArtifact, archiveTaskId, METADATA_ARTIFACT),
        ).catch(() => ({}))
      : {}
  ) as { treeDigest?: string; sha256?: string };
  const url = archiveTaskId
    ? queue.buildUrl(queue.getLatestArtifact, archiveTaskId, config.archive.artifactName)
    : '';
  const prefix = config.indexPrefix;
  const candidates = [
    revisionNamespace(prefix, push.project, push.revision),
    ...[pushlogIdNamespace(prefix, push.project, push.pushlogId)].filter((n) => n !== undefined),
    latestNamespace(prefix, push.project),
    ...(meta.treeDigest ? [cacheNamespace(prefix, push.level, meta.treeDigest)] : []),
  ];
  const namespaces: string[] = [];
  for (const n of candidates) {
    const found = await index.findTask(n).catch(() => undefined);
    if (found && found.taskId === archiveTaskId) namespaces.push(n);
  }
  return {
    taskId: archiveTaskId,
    reused: rec.decision === 'replaced',
    reason: rec.reason ?? '',
    treeDigest: meta.treeDigest ?? rec.treeDigest ?? '',
    sha256: meta.sha256 ?? rec.replacement?.sha256 ?? '',
    url,
    namespaces,
  };
}
