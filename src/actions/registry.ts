// The in-tree actions this project offers, and the `public/actions.json` that the decision task
// publishes for Treeherder (spec: Taskcluster's action-schema-v1, `kind: hook` as taskgraph emits
// it). Every action is a hook in `project-<trustDomain>` named
// `in-tree-action-<level>-<perm>/<sha256(.taskcluster.yml)[:10]>`; the hook renders
// `.taskcluster.yml`'s `tasks_for: action` branch, whose task runs `mozharness-archive
// action-callback` (src/actions/callback.ts).
import crypto from 'node:crypto';
import { ARCHIVE_KIND } from '../contract/index.js';
import { ArchiveError } from '../util/errors.js';
import { publishedSchema, type ActionSchemaName } from './schemas.js';

export type CallbackName =
  | 'retrigger-multiple'
  | 'add-new-jobs'
  | 'retrigger'
  | 'rebuild-mozharness-archive'
  | 'cancel'
  | 'cancel-all';

export type TagSet = Record<string, string>;

export interface ActionDefinition {
  /** The name UIs look for (Treeherder: `retrigger-multiple`, `add-new-jobs`, `cancel`, …). */
  name: string;
  /** The callback the action task runs (unique). */
  cbName: CallbackName;
  title: string;
  /** Treeherder symbol of the action task (groupSymbol comes from .taskcluster.yml). */
  symbol: string;
  description: string;
  /** `[]`: a task-group action; otherwise the tag-sets of the tasks it applies to. */
  context: TagSet[];
  /** Input schema file; none means the input is null. */
  schema?: ActionSchemaName;
  /** Permission family of the hook (`generic` actions share one hook per level). */
  perm: 'generic';
}

/** In the order UIs list them. */
export const ACTIONS: readonly ActionDefinition[] = [
  {
    name: 'retrigger-multiple',
    cbName: 'retrigger-multiple',
    title: 'Retrigger',
    symbol: 'rt',
    description:
      'Create clones of the given tasks (by label) in this push, `times` times each. Upstream ' +
      'tasks are reused when they completed and outlive the new deadline; the harness archive is ' +
      'otherwise found again by its content digest, or rebuilt first.',
    context: [],
    schema: 'action-retrigger-multiple.json',
    perm: 'generic',
  },
  {
    name: 'add-new-jobs',
    cbName: 'add-new-jobs',
    title: 'Add new jobs',
    symbol: 'add-new',
    description:
      "Schedule the given tasks (by label) of this push's full task graph, including tasks the " +
      'target set left out, `times` times each.',
    context: [],
    schema: 'action-add-new-jobs.json',
    perm: 'generic',
  },
  {
    name: 'retrigger',
    cbName: 'retrigger',
    title: 'Retrigger',
    symbol: 'rt',
    description:
      'Create a clone of this task (`times` times). With `downstream`, also clone the tasks that ' +
      'depend on it, pointing at the new task.',
    context: [{ retrigger: 'true' }],
    schema: 'action-retrigger.json',
    perm: 'generic',
  },
  {
    name: 'rebuild-mozharness-archive',
    cbName: 'rebuild-mozharness-archive',
    title: 'Rebuild mozharness archive',
    symbol: 'rb',
    description:
      'Build the harness archive again from source, even though its content digest is indexed, ' +
      'and index the new archive at a higher rank. Use it when an archive is suspected bad; the ' +
      'old archive keeps resolving for the tasks that used it.',
    context: [{ kind: ARCHIVE_KIND }],
    schema: 'action-rebuild-mozharness-archive.json',
    perm: 'generic',
  },
  {
    name: 'cancel',
    cbName: 'cancel',
    title: 'Cancel task',
    symbol: 'cx',
    description: 'Cancel this task.',
    context: [{}],
    perm: 'generic',
  },
  {
    name: 'cancel-all',
    cbName: 'cancel-all',
    title: 'Cancel all',
    symbol: 'cxA',
    description:
      'Cancel every task of this push that has not resolved yet (the decision and action tasks ' +
      'excepted).',
    context: [],
    perm: 'generic',
  },
];

export function actionByCallback(cbName: string): ActionDefinition {
  const a = ACTIONS.find((x) => x.cbName === cbName);
  if (!a) {
    throw new ArchiveError(
      'usage',
      `unknown action callback '${cbName}'; known: ${ACTIONS.map((x) => x.cbName).join(', ')}`,
    );
  }
  return a;
}

/** First 10 hex digits of the sha256 of `.taskcluster.yml`'s bytes (as taskgraph and ci-admin). */
export function tcymlHash(content: string | Buffer): string {
  return crypto.createHash('sha256').update(content).digest('hex').slice(0, 10);
}

export function hookGroupIdFor(trustDomain: string): string {
  return `project-${trustDomain}`;
}

/**
 * The action hook of a level and permission for one `.taskcluster.yml`. A pull request's decision
 * task offers the pull-request hooks (`in-tree-pr-action-…`, as taskgraph names them for
 * `tasks_for: github-pull-request*`), whose action tasks run as the base repository's
 * `pr-action` role, never as the repository's own `action` role.
 */
export function hookIdFor(
  level: number | string,
  perm: string,
  hash: string,
  pullRequest = false,
): string {
  if (perm.includes('/'))
    throw new ArchiveError('usage', `'/' is not allowed in an action permission: ${perm}`);
  return `${pullRequest ? 'in-tree-pr-action' : 'in-tree-action'}-${level}-${perm}/${hash}`;
}

/** Whether decision parameters are a pull request's (taskcluster-github's `tasks_for`). */
export function isPullRequestPush(params: Record<string, unknown>): boolean {
  return String(params.tasks_for ?? params.tasksFor ?? '').startsWith('github-pull-request');
}

/**
 * The push parameters an action needs. Field names are accepted in the decision task's
 * parameters.yml spelling (camelCase) or taskgraph's (snake_case).
 */
export interface ActionPush {
  project: string;
  level: string;
  repository: string;
  revision: string;
  baseRevision?: string;
  owner: string;
  pushlogId: string;
  branch?: string;
  /** The repository a pull request targets (its scopes are the pull-request action's). */
  baseRepository?: string;
}

function pick(p: Record<string, unknown>, ...keys: string[]): unknown {
  for (const k of keys) if (p[k] !== undefined && p[k] !== null && p[k] !== '') return p[k];
  return undefined;
}

/** Normalise decision parameters (either spelling) into what actions need. */
export function actionPush(params: Record<string, unknown>): ActionPush {
  const str = (v: unknown) => (v === undefined ? undefined : String(v));
  const project = str(pick(params, 'project'));
  const level = str(pick(params, 'level'));
  const repository = str(
    pick(params, 'repository', 'repositoryUrl', 'head_repository', 'headRepository'),
  );
  const revision = str(pick(params, 'revision', 'head_rev', 'headRev'));
  const missing = Object.entries({ project, level, repository, revision })
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length) {
    throw new ArchiveError(
      'invalid-config',
      `decision parameters lack ${missing.join(', ')} (needed to render actions)`,
    );
  }
  const push: ActionPush = {
    project: project!,
    level: level!,
    repository: repository!.replace(/\/+$/, ''),
    revision: revision!,
    owner: str(pick(params, 'owner')) ?? 'nobody@mozilla.com',
    pushlogId: str(pick(params, 'pushlogId', 'pushlog_id')) ?? '0',
  };
  const base = str(pick(params, 'baseRevision', 'base_revision', 'base_rev', 'baseRev'));
  if (base) push.baseRevision = base;
  const branch = str(pick(params, 'branch', 'head_ref', 'headRef'));
  if (branch) push.branch = branch;
  const baseRepository = str(pick(params, 'base_repository', 'baseRepository'));
  if (baseRepository) push.baseRepository = baseRepository.replace(/\/+$/, '');
  return push;
}

export interface RenderActionsOptions {
  /** The decision task id (= the push's task group). */
  decisionTaskId: string;
  /** `tcymlHash(.taskcluster.yml bytes)` of the revision being built. */
  tcymlHash: string;
  trustDomain: string;
  /** Defaults to the parameters' level. */
  level?: number | string;
  /** Pass the decision parameters through to the action task (hookPayload.decision.parameters;
   * .taskcluster.yml reads the push date from them). Default true. */
  includeParameters?: boolean;
}

export interface ActionsJson {
  version: 1;
  variables: Record<string, unknown>;
  actions: Array<Record<string, unknown>>;
}

/** A value json-e renders to itself: `${` becomes `$${`, a key `$k` becomes `$$k`. */
export function jsoneLiteral(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(/\$\{/g, () => '$${');
  if (Array.isArray(value)) return value.map(jsoneLiteral);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k.startsWith('$') ? '$' + k : k, jsoneLiteral(v)]),
    );
  }
  return value;
}

/** The `hookPayload` template: json-e rendered by the UI with `{taskGroupId, taskId, input}`. */
export function hookPayloadTemplate(
  action: ActionDefinition,
  push: ActionPush,
  decisionTaskId: string,
  parameters?: Record<string, unknown>,
): Record<string, unknown> {
  const pushOut: Record<string, string> = {
    owner: push.owner,
    pushlog_id: push.pushlogId,
    revision: push.revision,
  };
  if (push.baseRevision) pushOut.base_revision = push.baseRevision;
  if (push.branch) pushOut.branch = push.branch;
  const decision: Record<string, unknown> = {
    action: {
      name: action.name,
      title: action.title,
      description: action.description,
      taskGroupId: decisionTaskId,
      cb_name: action.cbName,
      symbol: action.symbol,
    },
    repository: {
      url: push.repository,
      project: push.project,
      level: push.level,
      ...(push.baseRepository ? { base_url: push.baseRepository } : {}),
    },
    push: pushOut,
  };
  if (parameters) decision.parameters = parameters;
  return {
    // Data inside a json-e template: escape anything json-e would interpret.
    decision: jsoneLiteral(decision),
    user: {
      input: { $eval: 'input' },
      taskId: { $eval: 'taskId' },
      taskGroupId: { $eval: 'taskGroupId' },
    },
  };
}

/** Render `public/actions.json` for a decision task. */
export function renderActionsJson(
  params: Record<string, unknown>,
  opts: RenderActionsOptions,
): ActionsJson {
  const push = actionPush(params);
  const level = String(opts.level ?? push.level);
  if (!/^[1-3]$/.test(level))
    throw new ArchiveError('invalid-config', `level must be 1, 2 or 3 (got ${level})`);
  if (!/^[0-9a-f]{10}$/.test(opts.tcymlHash)) {
    throw new ArchiveError(
      'invalid-config',
      `tcymlHash must be 10 hex digits (got ${opts.tcymlHash})`,
    );
  }
  if (!/^[a-zA-Z0-9-_]+$/.test(opts.trustDomain)) {
    throw new ArchiveError('invalid-config', `invalid trust domain '${opts.trustDomain}'`);
  }
  const actions = ACTIONS.map((a) => {
    const out: Record<string, unknown> = {
      name: a.name,
      title: a.title,
      description: a.description,
      context: a.context.map((t) => ({ ...t })),
    };
    if (a.schema) out.schema = publishedSchema(a.schema);
    out.kind = 'hook';
    out.hookGroupId = hookGroupIdFor(opts.trustDomain);
    out.hookId = hookIdFor(level, a.perm, opts.tcymlHash, isPullRequestPush(params));
    out.hookPayload = hookPayloadTemplate(
      a,
      { ...push, level },
      opts.decisionTaskId,
      opts.includeParameters === false ? undefined : params,
    );
    out.extra = { actionPerm: a.perm };
    return out;
  });
  return { version: 1, variables: {}, actions };
}

/** True when a task with `tags` is in the action's context (spec: some tag-set ⊆ tags). */
export function contextMatches(
  context: TagSet[],
  tags: Record<string, string> | undefined,
): boolean {
  const t = tags ?? {};
  return context.some((set) => Object.entries(set).every(([k, v]) => t[k] === v));
}
