// Claims and resolution, as upstream's queue: claimWork's long poll (priority first, then FIFO),
// reclaimTask, reportCompleted/Failed/Exception, and the temporary credentials a claimed run gets.
import type { TaskRun } from '../../taskcluster/types.js';
import type { Logger } from '../../util/log.js';
import {
  ApiError,
  type HandlerResult,
  type IssueCredentials,
  type QueueEvents,
  type RequestContext,
  type TemporaryCredentials,
} from '../framework.js';
import { validateRequest } from '../queue-validate.js';
import type { DependencyTracker } from './dependencies.js';
import {
  checkRunId,
  checkTaskId,
  CLAIM_TIMEOUT_MS,
  iso,
  runNotFound,
  TASK_QUEUE_ID,
  type ClaimedTaskItem,
  type TaskRecord,
} from './model.js';
import type { QueueStore } from './store.js';

export interface ClaimOptions {
  issueCredentials: IssueCredentials;
  events: QueueEvents;
  log: Logger;
  /** claimWork long-poll length in ms. Real time, not the clock. */
  pollMs: number;
}

export class ClaimHandlers {
  private closed = false;

  constructor(
    private readonly store: QueueStore,
    private readonly deps: DependencyTracker,
    private readonly opts: ClaimOptions,
  ) {}

  /** Ends pending claimWork long polls (they answer `{tasks: []}`). */
  close(): void {
    this.closed = true;
    this.store.wakeAll();
  }

  private credentialsFor(
    rec: TaskRecord,
    runId: number,
    workerGroup: string,
    workerId: string,
    takenUntil: number,
  ): TemporaryCredentials {
    const taskId = rec.taskId;
    return this.opts.issueCredentials({
      clientId: `task-client/${taskId}/${runId}/on/${workerGroup}/${workerId}/until/${takenUntil / 1000}`,
      scopes: [
        `queue:reclaim-task:${taskId}/${runId}`,
        `queue:resolve-task:${taskId}/${runId}`,
        `queue:create-artifact:${taskId}/${runId}`,
        ...rec.def.scopes,
      ],
      start: new Date(this.store.nowMs()),
      expiry: new Date(takenUntil),
    });
  }

  /** Claim the pending run `runId` of `rec` for a worker; undefined when it is no longer claimable. */
  private claimRun(
    rec: TaskRecord | undefined,
    runId: number,
    worker: { workerGroup: string; workerId: string },
    now: number,
  ): ClaimedTaskItem | undefined {
    if (!rec || rec.deadline <= now) return undefined;
    const run = rec.runs[runId];
    if (!run || run.state !== 'pending' || runId !== rec.runs.length - 1) return undefined;
    const { workerGroup, workerId } = worker;
    const takenUntil = now + CLAIM_TIMEOUT_MS;
    run.state = 'running';
    run.workerGroup = workerGroup;
    run.workerId = workerId;
    run.takenUntil = iso(takenUntil);
    run.started = iso(now);
    this.store.save(rec);
    this.opts.log.debug('queue.task-claimed', { taskId: rec.taskId, runId, workerId });
    return {
      status: this.store.statusOf(rec),
      runId,
      workerGroup,
      workerId,
      takenUntil: iso(takenUntil),
      task: rec.def,
      credentials: this.credentialsFor(rec, runId, workerGroup, workerId, takenUntil),
    };
  }

  /** Claim up to `count` pending runs of a task queue, priority first then FIFO. */
  private claimPending(
    taskQueueId: string,
    worker: { workerGroup: string; workerId: string },
    count: number,
  ): ClaimedTaskItem[] {
    const { st } = this.store;
    return this.store.tx(() => {
      const claimed: ClaimedTaskItem[] = [];
      const now = this.store.nowMs();
      while (claimed.length < count) {
        const rows = st.nextPending.all(taskQueueId, count - claimed.length) as {
          seq: number;
          task_id: string;
          run_id: number;
        }[];
        if (rows.length === 0) break;
        for (const row of rows) {
          st.dropPending.run(row.seq);
          const item = this.claimRun(this.store.load(row.task_id), row.run_id, worker, now);
          if (item) claimed.push(item);
        }
      }
      return claimed;
    });
  }

  async claimWork(ctx: RequestContext): Promise<HandlerResult> {
    const taskQueueId = ctx.params.taskQueueId;
    if (!taskQueueId || !TASK_QUEUE_ID.test(taskQueueId)) {
      throw new ApiError(
        'InvalidRequestArguments',
        `'${taskQueueId ?? ''}' is not a valid taskQueueId (<provisionerId>/<workerType>)`,
        { taskQueueId },
      );
    }
    const body = validateRequest<{ workerGroup: string; workerId: string; tasks: number }>(
      'claim-work-request',
      ctx.body,
    );
    ctx.authorize({ workerGroup: body.workerGroup, workerId: body.workerId });
    // When the framework offers an AbortSignal for the request (client gone), stop waiting and
    // claim nothing, so no task is claimed for a worker that is no longer listening.
    const signal = ctx.signal;
    const until = Date.now() + this.opts.pollMs;
    for (;;) {
      if (this.closed || signal?.aborted) return { body: { tasks: [] } };
      const tasks = this.claimPending(taskQueueId, body, body.tasks);
      if (tasks.length > 0) return { body: { tasks } };
      const remaining = until - Date.now();
      if (remaining <= 0) return { body: { tasks: [] } };
      await this.store.waitForWork(taskQueueId, remaining, signal);
    }
  }

  /** The task and run a claim or resolution names (404 when either does not exist). */
  private runOf(ctx: RequestContext): { taskId: string; runId: number } {
    const taskId = checkTaskId(ctx.params.taskId);
    const runId = checkRunId(ctx.params.runId);
    const rec = this.store.mustLoad(taskId);
    if (!rec.runs[runId]) throw runNotFound(taskId, runId);
    return { taskId, runId };
  }

  reclaimTask(ctx: RequestContext): HandlerResult {
    const { taskId, runId } = this.runOf(ctx);
    return this.store.tx(() => {
      const cur = this.store.mustLoad(taskId);
      const now = this.store.nowMs();
      if (cur.deadline <= now) {
        throw new ApiError(
          'RequestConflict',
          `task ${taskId} can't be reclaimed past its deadline of ${cur.def.deadline}`,
          { taskId, deadline: cur.def.deadline },
        );
      }
      const run = cur.runs[runId];
      if (cur.runs.length - 1 !== runId || run.state !== 'running') throw notRunning(taskId, runId);
      const takenUntil = now + CLAIM_TIMEOUT_MS;
      run.takenUntil = iso(takenUntil);
      this.store.save(cur);
      const workerGroup = run.workerGroup as string;
      const workerId = run.workerId as string;
      return {
        body: {
          status: this.store.statusOf(cur),
          runId,
          workerGroup,
          workerId,
          takenUntil: iso(takenUntil),
          credentials: this.credentialsFor(cur, runId, workerGroup, workerId, takenUntil),
        },
      };
    });
  }

  /** reportCompleted / reportFailed; a completed task is announced to `events.onTaskCompleted`. */
  resolve(ctx: RequestContext, target: 'completed' | 'failed'): HandlerResult {
    const { taskId, runId } = this.runOf(ctx);
    let completed: TaskRecord | undefined;
    const result = this.store.tx(() => {
      const cur = this.store.mustLoad(taskId);
      const run = cur.runs[runId];
      if (run.state === target && run.reasonResolved === target && cur.runs.length - 1 === runId) {
        return { body: { status: this.store.statusOf(cur) } }; // idempotent
      }
      if (run.state !== 'running' || cur.runs.length - 1 !== runId) {
        throw new ApiError(
          'RequestConflict',
          `run ${runId} of task ${taskId} is not running or ${target}`,
          { taskId, runId, targetState: target },
        );
      }
      this.deps.resolveRun(cur, runId, target, target);
      if (target === 'completed') completed = cur;
      return { body: { status: this.store.statusOf(cur) } };
    });
    const { events, log } = this.opts;
    if (completed && events.onTaskCompleted) {
      try {
        events.onTaskCompleted(taskId, completed.def);
      } catch (e) {
        log.error('queue.on-task-completed-failed', { taskId, error: e });
      }
    }
    return result;
  }

  reportException(ctx: RequestContext): HandlerResult {
    const { reason } = validateRequest<{ reason: NonNullable<TaskRun['reasonResolved']> }>(
      'task-exception-request',
      ctx.body,
    );
    const { taskId, runId } = this.runOf(ctx);
    return this.store.tx(() => {
      const cur = this.store.mustLoad(taskId);
      const run = cur.runs[runId];
      if (run.state === 'exception' && run.reasonResolved === reason) {
        // idempotent, unless a later run exists beyond the retry this call created
        if (cur.runs.length - 1 > runId + 1) throw notRunning(taskId, runId);
        return { body: { status: this.store.statusOf(cur) } };
      }
      if (run.state !== 'running' || cur.runs.length - 1 !== runId) throw notRunning(taskId, runId);
      const retryReason =
        reason === 'worker-shutdown'
          ? 'retry'
          : reason === 'intermittent-task'
            ? 'task-retry'
            : undefined;
      this.deps.resolveRun(cur, runId, 'exception', reason, retryReason);
      return { body: { status: this.store.statusOf(cur) } };
    });
  }
}

function notRunning(taskId: string, runId: number): ApiError {
  return new ApiError(
    'RequestConflict',
    `run ${runId} on task ${taskId} is resolved or not running`,
    {
      taskId,
      runId,
    },
  );
}
