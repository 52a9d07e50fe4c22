// `mozharness-archive action-callback`: the body of an action task. The hook rendered
// `.taskcluster.yml`'s `tasks_for: action` branch, which passes the action's context in
// ACTION_* environment variables; this reads the push's graphs, validates the input and every
// label, plans the new tasks, and only then creates them. Its own task-graph.json and
// label-to-taskid.json are written for later actions (a retrigger of a retrigger).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { IndexClient, QueueClient } from '../taskcluster/client.js';
import { slugid } from '../taskcluster/client.js';
import { latestArtifactExpiry, listTaskGroup } from '../taskcluster/listing.js';
import type { IndexedTask, TaskDefinition, TaskStatus } from '../taskcluster/types.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { loadPushView, type KnownTask, type PushView } from './graph.js';
import {
  planTasks,
  type DependencyDecision,
  type Plan,
  type PlannedTask,
  type PlanOracle,
  type PlanRequest,
} from './plan.js';
import { ARCHIVE_KIND } from '../contract/index.js';
import {
  actionByCallback,
  contextMatches,
  type ActionDefinition,
  type CallbackName,
} from './registry.js';
import { validateActionInput } from './schemas.js';

export interface ActionContext {
  /** ACTION_CALLBACK */
  callback: string;
  /** ACTION_TASK_GROUP_ID: the push's task group (= its decision task id). */
  taskGroupId: string;
  /** ACTION_TASK_ID: the task the action was triggered on, or null for group actions. */
  taskId: string | null;
  /** ACTION_INPUT */
  input: unknown;
  /** TASK_ID: the action task itself (new tasks depend on it). */
  ownTaskId?: string;
}

export interface CallbackDeps {
  queue: QueueClient;
  index: IndexClient;
  log?: Logger;
  now?: () => Date;
  newTaskId?: () => string;
  /** Where task-graph.json and label-to-taskid.json go (the task's public/ directory). */
  outDir?: string;
  /** Definition of a label the push did not schedule (add-new-jobs); from the decision code. */
  defineTask?: (label: string, view: PushView) => Promise<KnownTask | undefined>;
  /** Make a reused archive of another push this push's before re-creating it. */
  retarget?: (params: Record<string, unknown>) => (task: TaskDefinition) => TaskDefinition;
  fetchImpl?: typeof fetch;
  /** createTask calls in flight (default 20). */
  concurrency?: number;
}

export interface CallbackResult {
  callback: CallbackName;
  decisionTaskId: string;
  created: Array<{ taskId: string; label: string; copy: number }>;
  dependencies: DependencyDecision[];
  canceled: string[];
  labelToTaskId: Record<string, string>;
  artifacts: string[];
}

/** The ACTION_* context from the environment (as .taskcluster.yml's action branch sets it). */
export function actionContextFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ActionContext> {
  const out: Partial<ActionContext> = {};
  if (env.ACTION_CALLBACK) out.callback = env.ACTION_CALLBACK;
  if (env.ACTION_TASK_GROUP_ID) out.taskGroupId = env.ACTION_TASK_GROUP_ID;
  if (env.ACTION_TASK_ID !== undefined && env.ACTION_TASK_ID !== '') {
    out.taskId = parseJsonish(env.ACTION_TASK_ID, 'ACTION_TASK_ID') as string | null;
  }
  if (env.ACTION_INPUT !== undefined && env.ACTION_INPUT !== '') {
    out.input = parseJsonish(env.ACTION_INPUT, 'ACTION_INPUT');
  }
  if (env.TASK_ID) out.ownTaskId = env.TASK_ID;
  return out;
}

/** JSON, or a bare task id for ACTION_TASK_ID. */
export function parseJsonish(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (what === 'ACTION_TASK_ID' && /^[A-Za-z0-9_-]{22}$/.test(text)) return text;
    throw new ArchiveError('usage', `${what} is not valid JSON: ${errorMessage(e)}`);
  }
}

const SLUGID = /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;

function statusCode(e: unknown): number | undefined {
  return (e as { statusCode?: number })?.statusCode;
}

/** The plan's reads, through the queue and index. */
export function clientOracle(queue: QueueClient, index: IndexClient): PlanOracle {
  return {
    async status(taskId: string): Promise<TaskStatus | null> {
      try {
        return (await queue.status(taskId)).status;
      } catch (e) {
        if (statusCode(e) === 404) return null;
        throw e;
      }
    },
    async artifactExpires(taskId: string, name: string): Promise<Date | null> {
      try {
        const expires = await latestArtifactExpiry(queue, taskId, name);
        return expires === undefined ? null : new Date(expires);
      } catch (e) {
        if (statusCode(e) === 404) return null;
        throw e;
      }
    },
    async findIndexed(namespaces: string[]): Promise<IndexedTask[]> {
      if (!namespaces.length) return [];
      try {
        const res = await index.findTasksAtIndex({ indexes: namespaces });
        return res.tasks ?? [];
      } catch (e) {
        // one by one where the batch call is not offered
        if (statusCode(e) !== 501 && statusCode(e) !== 404) throw e;
      }
      const out: IndexedTask[] = [];
      for (const ns of namespaces) {
        try {
          out.push(await index.findTask(ns));
        } catch (e) {
          if (statusCode(e) !== 404) throw e;
        }
      }
      return out;
    },
    async task(taskId: string): Promise<TaskDefinition | null> {
      try {
        return await queue.task(taskId);
      } catch (e) {
        if (statusCode(e) === 404) return null;
        throw e;
      }
    },
  };
}

async function writeJsonAtomic(dir: string, name: string, value: unknown): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  await fs.writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await fs.rename(tmp, file);
  return file;
}

/** task-graph.json of an action: new taskId → {label, kind, dependencies, task}. */
export function actionTaskGraph(plan: Plan, created?: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const t of plan.tasks) {
    if (created && !created.has(t.taskId)) continue;
    out[t.taskId] = { label: t.label, kind: t.kind, dependencies: t.dependencies, task: t.task };
  }
  return out;
}

async function targetTask(
  deps: CallbackDeps,
  view: PushView,
  taskId: string,
): Promise<{ label: string; kind: string; tags: Record<string, string>; taskGroupId?: string }> {
  const known = view.tasks.get(taskId);
  let def: TaskDefinition | null = known?.task ?? null;
  if (!def) {
    try {
      def = await deps.queue.task(taskId);
    } catch (e) {
      if (statusCode(e) === 404)
        throw new ArchiveError('not-found', `task ${taskId} does not exist`);
      throw e;
    }
  }
  const label = known?.label ?? def.tags?.label ?? def.metadata.name;
  return {
    label,
    kind: known?.kind ?? def.tags?.kind ?? 'unknown',
    tags: def.tags ?? {},
    taskGroupId: def.taskGroupId,
  };
}

/** An action's input once its schema accepted it (each action uses the fields it declares). */
interface ActionInput {
  requests?: Array<{ tasks: string[]; times: number }>;
  tasks?: string[];
  times?: number;
  downstream?: boolean;
}

/** The context and input of an action, checked before anything is read or created. */
function checkedInput(action: ActionDefinition, ctx: ActionContext): ActionInput {
  const problems: string[] = [];
  if (!ctx.taskGroupId || !SLUGID.test(ctx.taskGroupId)) {
    problems.push(
      `ACTION_TASK_GROUP_ID must be the decision task's id (got ${JSON.stringify(ctx.taskGroupId)})`,
    );
  }
  const perTask = action.context.length > 0;
  if (perTask && (typeof ctx.taskId !== 'string' || !SLUGID.test(ctx.taskId))) {
    problems.push(
      `action '${action.name}' applies to one task: ACTION_TASK_ID must be a task id (got ${JSON.stringify(ctx.taskId)})`,
    );
  }
  let input: ActionInput = {};
  if (action.schema) {
    const v = validateActionInput(action.schema, ctx.input ?? {});
    if (v.ok) input = v.value as ActionInput;
    else problems.push(...v.errors);
  }
  if (problems.length) {
    throw new ArchiveError('usage', `action '${action.name}' refused: ${problems.join('; ')}`, {
      problems,
    });
  }
  return input;
}

/** cancel (one task of the push) and cancel-all (every unresolved task of the push). */
async function cancelTasks(
  action: ActionDefinition,
  ctx: ActionContext,
  deps: CallbackDeps,
  log: Logger,
): Promise<string[]> {
  const decisionTaskId = ctx.taskGroupId;
  const targets: string[] = [];
  if (action.cbName === 'cancel') {
    const def = await deps.queue.task(ctx.taskId!).catch((e) => {
      if (statusCode(e) === 404)
        throw new ArchiveError('not-found', `task ${ctx.taskId} does not exist`);
      throw e;
    });
    if (def.taskGroupId !== decisionTaskId) {
      throw new ArchiveError(
        'not-allowed',
        `task ${ctx.taskId} is not in this push's task group ${decisionTaskId}`,
      );
    }
    targets.push(ctx.taskId!);
  } else {
    for (const m of await listTaskGroup(deps.queue, decisionTaskId)) {
      const id: string = m.status.taskId;
      if (id === decisionTaskId || id === ctx.ownTaskId) continue;
      if (['unscheduled', 'pending', 'running'].includes(m.status.state)) targets.push(id);
    }
  }
  const canceled: string[] = [];
  const failures: string[] = [];
  await pool(targets, deps.concurrency ?? 20, async (id) => {
    try {
      await deps.queue.cancelTask(id);
      canceled.push(id);
      log.info('task-canceled', { taskId: id });
    } catch (e) {
      // a task that resolved meanwhile cannot be canceled; that is fine
      if (statusCode(e) === 409) log.info('task-already-resolved', { taskId: id });
      else failures.push(`${id}: ${errorMessage(e)}`);
    }
  });
  if (failures.length) {
    throw new ArchiveError(
      'unavailable',
      `could not cancel ${failures.length} task(s): ${failures.join('; ')}`,
    );
  }
  return canceled;
}

interface PlanAsk {
  requests: PlanRequest[];
  downstream: boolean;
  rebuild: string[];
}

/** The labels an action asks to re-create: from its input, or the task it was triggered on. */
async function planAsk(
  action: ActionDefinition,
  ctx: ActionContext,
  deps: CallbackDeps,
  view: PushView,
  input: ActionInput,
): Promise<PlanAsk> {
  switch (action.cbName) {
    case 'retrigger-multiple':
      return {
        requests: input.requests!.map((r) => ({ labels: r.tasks, times: r.times })),
        downstream: false,
        rebuild: [],
      };
    case 'add-new-jobs':
      return {
        requests: [{ labels: input.tasks!, times: input.times! }],
        downstream: false,
        rebuild: [],
      };
    case 'retrigger':
    case 'rebuild-mozharness-archive': {
      const target = await actionTarget(action, ctx, deps, view);
      const downstream = Boolean(input.downstream);
      if (action.cbName === 'retrigger') {
        return {
          requests: [{ labels: [target.label], times: input.times! }],
          downstream,
          rebuild: [],
        };
      }
      if (target.kind !== ARCHIVE_KIND) {
        throw new ArchiveError(
          'not-allowed',
          `task ${ctx.taskId} ('${target.label}') is not a mozharness archive task`,
        );
      }
      return {
        requests: [{ labels: [target.label], times: 1 }],
        downstream,
        rebuild: [target.label],
      };
    }
    default:
      throw new ArchiveError('internal', `no handler for callback ${action.cbName}`);
  }
}

/** The task a per-task action was triggered on, once it is known to be this push's and to match. */
async function actionTarget(
  action: ActionDefinition,
  ctx: ActionContext,
  deps: CallbackDeps,
  view: PushView,
): Promise<Awaited<ReturnType<typeof targetTask>>> {
  const decisionTaskId = ctx.taskGroupId;
  const target = await targetTask(deps, view, ctx.taskId!);
  if (target.taskGroupId && target.taskGroupId !== decisionTaskId && !view.tasks.has(ctx.taskId!)) {
    throw new ArchiveError(
      'not-allowed',
      `task ${ctx.taskId} ('${target.label}') is not part of push ${decisionTaskId}`,
    );
  }
  if (!contextMatches(action.context, target.tags)) {
    throw new ArchiveError(
      'not-allowed',
      `action '${action.name}' does not apply to task ${ctx.taskId} ('${target.label}'): its tags ` +
        `${JSON.stringify(target.tags)} match none of ${JSON.stringify(action.context)}`,
    );
  }
  return target;
}

/** The plan's tasks in waves: a task's wave comes after every wave holding a task it depends on. */
function creationWaves(plan: Plan): PlannedTask[][] {
  const inPlan = new Set(plan.tasks.map((t) => t.taskId));
  const waves: PlannedTask[][] = [];
  const wave = new Map<string, number>();
  for (const t of plan.tasks) {
    const w = Math.max(
      0,
      ...Object.values(t.dependencies)
        .filter((d) => inPlan.has(d))
        .map((d) => wave.get(d)! + 1),
    );
    wave.set(t.taskId, w);
    (waves[w] ??= []).push(t);
  }
  return waves;
}

/** Create the plan's tasks, parents first; stops after the first wave with a failure. */
async function createPlanned(
  plan: Plan,
  deps: CallbackDeps,
  log: Logger,
  result: CallbackResult,
): Promise<{ created: Set<string>; failures: string[] }> {
  const created = new Set<string>();
  const failures: string[] = [];
  for (const batch of creationWaves(plan)) {
    if (failures.length) break;
    await pool(batch, deps.concurrency ?? 20, async (t) => {
      try {
        await deps.queue.createTask(t.taskId, t.task);
        created.add(t.taskId);
        result.created.push({ taskId: t.taskId, label: t.label, copy: t.copy });
        log.info('task-created', { taskId: t.taskId, label: t.label, copy: t.copy });
      } catch (e) {
        failures.push(`${t.label} (${t.taskId}): ${errorMessage(e)}`);
      }
    });
  }
  return { created, failures };
}

/** Run one action callback. Throws ArchiveError (nothing created) when the input or a label is
 * wrong; on a createTask failure part-way, what was created is still written to the artifacts. */
export async function runActionCallback(
  ctx: ActionContext,
  deps: CallbackDeps,
): Promise<CallbackResult> {
  const log = deps.log ?? silentLogger;
  const now = (deps.now ?? (() => new Date()))();
  const action = actionByCallback(ctx.callback);
  const input = checkedInput(action, ctx);
  const decisionTaskId = ctx.taskGroupId;
  const result: CallbackResult = {
    callback: action.cbName,
    decisionTaskId,
    created: [],
    dependencies: [],
    canceled: [],
    labelToTaskId: {},
    artifacts: [],
  };
  if (action.cbName === 'cancel' || action.cbName === 'cancel-all') {
    result.canceled = await cancelTasks(action, ctx, deps, log);
    return result;
  }

  const view = await loadPushView(deps.queue, decisionTaskId, {
    ownTaskId: ctx.ownTaskId,
    log,
    fetchImpl: deps.fetchImpl,
  });
  const plan = await planTasks({
    view,
    ...(await planAsk(action, ctx, deps, view, input)),
    now,
    ownTaskId: ctx.ownTaskId,
    newTaskId: deps.newTaskId ?? slugid,
    oracle: clientOracle(deps.queue, deps.index),
    defineTask: deps.defineTask ? (label) => deps.defineTask!(label, view) : undefined,
    ...(deps.retarget ? { retarget: deps.retarget(view.parameters) } : {}),
  });
  result.dependencies = plan.dependencies;
  for (const d of plan.dependencies) log.info('dependency', { ...d });

  const { created, failures } = await createPlanned(plan, deps, log, result);
  const inPlan = new Set(plan.tasks.map((t) => t.taskId));
  for (const [label, id] of Object.entries(plan.labelToTaskId)) {
    if (created.has(id) || !inPlan.has(id)) result.labelToTaskId[label] = id;
  }
  if (deps.outDir) {
    result.artifacts.push(
      await writeJsonAtomic(deps.outDir, 'task-graph.json', actionTaskGraph(plan, created)),
      await writeJsonAtomic(deps.outDir, 'label-to-taskid.json', result.labelToTaskId),
    );
  }
  if (failures.length) {
    throw new ArchiveError(
      'unavailable',
      `action '${action.name}': ${failures.length} of ${plan.tasks.length} task(s) could not be created ` +
        `(${created.size} were): ${failures.join('; ')}`,
      { failures, created: [...created] },
    );
  }
  return result;
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) {
      const item = items[i++]!;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
