// The embedded Queue service: tasks, runs, claims and artifacts as the upstream Taskcluster Queue
// keeps them (services/queue/src/api.js, artifacts.js, dependencytracker.js), along the same
// seams: queue/tasks.ts, queue/claims.ts, queue/artifacts.ts and queue/dependencies.ts, over the
// tables of queue/store.ts (better-sqlite3, so a restart keeps everything).
import type { TaskDefinition, TaskStatus, TaskStatusResponse } from '../taskcluster/types.js';
import { silentLogger, type Logger } from '../util/log.js';
import {
  ApiError,
  type Handler,
  type IssueCredentials,
  type QueueEvents,
  type Service,
  type ServiceDeps,
} from './framework.js';
import { ArtifactHandlers } from './queue/artifacts.js';
import { ClaimHandlers } from './queue/claims.js';
import { DependencyTracker } from './queue/dependencies.js';
import { CLAIM_WORK_POLL_MS, scopeChecker, type StoredTaskDefinition } from './queue/model.js';
import { QueueStore } from './queue/store.js';
import { TaskHandlers } from './queue/tasks.js';

export interface QueueServiceOptions extends ServiceDeps {
  issueCredentials: IssueCredentials;
  events: QueueEvents;
  log?: Logger;
  /** claimWork long-poll length in ms (default 20 s, as upstream). Real time, not the clock. */
  claimWorkPollMs?: number;
}

export class QueueService implements Service {
  readonly name = 'queue';
  readonly handlers: Partial<Record<string, Handler>>;

  private readonly store: QueueStore;
  private readonly deps: DependencyTracker;
  private readonly tasks: TaskHandlers;
  private readonly claims: ClaimHandlers;

  constructor(opts: QueueServiceOptions) {
    const log = opts.log ?? silentLogger;
    this.store = new QueueStore(opts.db, opts.clock);
    this.deps = new DependencyTracker(this.store, log);
    this.tasks = new TaskHandlers(this.store, this.deps, log);
    this.claims = new ClaimHandlers(this.store, this.deps, {
      issueCredentials: opts.issueCredentials,
      events: opts.events,
      log,
      pollMs: opts.claimWorkPollMs ?? CLAIM_WORK_POLL_MS,
    });
    this.handlers = handlerTable(this.tasks, this.claims, new ArtifactHandlers(this.store));
  }

  /** Create a task on behalf of a principal holding `scopes` (used by the hooks service). Same
   * checks as createTask; throws ApiError. */
  createTaskAs(taskId: string, def: TaskDefinition, scopes: string[]): TaskStatusResponse {
    return this.tasks.create(taskId, def, scopeChecker(scopes));
  }

  /** The stored definition of a task, or undefined. */
  taskDefinition(taskId: string): StoredTaskDefinition | undefined {
    return this.store.load(taskId)?.def;
  }

  /** How many claimWork long polls are waiting on `taskQueueId` (a client gone stops waiting). */
  waitingPolls(taskQueueId: string): number {
    return this.store.waitingPolls(taskQueueId);
  }

  /** The status of a task, or undefined. */
  taskStatus(taskId: string): TaskStatus | undefined {
    const rec = this.store.load(taskId);
    return rec && this.store.statusOf(rec);
  }

  /** Resolve claim expiry and deadlines as of `clock.now()`, then drop expired records. */
  sweep(): void {
    const now = this.store.nowMs();
    this.deps.sweep(now);
    this.store.dropExpired(now);
  }

  /** Ends pending claimWork long polls (they answer `{tasks: []}`). */
  close(): void {
    this.claims.close();
  }
}

/** The queue's methods, by their upstream names. */
function handlerTable(
  tasks: TaskHandlers,
  claims: ClaimHandlers,
  artifacts: ArtifactHandlers,
): Record<string, Handler> {
  return {
    createTask: (ctx) => ({
      body: tasks.create(ctx.params.taskId, ctx.body, (e) => ctx.requireScopes(e)),
    }),
    task: (ctx) => tasks.task(ctx),
    status: (ctx) => tasks.status(ctx),
    listTaskGroup: (ctx) => tasks.listTaskGroup(ctx),
    listDependentTasks: (ctx) => tasks.listDependentTasks(ctx),
    getTaskGroup: (ctx) => tasks.getTaskGroup(ctx),
    pendingTasks: (ctx) => tasks.queueCounts(ctx, false),
    taskQueueCounts: (ctx) => tasks.queueCounts(ctx, true),
    scheduleTask: (ctx) => tasks.scheduleTask(ctx),
    rerunTask: (ctx) => tasks.rerunTask(ctx),
    cancelTask: (ctx) => tasks.cancelTask(ctx),
    claimWork: (ctx) => claims.claimWork(ctx),
    claimTask: () => {
      throw new ApiError(
        'NotImplemented',
        'queue.claimTask is deprecated upstream and not implemented by the embedded services; use claimWork',
      );
    },
    reclaimTask: (ctx) => claims.reclaimTask(ctx),
    reportCompleted: (ctx) =>
      claims.resolve(
        ctx,
        (ctx.body as { success?: unknown } | undefined)?.success === false ? 'failed' : 'completed',
      ),
    reportFailed: (ctx) => claims.resolve(ctx, 'failed'),
    reportException: (ctx) => claims.reportException(ctx),
    createArtifact: (ctx) => artifacts.createArtifact(ctx),
    finishArtifact: (ctx) => artifacts.finishArtifact(ctx),
    getArtifact: (ctx) => artifacts.download(ctx, false),
    getLatestArtifact: (ctx) => artifacts.download(ctx, true),
    artifact: (ctx) => artifacts.content(ctx, false),
    latestArtifact: (ctx) => artifacts.content(ctx, true),
    artifactInfo: (ctx) => artifacts.info(ctx, false),
    latestArtifactInfo: (ctx) => artifacts.info(ctx, true),
    listArtifacts: (ctx) => artifacts.list(ctx, false),
    listLatestArtifacts: (ctx) => artifacts.list(ctx, true),
  };
}
