// .taskcluster.yml (version 1): rendering with json-e in the context each producer gives it.
// `producerContext` builds that context from push parameters the way the producer would:
// Mozilla's hg-push hook, build-decision's git-push, taskcluster-github (pushes and pull
// requests), build-decision's cron, or an in-tree action hook.
import jsone from 'json-e';
import * as yaml from 'js-yaml';
import type { TaskDefinition } from '../taskcluster/types.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import type { PushParameters, TasksFor } from './parameters.js';
import { deterministicSlugid } from './taskids.js';

/** A task .taskcluster.yml renders: a task definition with the producer's `taskId`. */
export type RenderedTask = TaskDefinition & { taskId?: string };

export interface ActionContextInput {
  name: string;
  title: string;
  description: string;
  /** The decision task's group (target of the action). */
  taskGroupId: string;
  symbol: string;
  cb_name: string;
  repo_scope?: string;
  action_perm?: string;
  /** The target task, null for task-group actions. */
  taskId?: string | null;
  input?: unknown;
  /** The decision task's parameters (parameters.yml). */
  parameters?: Record<string, unknown>;
  clientId?: string;
}

export interface CronContextInput {
  task_id: string;
  job_name: string;
  job_symbol: string;
  quoted_args?: string;
  input?: unknown;
}

export interface PullRequestContextInput {
  /** The webhook's action: opened, synchronize, reopened (built); closed, edited... (not). */
  action: string;
  number: number;
  /** The branch of the pull request (head) and the branch it targets (base). */
  headBranch: string;
  baseBranch: string;
  /** The author's GitHub login. */
  login: string;
  /** The head repository (a fork, or the base repository itself). */
  headRepository?: string;
}

export interface ProducerOptions {
  /** json-e's `now` (ISO date-time), for reproducible output. */
  now?: string;
  /** git-push and github-push: the pushed ref (default refs/heads/main). */
  githubRef?: string;
  action?: ActionContextInput;
  cron?: CronContextInput;
  pullRequest?: PullRequestContextInput;
}

/** taskcluster-github's `policy.pullRequests` values (taskcluster-github-config.v1). */
export type PullRequestPolicy =
  'public' | 'public_restricted' | 'collaborators' | 'collaborators_quiet';

/**
 * What taskcluster-github does with a pull request under `policy` (read from the default
 * branch's .taskcluster.yml; `collaborators` when absent): the `tasks_for` it renders with, or
 * null when it renders nothing (a non-collaborator under a collaborators policy).
 */
export function pullRequestTasksFor(
  policy: PullRequestPolicy | undefined,
  isCollaborator: boolean,
): 'github-pull-request' | 'github-pull-request-untrusted' | null {
  switch (policy ?? 'collaborators') {
    case 'public':
      return 'github-pull-request';
    case 'public_restricted':
      return isCollaborator ? 'github-pull-request' : 'github-pull-request-untrusted';
    default:
      return isCollaborator ? 'github-pull-request' : null;
  }
}

export type { PushParameters };

function hostPath(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '').replace(/\.git$/, '');
}

function hgPushFields(p: PushParameters) {
  return {
    push: {
      owner: p.owner,
      pushlog_id: p.pushlog_id,
      pushdate: p.pushdate,
      revision: p.head_rev,
      base_revision: p.base_rev,
    },
    repository: {
      url: p.head_repository,
      project: p.project,
      level: p.level,
      type: p.repository_type,
    },
  };
}

/** The pushed git ref: the parameters' head_ref when it is one, else main. */
function gitRef(p: PushParameters): string {
  return p.head_ref?.startsWith('refs/') ? p.head_ref : 'refs/heads/main';
}

/** `as_slugid` as the producers define it: one stable slugid per label per event. */
function asSlugid(p: PushParameters): (label: string) => string {
  const slugs = new Map<string, string>();
  return (label: string) => {
    let s = slugs.get(label);
    if (!s) {
      s =
        label === 'decision'
          ? p.decision_task_id
          : deterministicSlugid(`as_slugid\n${p.decision_task_id}\n${label}`);
      slugs.set(label, s);
    }
    return s;
  };
}

function githubRepository(url: string) {
  const repo = url.replace(/\.git$/, '');
  const fullName = hostPath(repo).split('/').slice(1).join('/');
  return {
    name: fullName.split('/').pop()!,
    full_name: fullName,
    html_url: repo,
    clone_url: `${repo}.git`,
  };
}

/** build-decision's git-push: a synthesised event (no push time, no pushlog). */
function gitPushEvent(p: PushParameters, o: ProducerOptions) {
  return {
    base_ref: null,
    ref: o.githubRef ?? gitRef(p),
    before: p.base_rev || '0'.repeat(40),
    after: p.head_rev,
    pusher: { email: p.owner },
    repository: githubRepository(p.head_repository),
  };
}

/** taskcluster-github's push webhook body. */
function githubPushEvent(p: PushParameters, o: ProducerOptions) {
  return {
    ref: o.githubRef ?? gitRef(p),
    before: p.base_rev || '0'.repeat(40),
    after: p.head_rev,
    base_ref: null,
    repository: { ...githubRepository(p.head_repository), pushed_at: p.pushdate },
    pusher: { name: p.owner.split('@')[0], email: p.owner },
    head_commit: {
      id: p.head_rev,
      timestamp: new Date(p.pushdate * 1000).toISOString().replace('.000Z', 'Z'),
    },
  };
}

/** taskcluster-github's pull_request webhook body. */
function pullRequestEvent(p: PushParameters, o: ProducerOptions) {
  const pr = o.pullRequest ?? {
    action: 'opened',
    number: 1,
    headBranch: 'feature',
    baseBranch: 'main',
    login: p.owner.split('@')[0]!,
  };
  const baseRepo = githubRepository(p.head_repository);
  const headRepo = githubRepository(pr.headRepository ?? p.head_repository);
  const user = { login: pr.login, type: 'User' };
  return {
    action: pr.action,
    number: pr.number,
    pull_request: {
      number: pr.number,
      html_url: `${baseRepo.html_url}/pull/${pr.number}`,
      title: `Pull request ${pr.number}`,
      user,
      head: { ref: pr.headBranch, sha: p.head_rev, user, repo: headRepo },
      base: { ref: pr.baseBranch, sha: p.base_rev || '0'.repeat(40), repo: baseRepo },
    },
    repository: baseRepo,
    sender: user,
  };
}

/** build-decision's cron: the push fields of the revision, owned by cron, and the cron job. */
function cronFields(p: PushParameters, o: ProducerOptions) {
  const cron = o.cron ?? {
    task_id: deterministicSlugid(`cron\n${p.decision_task_id}`),
    job_name: 'nightly-archive',
    job_symbol: 'Na',
    quoted_args: '',
    input: {},
  };
  const ctx = hgPushFields(p);
  return {
    ...ctx,
    push: { ...ctx.push, owner: 'cron' },
    cron: { quoted_args: '', input: {}, ...cron },
    ownTaskId: p.decision_task_id,
  };
}

/** The in-tree action hooks' context: the push fields, the action and the hooks service's own. */
function actionFields(p: PushParameters, o: ProducerOptions) {
  const a = o.action;
  if (!a) throw new ArchiveError('usage', 'the action context needs an action');
  const ctx = hgPushFields(p);
  const perm = a.action_perm ?? 'generic';
  return {
    ...ctx,
    action: {
      name: a.name,
      title: a.title,
      description: a.description,
      taskGroupId: a.taskGroupId,
      symbol: a.symbol,
      cb_name: a.cb_name,
      repo_scope: a.repo_scope ?? `assume:repo:${hostPath(p.head_repository)}:action:${perm}`,
      action_perm: perm,
    },
    input: a.input ?? null,
    parameters: a.parameters ?? { ...ctx.push, project: p.project, level: p.level },
    taskId: a.taskId ?? null,
    taskGroupId: a.taskGroupId,
    // the hooks service's own context
    ownTaskId: p.decision_task_id,
    clientId: a.clientId ?? 'mozilla-auth0/ad|Mozilla-LDAP|someone',
    firedBy: 'triggerHook',
    payload: {},
  };
}

/** The json-e context the producer of `tasksFor` would render .taskcluster.yml with. */
export function producerContext(
  tasksFor: TasksFor,
  p: PushParameters,
  o: ProducerOptions = {},
): Record<string, unknown> {
  const base: Record<string, unknown> = {
    tasks_for: tasksFor,
    taskcluster_root_url: p.taskcluster_root_url,
  };
  if (o.now) base.now = o.now;
  switch (tasksFor) {
    case 'hg-push':
      // fxci-config build-decision: ownTaskId, no as_slugid
      return { ...base, ...hgPushFields(p), ownTaskId: p.decision_task_id };
    case 'git-push':
      // build-decision's git-push: as_slugid and ownTaskId
      return {
        ...base,
        event: gitPushEvent(p, o),
        as_slugid: asSlugid(p),
        ownTaskId: p.decision_task_id,
      };
    case 'github-push':
      // taskcluster-github: as_slugid, no ownTaskId
      return { ...base, event: githubPushEvent(p, o), as_slugid: asSlugid(p) };
    case 'github-pull-request':
      // taskcluster-github: as_slugid, no ownTaskId
      return { ...base, event: pullRequestEvent(p, o), as_slugid: asSlugid(p) };
    case 'cron':
      return { ...base, ...cronFields(p, o) };
    case 'action':
      return { ...base, ...actionFields(p, o) };
    default:
      throw new ArchiveError('usage', `unknown tasks_for '${String(tasksFor)}'`);
  }
}

export function parseTaskclusterYml(tcyml: string | object): Record<string, unknown> {
  let doc: unknown = tcyml;
  if (typeof tcyml === 'string') {
    try {
      doc = yaml.load(tcyml);
    } catch (e) {
      throw new ArchiveError(
        'invalid-config',
        `.taskcluster.yml: not valid YAML: ${errorMessage(e)}`,
      );
    }
  }
  if (!doc || typeof doc !== 'object') {
    throw new ArchiveError('invalid-config', '.taskcluster.yml: not a mapping');
  }
  const d = doc as Record<string, unknown>;
  if (d.version !== 1) {
    throw new ArchiveError(
      'invalid-config',
      `.taskcluster.yml: version must be 1, got ${JSON.stringify(d.version)}`,
    );
  }
  if (!Array.isArray(d.tasks)) {
    throw new ArchiveError(
      'invalid-config',
      '.taskcluster.yml: tasks must be an array before rendering (in-tree action hooks need it)',
    );
  }
  return d;
}

/**
 * Render .taskcluster.yml's `tasks` with json-e in `context`; returns the tasks (each keeps its
 * `taskId`, which the producer pops before createTask). Tasks rendered to null are dropped.
 */
export function renderTaskclusterYml(
  tcyml: string | object,
  context: Record<string, unknown>,
): RenderedTask[] {
  const doc = parseTaskclusterYml(tcyml);
  let rendered: unknown;
  try {
    rendered = jsone({ tasks: doc.tasks }, context);
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `.taskcluster.yml: rendering for tasks_for=${String(context.tasks_for)} failed: ${errorMessage(e)}`,
    );
  }
  const tasks = (rendered as { tasks: unknown[] }).tasks.flat(Infinity).filter((t) => t != null);
  return tasks as RenderedTask[];
}

/** Render for a producer; the producer requires exactly one task. */
export function renderDecisionTask(
  tcyml: string | object,
  tasksFor: TasksFor,
  p: PushParameters,
  o: ProducerOptions = {},
): RenderedTask {
  const tasks = renderTaskclusterYml(tcyml, producerContext(tasksFor, p, o));
  if (tasks.length !== 1) {
    throw new ArchiveError(
      'invalid-config',
      `.taskcluster.yml: tasks_for=${tasksFor} rendered ${tasks.length} tasks; the producer needs exactly one`,
    );
  }
  return tasks[0]!;
}
