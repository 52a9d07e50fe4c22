// What a Taskcluster deployment must hold for one trust domain, derived from the in-tree
// configuration (.taskcluster.yml, taskcluster/config.yml) and the role and hook generators of
// src/actions/hooks.ts: the projects and their levels, the roles of pushes, crons and actions, the
// in-tree action hooks, and the worker pools. `ciConfigFiles` writes it in Mozilla's
// ci-configuration (fxci-config) file formats (projects.yml, actions.yml, grants.yml,
// worker-pools.yml; src/actions/ci-config-files.ts); `applyCiConfig` creates the same through the Auth, Hooks and Worker Manager
// APIs, for deployments that have no ci-admin.
import type { GraphConfig } from '../decision/config.js';
import { makeParameters, type Parameters } from '../decision/parameters.js';
import { taskQueueId } from '../decision/resolve.js';
import { parseTaskclusterYml, renderDecisionTask, type RenderedTask } from '../decision/tcyml.js';
import type { AuthClient, HooksClient } from '../taskcluster/client.js';
import { ArchiveError } from '../util/errors.js';
import {
  actionHookDefinition,
  actionRoles,
  installActionHooks,
  type HookDefinition,
  type RoleDefinition,
} from './hooks.js';

export type Level = '1' | '2' | '3';

/** One repository (hg) or one branch of a repository (git) at one level. */
export interface CiProject {
  /** The project name: index namespaces and Treeherder use it. */
  project: string;
  repository: string;
  repositoryType: 'hg' | 'git';
  level: Level;
  /** hg: `default`; git: the branch name (a trailing `*` is a prefix). */
  branch: string;
}

export interface WorkerPoolDefinition {
  workerPoolId: string;
  level?: Level;
  /** What runs there: decision, archive, or a downstream worker alias of taskcluster/config.yml. */
  role: string;
  implementation: string;
  description: string;
}

export interface CiConfig {
  trustDomain: string;
  /** `.taskcluster.yml`'s `policy.pullRequests` (taskcluster-github's default: collaborators). */
  pullRequestPolicy?: string;
  levels: Level[];
  projects: CiProject[];
  roles: RoleDefinition[];
  hooks: HookDefinition[];
  workerPools: WorkerPoolDefinition[];
}

export interface CiConfigInput {
  /** The text of .taskcluster.yml. */
  tcyml: string;
  config: GraphConfig;
  /** Repositories the pushes of which come from outside (hg-push); git ones come from .taskcluster.yml. */
  projects?: CiProject[];
  /** Leave out the git repositories listed in .taskcluster.yml. */
  onlyGiven?: boolean;
}

export const OWNER = 'release+mozharness-archive@mozilla.com';
/** Static workers re-register at least this often (worker-manager's default is 96 h). */
export const REREGISTRATION_TIMEOUT_S = 4 * 86400;

export function repoPath(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
}

function asLevel(v: unknown, what: string): Level {
  const s = String(v);
  if (s !== '1' && s !== '2' && s !== '3') {
    throw new ArchiveError('invalid-config', `${what}: level must be 1, 2 or 3, not ${s}`);
  }
  return s;
}

/** The git repositories and branches .taskcluster.yml lists in its `projects` map. */
/** .taskcluster.yml's `projects` map: repository URL → its branches. */
type TcymlProjects = Record<
  string,
  { branches?: Array<{ name?: unknown; project?: unknown; level?: unknown }> } | undefined
>;

export function projectsFromTcyml(tcyml: string): CiProject[] {
  const doc = parseTaskclusterYml(tcyml);
  const find = (node: unknown): TcymlProjects | undefined => {
    if (!node || typeof node !== 'object') return undefined;
    if (Array.isArray(node)) {
      for (const n of node) {
        const f = find(n);
        if (f) return f;
      }
      return undefined;
    }
    const o = node as Record<string, unknown>;
    const bindings = o.$let as { projects?: TcymlProjects } | undefined;
    if (bindings && typeof bindings === 'object' && bindings.projects) return bindings.projects;
    for (const v of Object.values(o)) {
      const f = find(v);
      if (f) return f;
    }
    return undefined;
  };
  const projects = find(doc.tasks) ?? {};
  const out: CiProject[] = [];
  for (const [repository, entry] of Object.entries(projects)) {
    for (const b of entry?.branches ?? []) {
      out.push({
        project: String(b.project),
        repository,
        repositoryType: 'git',
        level: asLevel(b.level, `.taskcluster.yml projects[${repository}]`),
        branch: String(b.name),
      });
    }
  }
  return out;
}

/** Parse `--project name=url@level` (hg; a git URL from github.com is git, branch `main`). */
export function parseProjectFlag(flag: string): CiProject {
  const m = /^([A-Za-z0-9_.-]+)=(\S+?)@([123])(?::(\S+))?$/.exec(flag);
  if (!m) {
    throw new ArchiveError(
      'usage',
      `--project ${flag}: expected <name>=<repository URL>@<level>[:<git branch>], e.g. mozilla-central=https://hg.mozilla.org/mozilla-central@3`,
    );
  }
  const git = /github\.com\//.test(m[2]!) || m[4] !== undefined;
  return {
    project: m[1]!,
    repository: m[2]!.replace(/\/+$/, ''),
    repositoryType: git ? 'git' : 'hg',
    level: m[3] as Level,
    branch: git ? (m[4] ?? 'main') : 'default',
  };
}

/** The decision task .taskcluster.yml renders for a push to `p` (its queue, scheduler, scopes). */
function sampleDecisionTask(tcyml: string, p: CiProject): RenderedTask {
  const params: Parameters = makeParameters({
    project: p.project,
    level: p.level,
    head_repository: p.repository,
    repository_type: 'hg',
    head_rev: '0'.repeat(40),
    base_rev: '',
    owner: 'ci-config@example.com',
    pushlog_id: '1',
    pushdate: 0,
    tasks_for: 'hg-push',
    decision_task_id: 'AAAAAAAAQAGAAAAAAAAAAA',
    taskcluster_root_url: 'https://tc.example.com',
  });
  return renderDecisionTask(tcyml, 'hg-push', params, { now: '2000-01-01T00:00:00.000Z' });
}

/** The queue a level's decision (and action) tasks run on, as .taskcluster.yml renders it. */
export function decisionTaskQueueId(tcyml: string, config: GraphConfig, level: Level): string {
  const t = sampleDecisionTask(tcyml, {
    project: 'sample',
    repository: 'https://hg.example.com/sample',
    repositoryType: 'hg',
    level,
    branch: 'default',
  });
  if (typeof t.taskQueueId !== 'string') {
    throw new ArchiveError('invalid-config', '.taskcluster.yml renders no taskQueueId');
  }
  void config;
  return t.taskQueueId;
}

/** Every task queue a push of `level` may create tasks in: its decision queue and the pools of
 * taskcluster/config.yml with the level filled in. */
export function levelTaskQueueIds(tcyml: string, config: GraphConfig, level: Level): string[] {
  const params = { level } as Parameters;
  const queues = [
    decisionTaskQueueId(tcyml, config, level),
    ...Object.values(config.workers).map((w) => taskQueueId(w, params)),
  ];
  return [...new Set(queues)];
}

/** The scope a push's decision task assumes (`assume:<this>`), as .taskcluster.yml gives it. */
export function pushRoleId(p: CiProject): string {
  return `repo:${repoPath(p.repository)}:branch:${p.branch}`;
}

/**
 * The roles of one level's repositories: each repository's action role and the level's action
 * hook role (src/actions/hooks.ts `actionRoles`), and a push and a cron role holding what the
 * action role holds (the decision task creates the same tasks an action task does).
 */
export function levelRoles(
  tcyml: string,
  config: GraphConfig,
  level: Level,
  projects: CiProject[],
  pullRequestRepositories: string[] = [],
): RoleDefinition[] {
  const repositories = [...new Set(projects.map((p) => p.repository))];
  const roles = actionRoles({
    trustDomain: config.trustDomain,
    level,
    repositories,
    taskQueueIds: levelTaskQueueIds(tcyml, config, level),
    projectId: [config.projectId ?? 'none', 'none'],
    indexPrefix: config.indexPrefix,
    ...(level === '1' ? { pullRequestRepositories } : {}),
  });
  // a pull request's decision task (`repo:…:pull-request`) creates what its actions may
  for (const r of roles.filter((x) => /:pr-action:[^:]+$/.test(x.roleId))) {
    roles.push({
      roleId: r.roleId.replace(/:pr-action:[^:]+$/, ':pull-request'),
      description: `Pull requests to ${r.roleId.slice('repo:'.length).replace(/:pr-action:[^:]+$/, '')} (level 1)`,
      scopes: r.scopes,
    });
  }
  const byRepo = new Map(
    roles
      .filter((r) => r.roleId.startsWith('repo:') && /:action:[^:]+$/.test(r.roleId))
      .map((r) => [r.roleId.replace(/:action:[^:]+$/, ''), r] as const),
  );
  for (const p of projects) {
    const action = byRepo.get(`repo:${repoPath(p.repository)}`)!;
    roles.push({
      roleId: pushRoleId(p),
      description: `Pushes to ${p.project} (${p.repository} ${p.branch}, level ${level})`,
      scopes: action.scopes,
    });
  }
  for (const repository of repositories) {
    roles.push({
      roleId: `repo:${repoPath(repository)}:cron:*`,
      description: `Cron decision tasks of ${repository} (level ${level})`,
      scopes: byRepo.get(`repo:${repoPath(repository)}`)!.scopes,
    });
  }
  return roles;
}

/** `policy.pullRequests` of a `.taskcluster.yml` (taskcluster-github's default: collaborators). */
function tcymlPullRequestPolicy(tcyml: string): string {
  const doc = parseTaskclusterYml(tcyml) as { policy?: { pullRequests?: unknown } };
  const policy = doc.policy?.pullRequests;
  return typeof policy === 'string' ? policy : 'collaborators';
}

/** Everything the deployment holds for this trust domain. */
export function ciConfig(input: CiConfigInput): CiConfig {
  const { tcyml, config } = input;
  const projects = [
    ...(input.projects ?? []),
    ...(input.onlyGiven ? [] : projectsFromTcyml(tcyml)),
  ];
  // pull requests come to git repositories, and always run at level 1
  const prRepositories = [
    ...new Set(projects.filter((p) => p.repositoryType === 'git').map((p) => p.repository)),
  ];
  const levels = [
    ...new Set([...projects.map((p) => p.level), ...(prRepositories.length ? ['1' as const] : [])]),
  ].sort() as Level[];
  const roles: RoleDefinition[] = [];
  const hooks: HookDefinition[] = [];
  for (const level of levels) {
    const atLevel = projects.filter((p) => p.level === level);
    roles.push(...levelRoles(tcyml, config, level, atLevel, prRepositories));
    if (atLevel.length)
      hooks.push(actionHookDefinition({ tcyml, trustDomain: config.trustDomain, level }));
    if (level === '1' && prRepositories.length) {
      hooks.push(
        actionHookDefinition({ tcyml, trustDomain: config.trustDomain, level, pullRequest: true }),
      );
    }
  }
  const pools = new Map<string, WorkerPoolDefinition>();
  for (const level of levels) {
    const decision = decisionTaskQueueId(tcyml, config, level);
    pools.set(decision, {
      workerPoolId: decision,
      level,
      role: 'decision',
      implementation: 'docker-worker',
      description: `Decision and action tasks of level-${level} pushes (${config.trustDomain})`,
    });
    for (const [alias, w] of Object.entries(config.workers)) {
      const id = taskQueueId(w, { level } as Parameters);
      if (pools.has(id)) continue;
      const perLevel = w.taskQueueId.includes('{level}');
      pools.set(id, {
        workerPoolId: id,
        ...(perLevel ? { level } : {}),
        role: w.implementation === 'mozharness-archive' ? 'archive' : alias,
        implementation: w.implementation,
        description:
          w.implementation === 'mozharness-archive'
            ? `mozharness-archive workers of level ${level}: archive the harness of level-${level} pushes`
            : `Downstream ${alias} tasks (${w.implementation})${perLevel ? ` of level ${level}` : ''}`,
      });
    }
  }
  return {
    trustDomain: config.trustDomain,
    pullRequestPolicy: tcymlPullRequestPolicy(tcyml),
    levels,
    projects,
    roles,
    hooks,
    workerPools: [...pools.values()],
  };
}

export interface WorkerManagerClient {
  createWorkerPool(workerPoolId: string, body: unknown): Promise<unknown>;
  updateWorkerPool(workerPoolId: string, body: unknown): Promise<unknown>;
}

export interface ApplyClients {
  auth: AuthClient;
  hooks: HooksClient;
  workerManager?: WorkerManagerClient;
}

export interface ApplySummary {
  roles: string[];
  hooks: string[];
  workerPools: string[];
}

function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number })?.statusCode;
}

/** The body of worker-manager's createWorkerPool for a static pool. */
export function workerPoolBody(pool: WorkerPoolDefinition): Record<string, unknown> {
  return {
    providerId: 'static',
    description: pool.description,
    owner: OWNER,
    emailOnError: false,
    config: {
      lifecycle: { reregistrationTimeout: REREGISTRATION_TIMEOUT_S },
      workerConfig: {},
    },
  };
}

/** Create or update the roles, hooks and worker pools. Idempotent. */
export async function applyCiConfig(c: CiConfig, clients: ApplyClients): Promise<ApplySummary> {
  await installActionHooks({ hooks: clients.hooks, auth: clients.auth }, c.hooks, c.roles);
  const workerPools: string[] = [];
  if (clients.workerManager) {
    for (const pool of c.workerPools) {
      const body = workerPoolBody(pool);
      try {
        await clients.workerManager.createWorkerPool(pool.workerPoolId, body);
      } catch (e) {
        if (statusOf(e) !== 409) throw e;
        await clients.workerManager.updateWorkerPool(pool.workerPoolId, body);
      }
      workerPools.push(pool.workerPoolId);
    }
  }
  return {
    roles: c.roles.map((r) => r.roleId),
    hooks: c.hooks.map((h) => `${h.hookGroupId}/${h.hookId}`),
    workerPools,
  };
}
