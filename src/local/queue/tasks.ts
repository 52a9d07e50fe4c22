// Tasks, as upstream's queue api.js defines them: createTask (with upstream's checks of the task
// queue, scopes and dates), the task and task-group reads, and schedule, rerun and cancel.
import type { TaskDefinition, TaskStatusResponse } from '../../taskcluster/types.js';
import type { Logger } from '../../util/log.js';
import {
  ApiError,
  type HandlerResult,
  type RequestContext,
  type ScopeExpression,
} from '../framework.js';
import { decodeToken, encodeToken, pageSize } from '../paging.js';
import { validateRequest } from '../queue-validate.js';
import type { DependencyTracker } from './dependencies.js';
import {
  canonical,
  checkTaskId,
  DRIFT_MS,
  iso,
  MAX_DEADLINE_MS,
  MAX_RUNS_ALLOWED,
  PRIORITY_LEVELS,
  TASK_QUEUE_ID,
  type Priority,
  type RequireScopes,
  type StoredTaskDefinition,
  type TaskRecord,
  type TaskRow,
} from './model.js';
import type { QueueStore } from './store.js';

interface TaskQueue {
  provisionerId: string;
  workerType: string;
  taskQueueId: string;
}

interface TaskTimes {
  created: number;
  deadline: number;
  expires: number;
}

/** taskQueueId ⇄ provisionerId/workerType, as upstream during the transition. */
function taskQueueOf(def: TaskDefinition): TaskQueue {
  let { provisionerId, workerType, taskQueueId } = def;
  if (provisionerId && workerType && taskQueueId) {
    if (`${provisionerId}/${workerType}` !== taskQueueId) {
      throw new ApiError('InputError', 'taskQueueId must match "provisionerId/workerType"', {
        provisionerId,
        workerType,
        taskQueueId,
      });
    }
  } else if (taskQueueId && !provisionerId && !workerType) {
    [provisionerId, workerType] = taskQueueId.split('/') as [string, string];
  } else if (provisionerId && workerType && !taskQueueId) {
    taskQueueId = `${provisionerId}/${workerType}`;
  } else {
    throw new ApiError(
      'InputError',
      'give either a taskQueueId, or both a provisionerId and a workerType (or all three, consistent)',
      { provisionerId, workerType, taskQueueId },
    );
  }
  if (!TASK_QUEUE_ID.test(taskQueueId)) {
    throw new ApiError('InputError', `'${taskQueueId}' is not a valid taskQueueId`, {
      taskQueueId,
    });
  }
  return { provisionerId, workerType, taskQueueId };
}

/** The scopes createTask needs: the task's scopes and routes, its project, scheduler, priority. */
function createTaskScopes(def: TaskDefinition, taskQueueId: string): ScopeExpression {
  const priority = def.priority as Priority;
  const priorities = PRIORITY_LEVELS.slice(0, PRIORITY_LEVELS.indexOf(priority) + 1);
  return {
    AllOf: [
      ...(def.scopes as string[]),
      ...(def.routes as string[]).map((r) => `queue:route:${r}`),
      `queue:create-task:project:${def.projectId as string}`,
      `queue:scheduler-id:${def.schedulerId as string}`,
      { AnyOf: priorities.map((p) => `queue:create-task:${p}:${taskQueueId}`) },
    ],
  };
}

/** created, deadline and expires, checked as upstream's patchAndValidateTaskDef. */
function taskTimes(def: TaskDefinition, now: number): TaskTimes {
  const created = Date.parse(def.created);
  const deadline = Date.parse(def.deadline);
  const refuse = (message: string, details: Record<string, unknown>) => {
    throw new ApiError('InputError', message, details);
  };
  if (created < now - DRIFT_MS) {
    refuse('`created` cannot be in the past (max 15min drift)', { created: def.created });
  }
  if (created > now + DRIFT_MS) {
    refuse('`created` cannot be in the future (max 15min drift)', { created: def.created });
  }
  if (created > deadline) {
    refuse('`deadline` cannot be earlier than `created`', {
      created: def.created,
      deadline: def.deadline,
    });
  }
  if (deadline < now) refuse('`deadline` cannot be in the past', { deadline: def.deadline });
  if (deadline - now > MAX_DEADLINE_MS) {
    refuse('`deadline` cannot be more than 5 days into the future', { deadline: def.deadline });
  }
  let expires: number;
  if (def.expires) {
    expires = Date.parse(def.expires);
  } else {
    const e = new Date(deadline);
    e.setUTCFullYear(e.getUTCFullYear() + 1);
    expires = e.getTime();
  }
  if (deadline > expires) {
    refuse('`expires` cannot be before `deadline`', {
      deadline: def.deadline,
      expires: iso(expires),
    });
  }
  return { created, deadline, expires };
}

/** The definition as stored and served: every default filled in, dates normalised. */
function storedDefinition(
  taskId: string,
  def: TaskDefinition,
  queue: TaskQueue,
  times: TaskTimes,
): StoredTaskDefinition {
  return {
    ...queue,
    schedulerId: def.schedulerId as string,
    projectId: def.projectId as string,
    taskGroupId: def.taskGroupId ?? taskId,
    dependencies: def.dependencies as string[],
    requires: def.requires as StoredTaskDefinition['requires'],
    routes: def.routes as string[],
    priority: def.priority as Priority,
    retries: def.retries as number,
    created: iso(times.created),
    deadline: iso(times.deadline),
    expires: iso(times.expires),
    scopes: def.scopes as string[],
    payload: def.payload,
    metadata: def.metadata,
    tags: def.tags as Record<string, string>,
    extra: def.extra as Record<string, unknown>,
  };
}

export class TaskHandlers {
  constructor(
    private readonly store: QueueStore,
    private readonly deps: DependencyTracker,
    private readonly log: Logger,
  ) {}

  /** createTask for a principal whose scopes `requireScopes` checks; throws ApiError. */
  create(
    taskIdParam: string | undefined,
    body: unknown,
    requireScopes: RequireScopes,
  ): TaskStatusResponse {
    const taskId = checkTaskId(taskIdParam);
    const def = validateRequest<TaskDefinition>('create-task-request', body);
    const queue = taskQueueOf(def);
    requireScopes(createTaskScopes(def, queue.taskQueueId));
    const times = taskTimes(def, this.store.nowMs());
    const scopes = def.scopes as string[];
    if (scopes.some((s) => s.endsWith('**'))) {
      throw new ApiError('InputError', 'task scopes must not end with `**`', { scopes });
    }
    const stored = storedDefinition(taskId, def, queue, times);
    return this.store.tx(() => this.define(taskId, stored, times));
  }

  /** Store a new task (or accept the same definition again) and schedule it when unblocked. */
  private define(taskId: string, stored: StoredTaskDefinition, times: TaskTimes) {
    const { st } = this.store;
    const existing = this.store.load(taskId);
    if (existing) {
      if (canonical(existing.def) === canonical(stored)) {
        return { status: this.store.statusOf(existing) };
      }
      throw new ApiError(
        'RequestConflict',
        `taskId ${taskId} is already used by another task with a different definition`,
        { taskId },
      );
    }
    const { taskGroupId, schedulerId, taskQueueId } = stored;
    const group = this.store.group(taskGroupId);
    if (group && group.scheduler_id !== schedulerId) {
      throw new ApiError(
        'RequestConflict',
        `task group ${taskGroupId} contains tasks with schedulerId '${group.scheduler_id}'; ` +
          `all tasks in the same task group must have the same schedulerId (got '${schedulerId}')`,
        { taskGroupId, schedulerId },
      );
    }
    const satisfied = this.deps.satisfiedDependencies(taskId, stored, times.deadline);
    if (group) st.extendGroup.run(times.expires, taskGroupId);
    else st.insertGroup.run(taskGroupId, schedulerId, times.expires);
    st.insertTask.run({
      task_id: taskId,
      task_group_id: taskGroupId,
      task_queue_id: taskQueueId,
      priority: PRIORITY_LEVELS.indexOf(stored.priority),
      deadline: times.deadline,
      expires: times.expires,
      retries_left: stored.retries,
      state: 'unscheduled',
      taken_until: null,
      definition: JSON.stringify(stored),
      runs: '[]',
    });
    this.deps.track(taskId, stored, satisfied);
    this.log.debug('queue.task-defined', { taskId, taskQueueId });
    return { status: this.store.statusOf(this.store.mustLoad(taskId)) };
  }

  task(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    return { body: this.store.mustLoad(taskId).def };
  }

  status(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    return { body: { status: this.store.statusOf(this.store.mustLoad(taskId)) } };
  }

  private mustGroup(taskGroupId: string) {
    const group = this.store.group(taskGroupId);
    if (!group) {
      throw new ApiError('ResourceNotFound', `no task group with taskGroupId ${taskGroupId}`, {
        taskGroupId,
      });
    }
    return { taskGroupId, schedulerId: group.scheduler_id, expires: iso(group.expires) };
  }

  listTaskGroup(ctx: RequestContext): HandlerResult {
    const taskGroupId = checkTaskId(ctx.params.taskGroupId, 'taskGroupId');
    const limit = pageSize(ctx.query);
    const after = decodeToken<number>(ctx.query.continuationToken, 'number') ?? 0;
    const group = this.mustGroup(taskGroupId);
    const rows = this.store.st.groupPage.all(group.taskGroupId, after, limit + 1) as TaskRow[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map((r) => this.store.fromRow(r));
    const body: Record<string, unknown> = {
      ...group,
      tasks: page.map((rec) => ({ status: this.store.statusOf(rec), task: rec.def })),
    };
    if (more) body.continuationToken = encodeToken(page[page.length - 1].seq);
    return { body };
  }

  getTaskGroup(ctx: RequestContext): HandlerResult {
    return { body: this.mustGroup(checkTaskId(ctx.params.taskGroupId, 'taskGroupId')) };
  }

  /** pendingTasks / taskQueueCounts: exact counts of pending (and running) tasks of a queue. */
  queueCounts(ctx: RequestContext, withClaimed: boolean): HandlerResult {
    const taskQueueId = ctx.params.taskQueueId;
    if (!taskQueueId || !TASK_QUEUE_ID.test(taskQueueId)) {
      throw new ApiError('InvalidRequestArguments', `'${taskQueueId ?? ''}' is not a taskQueueId`, {
        taskQueueId,
      });
    }
    const count = (state: string) =>
      (this.store.st.countInQueue.get(taskQueueId, state) as { n: number }).n;
    const [provisionerId, workerType] = taskQueueId.split('/');
    const body: Record<string, unknown> = {
      provisionerId,
      workerType,
      taskQueueId,
      pendingTasks: count('pending'),
    };
    if (withClaimed) body.claimedTasks = count('running');
    return { body };
  }

  listDependentTasks(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const limit = pageSize(ctx.query);
    const after = decodeToken<string>(ctx.query.continuationToken, 'string') ?? '';
    this.store.mustLoad(taskId);
    const rows = this.store.st.dependentsPage.all(taskId, after, limit + 1) as {
      dependent_task_id: string;
    }[];
    const more = rows.length > limit;
    const ids = rows.slice(0, limit).map((r) => r.dependent_task_id);
    const tasks = ids
      .map((id) => this.store.load(id))
      .filter((r): r is TaskRecord => !!r)
      .map((rec) => ({ status: this.store.statusOf(rec), task: rec.def }));
    const body: Record<string, unknown> = { taskId, tasks };
    if (more) body.continuationToken = encodeToken(ids[ids.length - 1]);
    return { body };
  }

  /** The task a schedule/rerun/cancel names, after checking that verb's scope expression
   * (rendered with the stored task's ids). */
  private authorizedTask(ctx: RequestContext): TaskRecord {
    const rec = this.store.mustLoad(checkTaskId(ctx.params.taskId));
    const { schedulerId, taskGroupId, projectId } = rec.def;
    ctx.authorize({ schedulerId, taskGroupId, projectId });
    return rec;
  }

  scheduleTask(ctx: RequestContext): HandlerResult {
    const rec = this.authorizedTask(ctx);
    const status = this.store.tx(() => this.deps.schedule(rec.taskId));
    if (!status) {
      throw new ApiError(
        'RequestConflict',
        `task ${rec.taskId} can't be scheduled past its deadline of ${rec.def.deadline}`,
        { taskId: rec.taskId, deadline: rec.def.deadline },
      );
    }
    return { body: { status } };
  }

  rerunTask(ctx: RequestContext): HandlerResult {
    const { taskId } = this.authorizedTask(ctx);
    return this.store.tx(() => {
      const rec = this.store.mustLoad(taskId);
      this.refusePastDeadline(rec, 'rescheduled');
      const state = this.store.stateOf(rec);
      if (state !== 'pending' && state !== 'running') {
        if (rec.runs.length >= MAX_RUNS_ALLOWED) {
          throw new ApiError(
            'RequestConflict',
            `maximum number of runs reached (${MAX_RUNS_ALLOWED})`,
            { max_runs_allowed: MAX_RUNS_ALLOWED },
          );
        }
        rec.retriesLeft = rec.def.retries;
        rec.runs.push({
          runId: rec.runs.length,
          state: 'pending',
          reasonCreated: 'rerun',
          scheduled: iso(this.store.nowMs()),
        });
        this.store.save(rec);
        this.store.enqueue(rec, rec.runs.length - 1);
      }
      return { body: { status: this.store.statusOf(rec) } };
    });
  }

  cancelTask(ctx: RequestContext): HandlerResult {
    const { taskId } = this.authorizedTask(ctx);
    return this.store.tx(() => {
      const rec = this.store.mustLoad(taskId);
      this.refusePastDeadline(rec, 'canceled');
      this.deps.resolveUnfinished(rec, 'canceled');
      return { body: { status: this.store.statusOf(rec) } };
    });
  }

  /** 409 for a verb (rescheduled, canceled) on a task whose deadline has passed, as upstream. */
  private refusePastDeadline(rec: TaskRecord, verb: string): void {
    if (rec.deadline >= this.store.nowMs()) return;
    throw new ApiError(
      'RequestConflict',
      `task ${rec.taskId} can't be ${verb} past its deadline of ${rec.def.deadline}`,
      { taskId: rec.taskId, deadline: rec.def.deadline },
    );
  }
}
