// Trigger an action exactly as Treeherder does (ui/models/taskcluster.js + job.js): fetch the
// decision task's public/actions.json without credentials through getLatestArtifact and its 303,
// pick the first action with that name whose context matches, render its hookPayload with json-e
// in Treeherder's context, check the decision task may use that hook, and call
// hooks.triggerHook. `mozharness-archive local trigger-action` is a thin wrapper around this.
import type { ValidateFunction } from 'ajv';
import jsone from 'json-e';
import { satisfiesExpression } from 'taskcluster-lib-scopes';
import {
  authClient,
  hooksClient,
  queueClient,
  slugid,
  type Credentials,
} from '../taskcluster/client.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { describeSchemaErrors, foreignValidator } from '../util/schemas.js';
import { contextMatches, type TagSet } from './registry.js';

export interface TriggerActionOptions {
  rootUrl: string;
  /** The user's credentials (Treeherder: the signed-in user's). */
  credentials?: Credentials;
  decisionTaskId: string;
  /** Action name, e.g. retrigger-multiple, add-new-jobs, retrigger, cancel. */
  action: string;
  /** The task the action applies to; absent for task-group actions. */
  taskId?: string;
  input?: unknown;
  /** Validate the input against the action's schema first, as the UI's form does (default true). */
  validateInput?: boolean;
  fetchImpl?: typeof fetch;
  log?: Logger;
}

export interface TriggerActionResult {
  action: { name: string; title: string; kind: string; hookGroupId?: string; hookId?: string };
  /** The rendered hook payload (or task definition for `kind: task`). */
  payload: unknown;
  /** The action task the hook (or the UI) created. */
  actionTaskId: string;
}

interface ActionsJsonAction {
  name: string;
  title: string;
  kind: string;
  context?: TagSet[];
  schema?: unknown;
  hookGroupId?: string;
  hookId?: string;
  hookPayload?: unknown;
  task?: unknown;
  description?: string;
}

function statusCode(e: unknown): number | undefined {
  return (e as { statusCode?: number })?.statusCode;
}

/** public/actions.json of a decision task, fetched anonymously through the queue's redirect. */
export async function fetchActionsJson(
  rootUrl: string,
  decisionTaskId: string,
  fetchImpl: typeof fetch = fetch,
): Promise<{ version: number; variables: Record<string, unknown>; actions: ActionsJsonAction[] }> {
  const anonymous = queueClient({ rootUrl });
  const url = anonymous.buildUrl(
    anonymous.getLatestArtifact,
    decisionTaskId,
    'public/actions.json',
  );
  let res: Response;
  try {
    res = await fetchImpl(url, { redirect: 'follow' });
  } catch (e) {
    throw new ArchiveError('unavailable', `cannot fetch ${url}: ${errorMessage(e)}`);
  }
  if (res.status === 404) {
    throw new ArchiveError(
      'not-found',
      `decision task ${decisionTaskId} has no public/actions.json`,
    );
  }
  if (!res.ok) {
    throw new ArchiveError(
      'unavailable',
      `public/actions.json of ${decisionTaskId}: HTTP ${res.status}`,
    );
  }
  let doc: { version?: unknown; variables?: Record<string, unknown>; actions?: unknown } | null;
  try {
    doc = (await res.json()) as typeof doc;
  } catch (e) {
    throw new ArchiveError(
      'corrupt',
      `public/actions.json of ${decisionTaskId} is not JSON: ${errorMessage(e)}`,
    );
  }
  if (!doc || doc.version !== 1 || !Array.isArray(doc.actions)) {
    throw new ArchiveError('corrupt', `public/actions.json of ${decisionTaskId} is not version 1`);
  }
  return {
    version: 1,
    variables: doc.variables ?? {},
    actions: doc.actions as ActionsJsonAction[],
  };
}

/** Treeherder's choice: actions of kind task|hook, first per name, matching the context. */
export function selectAction(
  actions: ActionsJsonAction[],
  name: string,
  tags: Record<string, string> | null,
): ActionsJsonAction | undefined {
  const usable = actions.filter((a) => a.kind === 'task' || a.kind === 'hook');
  return usable.find((a) => {
    if (a.name !== name) return false;
    const context = a.context ?? [];
    return tags === null
      ? context.length === 0
      : context.length > 0 && contextMatches(context, tags);
  });
}

type ActionsJsonDocument = Awaited<ReturnType<typeof fetchActionsJson>>;
type QueueOf = ReturnType<typeof queueClient>;

/** The task an action is triggered on, or null for a task-group action. */
async function targetTaskOf(queue: QueueOf, taskId?: string): Promise<TaskDefinition | null> {
  if (!taskId) return null;
  try {
    return await queue.task(taskId);
  } catch (e) {
    if (statusCode(e) === 404) throw new ArchiveError('not-found', `task ${taskId} does not exist`);
    throw e;
  }
}

/** The action Treeherder would pick, or an error naming those that do apply here. */
function chooseAction(
  opts: TriggerActionOptions,
  actionsJson: ActionsJsonDocument,
  task: TaskDefinition | null,
): ActionsJsonAction {
  const action = selectAction(actionsJson.actions, opts.action, task ? (task.tags ?? {}) : null);
  if (action) return action;
  const names = [
    ...new Set(
      actionsJson.actions
        .filter((a) =>
          task
            ? contextMatches(a.context ?? [], task.tags ?? {}) && (a.context ?? []).length > 0
            : (a.context ?? []).length === 0,
        )
        .map((a) => a.name),
    ),
  ];
  throw new ArchiveError(
    'not-found',
    `no action '${opts.action}' applies to ${opts.taskId ? `task ${opts.taskId}` : 'the task group'}` +
      ` of decision task ${opts.decisionTaskId}; available here: ${names.join(', ') || 'none'}`,
  );
}

/** The UI's form check: the input against the schema actions.json gives the action. */
function checkInput(action: ActionsJsonAction, input: unknown): void {
  // the schema comes from the decision task's actions.json: data, not one of ours
  let validate: ValidateFunction;
  try {
    validate = foreignValidator(action.schema as Record<string, unknown>);
  } catch (e) {
    throw new ArchiveError(
      'usage',
      `action '${action.name}' has an invalid input schema: ${errorMessage(e)}`,
    );
  }
  if (!validate(input)) {
    const errors = describeSchemaErrors(validate.errors, input, { root: 'input' });
    throw new ArchiveError('usage', `input for '${action.name}' is invalid: ${errors.join('; ')}`);
  }
}

/** `kind: task`: the UI creates the task itself, restricted to the decision task's scopes. */
async function createActionTask(
  opts: TriggerActionOptions,
  queue: QueueOf,
  action: ActionsJsonAction,
  context: Record<string, unknown>,
  task: TaskDefinition | null,
  log: Logger,
): Promise<TriggerActionResult> {
  const decision = await queue.task(opts.decisionTaskId);
  const ownTaskId = slugid();
  const rendered = jsone(action.task as object, {
    ...context,
    ownTaskId,
    task,
  }) as TaskDefinition;
  await queue.use({ authorizedScopes: decision.scopes ?? [] }).createTask(ownTaskId, rendered);
  log.info('action-task-created', { action: action.name, taskId: ownTaskId });
  return {
    action: { name: action.name, title: action.title, kind: 'task' },
    payload: rendered,
    actionTaskId: ownTaskId,
  };
}

/** `kind: hook`: render the hook payload and trigger the hook, if the decision task may. */
async function triggerActionHook(
  opts: TriggerActionOptions,
  queue: QueueOf,
  action: ActionsJsonAction,
  context: Record<string, unknown>,
  log: Logger,
): Promise<TriggerActionResult> {
  const clientOpts = { rootUrl: opts.rootUrl, credentials: opts.credentials };
  const hookGroupId = action.hookGroupId!;
  const hookId = action.hookId!;
  const payload = jsone(action.hookPayload as object, context);
  // Treeherder refuses hooks the decision task could not have triggered itself
  const decision = await queue.task(opts.decisionTaskId);
  let scopes: string[] = decision.scopes ?? [];
  try {
    scopes = (await authClient(clientOpts).expandScopes({ scopes })).scopes;
  } catch (e) {
    log.warn('expand-scopes-failed', { error: errorMessage(e) });
  }
  const needed = `in-tree:hook-action:${hookGroupId}/${hookId}`;
  if (!satisfiesExpression(scopes, needed)) {
    throw new ArchiveError(
      'not-allowed',
      `decision task ${opts.decisionTaskId} lacks scope ${needed}; refusing to trigger hook ${hookGroupId}/${hookId}`,
    );
  }
  let res: { status?: { taskId?: string }; taskId?: string } | undefined;
  try {
    res = await hooksClient(clientOpts).triggerHook(hookGroupId, hookId, payload);
  } catch (e) {
    const code = statusCode(e);
    throw new ArchiveError(
      code === 403 || code === 401 ? 'not-allowed' : code && code < 500 ? 'usage' : 'unavailable',
      `triggerHook ${hookGroupId}/${hookId} failed: ${errorMessage(e)}`,
    );
  }
  const actionTaskId = (res?.status?.taskId ?? res?.taskId)!;
  log.info('action-triggered', { action: action.name, hookGroupId, hookId, taskId: actionTaskId });
  return {
    action: { name: action.name, title: action.title, kind: 'hook', hookGroupId, hookId },
    payload,
    actionTaskId,
  };
}

/** Trigger one action on a decision task's push, or on one of its tasks, as Treeherder does. */
export async function triggerAction(opts: TriggerActionOptions): Promise<TriggerActionResult> {
  const log = opts.log ?? silentLogger;
  const queue = queueClient({ rootUrl: opts.rootUrl, credentials: opts.credentials });
  const actionsJson = await fetchActionsJson(
    opts.rootUrl,
    opts.decisionTaskId,
    opts.fetchImpl ?? fetch,
  );
  const task = await targetTaskOf(queue, opts.taskId);
  const action = chooseAction(opts, actionsJson, task);
  const input = opts.input ?? (action.schema ? {} : null);
  if (opts.validateInput !== false && action.schema) checkInput(action, input);
  const context: Record<string, unknown> = {
    taskGroupId: opts.decisionTaskId,
    taskId: opts.taskId ?? null,
    input,
    ...actionsJson.variables,
  };
  return action.kind === 'task'
    ? createActionTask(opts, queue, action, context, task, log)
    : triggerActionHook(opts, queue, action, context, log);
}
