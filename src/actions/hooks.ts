// The action hooks and roles a deployment configures for the actions in actions.json (Mozilla's
// ci-admin generates the same from every repository's .taskcluster.yml): hook
// `project-<trustDomain>/in-tree-action-<level>-<perm>/<tcymlHash>` whose task template is
// `.taskcluster.yml`'s first task wrapped in a `$let` that turns the trigger payload into the
// `tasks_for: action` context. The embedded services (`local up`) install these so the whole
// retrigger path runs on one machine; `installActionHooks` is what local replay calls.
import * as yaml from 'js-yaml';
import { cacheLevelNamespace, projectNamespace } from '../contract/index.js';
import type { AuthClient, HooksClient } from '../taskcluster/client.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { hookGroupIdFor, hookIdFor, tcymlHash } from './registry.js';

export interface ActionHookOptions {
  /** The raw bytes/text of `.taskcluster.yml` (its hash names the hook). */
  tcyml: string;
  trustDomain: string;
  level: number | string;
  perm?: string;
  /** The pull-request hook (`in-tree-pr-action-…`, `tasks_for: pr-action`). */
  pullRequest?: boolean;
}

export interface HookDefinition {
  hookGroupId: string;
  hookId: string;
  definition: {
    metadata: { name: string; description: string; owner: string; emailOnError: boolean };
    schedule: string[];
    bindings: unknown[];
    task: Record<string, unknown>;
    triggerSchema: Record<string, unknown>;
  };
}

const str = (description: string, extra: Record<string, unknown> = {}) => ({
  type: 'string',
  description,
  ...extra,
});

/** The trigger schema: what an actions.json hookPayload renders to. `input` is free-form here
 * because one generic hook serves every generic action; the action task validates it. */
export function actionTriggerSchema(): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['decision', 'user'],
    properties: {
      decision: {
        type: 'object',
        additionalProperties: false,
        required: ['action', 'push', 'repository'],
        properties: {
          action: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'title', 'description', 'taskGroupId', 'cb_name', 'symbol'],
            properties: {
              name: str('action name'),
              title: str('action title'),
              description: str('action description'),
              taskGroupId: str('taskGroupId of the decision task'),
              cb_name: str('name of the in-tree callback'),
              symbol: str('Treeherder symbol'),
            },
          },
          push: {
            type: 'object',
            additionalProperties: false,
            required: ['owner', 'revision', 'pushlog_id'],
            properties: {
              owner: str('who pushed'),
              revision: str('revision of the push'),
              base_revision: str('revision before the push'),
              pushlog_id: str('pushlog id of the push'),
              branch: str('branch of the push'),
            },
          },
          repository: {
            type: 'object',
            additionalProperties: false,
            required: ['url', 'project', 'level'],
            properties: {
              url: str('repository URL, no trailing slash', { pattern: '[^/]$' }),
              project: str('project (repository alias)'),
              level: str('SCM level'),
              base_url: str('repository a pull request targets (its scopes are checked)'),
            },
          },
          parameters: { type: 'object', additionalProperties: true },
        },
      },
      user: {
        type: 'object',
        additionalProperties: false,
        required: ['input', 'taskId', 'taskGroupId'],
        properties: {
          input: {},
          taskId: { anyOf: [str('target task'), { type: 'null' }] },
          taskGroupId: str('target task group'),
        },
      },
    },
  };
}

/** The first task of `.taskcluster.yml`, before rendering (the action hook wraps it). */
function firstTask(tcyml: string): unknown {
  let parsed: unknown;
  try {
    parsed = yaml.load(tcyml);
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `.taskcluster.yml is not valid YAML: ${errorMessage(e)}`,
    );
  }
  const tasks = (parsed as { tasks?: unknown } | null)?.tasks;
  if (!Array.isArray(tasks) || !tasks.length) {
    throw new ArchiveError(
      'invalid-config',
      '.taskcluster.yml must have `tasks` as a non-empty array before rendering (action hooks wrap tasks[0])',
    );
  }
  return tasks[0];
}

/**
 * The scope the action task assumes: the role `role` of the repository in the payload (a pull
 * request's: the repository it targets, `base_url`). The hook's role only holds those scopes
 * of repositories at this level. (Scheme stripped: https:// as ci-admin's, http:// locally.)
 */
function repoScopeTemplate(pr: boolean, role: string): Record<string, unknown> {
  return {
    $let: {
      scopeUrl: pr
        ? {
            $if: "'base_url' in payload.decision.repository",
            then: { $eval: 'payload.decision.repository.base_url' },
            else: { $eval: 'payload.decision.repository.url' },
          }
        : { $eval: 'payload.decision.repository.url' },
    },
    in: {
      $if: 'scopeUrl[:8] == "https://"',
      then: 'assume:repo:${scopeUrl[8:]}:' + role,
      else: 'assume:repo:${scopeUrl[7:]}:' + role,
    },
  };
}

/** The hook for one (level, perm) and one `.taskcluster.yml`. */
export function actionHookDefinition(opts: ActionHookOptions): HookDefinition {
  const perm = opts.perm ?? 'generic';
  const first = firstTask(opts.tcyml);
  const hash = tcymlHash(opts.tcyml);
  const hookGroupId = hookGroupIdFor(opts.trustDomain);
  const pr = opts.pullRequest === true;
  const hookId = hookIdFor(opts.level, perm, hash, pr);
  // a pull request's action runs with the `pr-action` role, a push's with the `action` role
  const role = `${pr ? 'pr-action' : 'action'}:${perm}`;
  const task = {
    $let: {
      tasks_for: pr ? 'pr-action' : 'action',
      action: {
        name: '${payload.decision.action.name}',
        title: '${payload.decision.action.title}',
        description: '${payload.decision.action.description}',
        taskGroupId: '${payload.decision.action.taskGroupId}',
        symbol: '${payload.decision.action.symbol}',
        cb_name: '${payload.decision.action.cb_name}',
        repo_scope: repoScopeTemplate(pr, role),
        action_perm: perm,
      },
      push: { $eval: 'payload.decision.push' },
      repository: { $eval: 'payload.decision.repository' },
      input: { $eval: 'payload.user.input' },
      parameters: { $eval: "payload.decision['parameters']" },
      taskId: { $eval: 'payload.user.taskId' },
      taskGroupId: { $eval: 'payload.user.taskGroupId' },
      ownTaskId: { $eval: 'taskId' },
    },
    in: first,
  };
  return {
    hookGroupId,
    hookId,
    definition: {
      metadata: {
        name: `${hookGroupId}/${hookId}`,
        description:
          `${pr ? 'Pull-request action' : 'Action'} task (${perm}) at level ${opts.level}, ` +
          `for .taskcluster.yml hash ${hash}. ` +
          "Fired by the hookPayload templates of a decision task's actions.json.",
        owner: 'release-engineering@mozilla.com',
        emailOnError: false,
      },
      schedule: [],
      bindings: [],
      task,
      triggerSchema: actionTriggerSchema(),
    },
  };
}

export interface LevelRoleOptions {
  trustDomain: string;
  level: number | string;
  /** Repositories at this level (URLs as in parameters, e.g. https://hg.mozilla.org/try). */
  repositories: string[];
  /** Task queues action tasks may create tasks in (archive, build and test pools). */
  taskQueueIds: string[];
  /** Project ids of the tasks action tasks create (the push's, and `none` for action tasks). */
  projectId: string | string[];
  indexPrefix: string;
  perm?: string;
  /**
   * Repositories whose pull requests may run actions (level 1 only, whatever the level of their
   * branches): the pull-request hook role and each one's `pr-action` role.
   */
  pullRequestRepositories?: string[];
}

export interface RoleDefinition {
  roleId: string;
  scopes: string[];
  description: string;
}

function repoPath(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
}

/** What one repository's action tasks may do at level `L`, as project `project`. */
function actionScopes(
  opts: LevelRoleOptions,
  L: string,
  project: string,
  hookPrefix: string,
): string[] {
  const schedulerId = `${opts.trustDomain}-level-${L}`;
  return [
    ...opts.taskQueueIds.map((q) => `queue:create-task:highest:${q}`),
    ...[opts.projectId].flat().map((p) => `queue:create-task:project:${p}`),
    `queue:scheduler-id:${schedulerId}`,
    `queue:cancel-task:${schedulerId}/*`,
    `queue:route:tc-treeherder.v2.${project}.*`,
    `queue:route:index.${projectNamespace(opts.indexPrefix, project)}.*`,
    `queue:route:index.${cacheLevelNamespace(opts.indexPrefix, L)}.*`,
    // the action task's own routes (`<trustDomain>.v2.<project>.revision.….actions.<taskId>`)
    `queue:route:index.${opts.trustDomain}.v2.${project}.*`,
    'queue:get-task:*',
    'queue:status:*',
    'queue:list-task-group:*',
    'queue:list-artifacts:*',
    'queue:get-artifact:public/*',
    'index:find-task:*',
    'index:list-tasks:*',
    `in-tree:hook-action:${hookGroupIdFor(opts.trustDomain)}/${hookPrefix}-${L}-*`,
  ];
}

/** The project name a repository's pull requests run as (`<name>-pr`, as .taskcluster.yml says). */
export function pullRequestProject(repository: string): string {
  return `${repoPath(repository).split('/').pop()!}-pr`;
}

/**
 * Roles for one level: the hook role (assume the action role of every repository at this level)
 * and each repository's action role (what its action tasks may do: create tasks of this level
 * only, on its queues, with its routes; cancel tasks of this level; read the task group). At
 * level 1, the same for pull requests: the pull-request hook role assumes each repository's
 * `pr-action` role, which may do what a level-1 action may, as the repository's `-pr` project.
 */
export function actionRoles(opts: LevelRoleOptions): RoleDefinition[] {
  const perm = opts.perm ?? 'generic';
  const L = String(opts.level);
  const group = hookGroupIdFor(opts.trustDomain);
  const roles: RoleDefinition[] = [];
  if (opts.repositories.length) {
    roles.push({
      roleId: `hook-id:${group}/in-tree-action-${L}-${perm}/*`,
      description: `Action hooks (${perm}) of level ${L}: the action roles of level-${L} repositories`,
      scopes: opts.repositories.map((r) => `assume:repo:${repoPath(r)}:action:${perm}`),
    });
  }
  for (const r of opts.repositories) {
    roles.push({
      roleId: `repo:${repoPath(r)}:action:${perm}`,
      description: `What ${perm} action tasks of ${r} (level ${L}) may do`,
      scopes: actionScopes(opts, L, repoPath(r).split('/').pop()!, 'in-tree-action'),
    });
  }
  const prRepositories = L === '1' ? (opts.pullRequestRepositories ?? []) : [];
  if (!prRepositories.length) return roles;
  roles.push({
    roleId: `hook-id:${group}/in-tree-pr-action-${L}-${perm}/*`,
    description: `Pull-request action hooks (${perm}): the pr-action roles of repositories taking pull requests`,
    scopes: prRepositories.map((r) => `assume:repo:${repoPath(r)}:pr-action:${perm}`),
  });
  for (const r of prRepositories) {
    roles.push({
      roleId: `repo:${repoPath(r)}:pr-action:${perm}`,
      description: `What ${perm} action tasks of pull requests to ${r} (level ${L}) may do`,
      scopes: actionScopes(opts, L, pullRequestProject(r), 'in-tree-pr-action'),
    });
  }
  return roles;
}

interface HooksWithCreate extends HooksClient {
  createHook(hookGroupId: string, hookId: string, body: unknown): Promise<unknown>;
  updateHook(hookGroupId: string, hookId: string, body: unknown): Promise<unknown>;
}
interface AuthWithRoles extends AuthClient {
  createRole(roleId: string, body: unknown): Promise<unknown>;
  updateRole(roleId: string, body: unknown): Promise<unknown>;
}

function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number })?.statusCode;
}

/** Create (or update) the action hooks and roles. Idempotent. */
export async function installActionHooks(
  clients: { hooks: HooksClient; auth?: AuthClient },
  hooks: HookDefinition[],
  roles: RoleDefinition[] = [],
): Promise<void> {
  const h = clients.hooks as HooksWithCreate;
  for (const hook of hooks) {
    const body = { ...hook.definition };
    try {
      await h.createHook(hook.hookGroupId, hook.hookId, body);
    } catch (e) {
      if (statusOf(e) !== 409) throw e;
      await h.updateHook(hook.hookGroupId, hook.hookId, body);
    }
  }
  if (!roles.length) return;
  if (!clients.auth) throw new ArchiveError('usage', 'installing roles needs an auth client');
  const a = clients.auth as AuthWithRoles;
  for (const role of roles) {
    const body = { description: role.description, scopes: role.scopes };
    try {
      await a.createRole(role.roleId, body);
    } catch (e) {
      if (statusOf(e) !== 409) throw e;
      await a.updateRole(role.roleId, body);
    }
  }
}

export interface LocalActionsOptions {
  /** Clients holding `*` (the root credentials of `local up`). */
  hooks: HooksClient;
  auth: AuthClient;
  /** The text of `.taskcluster.yml` (the hooks are named after its hash). */
  tcyml: string;
  trustDomain: string;
  indexPrefix: string;
  projectId: string | string[];
  /** Repositories per level, e.g. {'1': ['https://hg.mozilla.org/try'], '3': [...]}. */
  repositories: Record<string, string[]>;
  /** Task queues of a level (decision/action queue, archive, build and test pools). */
  taskQueueIds: (level: string) => string[];
}

/** Everything a deployment (or `local up`/`npm start`) configures so actions.json's hooks work:
 * one generic action hook per level for this .taskcluster.yml, and the roles behind it. */
export async function setUpActionHooks(o: LocalActionsOptions): Promise<HookDefinition[]> {
  const hooks: HookDefinition[] = [];
  const roles: RoleDefinition[] = [];
  for (const [level, repositories] of Object.entries(o.repositories)) {
    hooks.push(actionHookDefinition({ tcyml: o.tcyml, trustDomain: o.trustDomain, level }));
    roles.push(
      ...actionRoles({
        trustDomain: o.trustDomain,
        level,
        repositories,
        taskQueueIds: o.taskQueueIds(level),
        projectId: o.projectId,
        indexPrefix: o.indexPrefix,
      }),
    );
  }
  await installActionHooks({ hooks: o.hooks, auth: o.auth }, hooks, roles);
  return hooks;
}
