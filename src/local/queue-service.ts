// The embedded Queue service: tasks, runs, claims and artifacts as the upstream Taskcluster Queue
// keeps them (services/queue/src/api.js, artifacts.js, dependencytracker.js), stored in
// better-sqlite3 tables so that a restart keeps everything. Time comes only from `deps.clock`, so
// tests drive claim expiry and deadlines with a ManualClock and `sweep()`.
//
// Every state change happens inside one synchronous SQLite transaction; node runs one handler at a
// time, so no two requests interleave inside a change.
import type Database from 'better-sqlite3';
import { removeGivenScopes, satisfiesExpression } from 'taskcluster-lib-scopes';
import type {
  TaskDefinition,
  TaskRun,
  TaskStatus,
  TaskStatusResponse,
} from '../taskcluster/types.js';
import { silentLogger, type Logger } from '../util/log.js';
import {
  ApiError,
  type Clock,
  type Handler,
  type HandlerResult,
  type IssueCredentials,
  type QueueEvents,
  type RequestContext,
  type ScopeExpression,
  type Service,
  type ServiceDeps,
  type TemporaryCredentials,
} from './framework.js';
import { decodeToken, encodeToken, pageSize } from './paging.js';
import { validateRequest } from './queue-validate.js';

/** Priority levels from high to low, as upstream. */
export const PRIORITY_LEVELS = [
  'highest',
  'very-high',
  'high',
  'medium',
  'low',
  'very-low',
  'lowest',
] as const;
export type Priority = (typeof PRIORITY_LEVELS)[number];

/** How long a claim lasts before it must be reclaimed (upstream default claimTimeout 1200 s). */
export const CLAIM_TIMEOUT_MS = 20 * 60 * 1000;
/** How long claimWork waits for work before answering `{tasks: []}` (upstream 20 s). */
export const CLAIM_WORK_POLL_MS = 20 * 1000;
/** Upstream MAX_RUNS_ALLOWED. */
export const MAX_RUNS_ALLOWED = 50;
const DRIFT_MS = 15 * 60 * 1000;
const MAX_DEADLINE_MS = 5 * 24 * 60 * 60 * 1000 + DRIFT_MS;
const ARTIFACTS_AFTER_EXCEPTION_MS = 25 * 60 * 1000;

const SLUGID = /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;
const RUN_ID = /^[1-9]*[0-9]+$/;
const TASK_QUEUE_ID = /^[a-zA-Z0-9-_]{1,38}\/[a-z]([-a-z0-9]{0,36}[a-z0-9])?$/;
const ARTIFACT_NAME = /^[\x20-\x7e]+$/;

/** A task definition as the queue stores and serves it (task.json: every default filled in). */
export interface StoredTaskDefinition extends TaskDefinition {
  provisionerId: string;
  workerType: string;
  taskQueueId: string;
  schedulerId: string;
  projectId: string;
  taskGroupId: string;
  dependencies: string[];
  requires: 'all-completed' | 'all-resolved';
  routes: string[];
  priority: Priority;
  retries: number;
  expires: string;
  scopes: string[];
  tags: Record<string, string>;
  extra: Record<string, any>;
}

export interface ClaimedTaskItem {
  status: TaskStatus;
  runId: number;
  workerGroup: string;
  workerId: string;
  takenUntil: string;
  task: StoredTaskDefinition;
  credentials: TemporaryCredentials;
}

export interface QueueServiceOptions extends ServiceDeps {
  issueCredentials: IssueCredentials;
  events: QueueEvents;
  log?: Logger;
  /** claimWork long-poll length in ms (default 20 s, as upstream). Real time, not the clock. */
  claimWorkPollMs?: number;
}

interface TaskRecord {
  seq: number;
  taskId: string;
  def: StoredTaskDefinition;
  retriesLeft: number;
  runs: TaskRun[];
  deadline: number;
  expires: number;
}

interface TaskRow {
  seq: number;
  task_id: string;
  definition: string;
  runs: string;
  retries_left: number;
  deadline: number;
  expires: number;
}

interface ArtifactRow {
  task_id: string;
  run_id: number;
  name: string;
  storage_type: 'reference' | 'link' | 'error';
  content_type: string;
  details: string;
  expires: number;
}

type RequireScopes = (expr: ScopeExpression) => void;

/** JSON with object keys sorted, so equal definitions compare equal whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value as object).sort();
    return `{${keys
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function checkTaskId(value: string | undefined, what = 'taskId'): string {
  if (!value || !SLUGID.test(value)) {
    throw new ApiError('InvalidRequestArguments', `${what} '${value ?? ''}' is not a slugid`, {
      [what]: value,
    });
  }
  return value;
}

function checkRunId(value: string | undefined): number {
  if (!value || !RUN_ID.test(value) || parseInt(value, 10) > 1000) {
    throw new ApiError('InvalidRequestArguments', `runId '${value ?? ''}' is not a valid run id`, {
      runId: value,
    });
  }
  return parseInt(value, 10);
}

function checkArtifactName(value: string | undefined): string {
  if (!value || !ARTIFACT_NAME.test(value)) {
    throw new ApiError(
      'InvalidRequestArguments',
      `artifact name '${value ?? ''}' must be non-empty printable ASCII`,
      { name: value },
    );
  }
  return value;
}

function scopeChecker(scopes: string[]): RequireScopes {
  return (expr) => {
    if (!satisfiesExpression(scopes, expr)) {
      const missing = removeGivenScopes(scopes, expr);
      throw new ApiError(
        'InsufficientScopes',
        `the given scopes do not satisfy ${JSON.stringify(expr)}; missing: ${JSON.stringify(missing)}`,
        { required: expr, missing },
      );
    }
  };
}

function taskNotFound(taskId: string): ApiError {
  return new ApiError(
    'ResourceNotFound',
    `task ${taskId} does not exist; are you sure it was created?`,
    { taskId },
  );
}

function runNotFound(taskId: string, runId: number): ApiError {
  return new ApiError('ResourceNotFound', `run ${runId} not found on task ${taskId}`, {
    taskId,
    runId,
  });
}

export class QueueService implements Service {
  readonly name = 'queue';
  readonly handlers: Partial<Record<string, Handler>>;

  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly rootUrl: () => string;
  private readonly issueCredentials: IssueCredentials;
  private readonly events: QueueEvents;
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly waiters = new Map<string, Set<() => void>>();
  private closed = false;
  private readonly st: Record<string, Database.Statement>;
  /** Runs a function inside one SQLite transaction (nested calls become savepoints). */
  private readonly txRunner: (fn: () => unknown) => unknown;

  constructor(deps: QueueServiceOptions) {
    this.db = deps.db;
    this.txRunner = this.db.transaction((fn: () => unknown) => fn());
    this.clock = deps.clock;
    this.rootUrl = deps.rootUrl;
    this.issueCredentials = deps.issueCredentials;
    this.events = deps.events;
    this.log = deps.log ?? silentLogger;
    this.pollMs = deps.claimWorkPollMs ?? CLAIM_WORK_POLL_MS;

    this.db.exec(`
      CREATE TABLE IF NOT EXISTS queue_tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL UNIQUE,
        task_group_id TEXT NOT NULL,
        task_queue_id TEXT NOT NULL,
        priority INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        retries_left INTEGER NOT NULL,
        state TEXT NOT NULL,
        taken_until INTEGER,
        definition TEXT NOT NULL,
        runs TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS queue_tasks_by_group ON queue_tasks(task_group_id, seq);
      CREATE INDEX IF NOT EXISTS queue_tasks_by_deadline ON queue_tasks(state, deadline);
      CREATE INDEX IF NOT EXISTS queue_tasks_by_claim ON queue_tasks(state, taken_until);
      CREATE INDEX IF NOT EXISTS queue_tasks_by_expiry ON queue_tasks(expires);
      CREATE INDEX IF NOT EXISTS queue_tasks_by_queue ON queue_tasks(task_queue_id, state);
      CREATE TABLE IF NOT EXISTS queue_task_groups (
        task_group_id TEXT PRIMARY KEY,
        scheduler_id TEXT NOT NULL,
        expires INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS queue_dependencies (
        required_task_id TEXT NOT NULL,
        dependent_task_id TEXT NOT NULL,
        requires TEXT NOT NULL,
        satisfied INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (required_task_id, dependent_task_id)
      );
      CREATE INDEX IF NOT EXISTS queue_dependencies_blocking
        ON queue_dependencies(dependent_task_id, satisfied);
      CREATE TABLE IF NOT EXISTS queue_pending (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        task_queue_id TEXT NOT NULL,
        priority INTEGER NOT NULL,
        task_id TEXT NOT NULL,
        run_id INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS queue_pending_order ON queue_pending(task_queue_id, priority, seq);
      CREATE INDEX IF NOT EXISTS queue_pending_by_task ON queue_pending(task_id);
      CREATE TABLE IF NOT EXISTS queue_artifacts (
        task_id TEXT NOT NULL,
        run_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        storage_type TEXT NOT NULL,
        content_type TEXT NOT NULL,
        details TEXT NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY (task_id, run_id, name)
      );
    `);

    const p = (sql: string) => this.db.prepare(sql);
    this.st = {
      getTask: p(
        'SELECT seq, task_id, definition, runs, retries_left, deadline, expires FROM queue_tasks WHERE task_id = ?',
      ),
      insertTask:
        p(`INSERT INTO queue_tasks (task_id, task_group_id, task_queue_id, priority, deadline,
        expires, retries_left, state, taken_until, definition, runs)
        VALUES (@task_id, @task_group_id, @task_queue_id, @priority, @deadline, @expires, @retries_left,
        @state, @taken_until, @definition, @runs)`),
      saveRuns: p(
        'UPDATE queue_tasks SET runs = ?, state = ?, retries_left = ?, taken_until = ? WHERE task_id = ?',
      ),
      depInfo: p('SELECT runs, expires FROM queue_tasks WHERE task_id = ?'),
      countInQueue: p(
        'SELECT COUNT(*) AS n FROM queue_tasks WHERE task_queue_id = ? AND state = ?',
      ),
      getGroup: p('SELECT scheduler_id, expires FROM queue_task_groups WHERE task_group_id = ?'),
      insertGroup: p(
        'INSERT INTO queue_task_groups (task_group_id, scheduler_id, expires) VALUES (?, ?, ?)',
      ),
      extendGroup: p(
        'UPDATE queue_task_groups SET expires = MAX(expires, ?) WHERE task_group_id = ?',
      ),
      insertDep: p(`INSERT OR IGNORE INTO queue_dependencies
        (required_task_id, dependent_task_id, requires, satisfied) VALUES (?, ?, ?, ?)`),
      unsatisfiedDependents: p(`SELECT dependent_task_id, requires FROM queue_dependencies
        WHERE required_task_id = ? AND satisfied = 0 ORDER BY dependent_task_id`),
      satisfy: p(
        'UPDATE queue_dependencies SET satisfied = 1 WHERE required_task_id = ? AND dependent_task_id = ?',
      ),
      blocked: p(
        'SELECT 1 FROM queue_dependencies WHERE dependent_task_id = ? AND satisfied = 0 LIMIT 1',
      ),
      enqueue: p(
        'INSERT INTO queue_pending (task_queue_id, priority, task_id, run_id) VALUES (?, ?, ?, ?)',
      ),
      nextPending: p(`SELECT seq, task_id, run_id FROM queue_pending WHERE task_queue_id = ?
        ORDER BY priority, seq LIMIT ?`),
      dropPending: p('DELETE FROM queue_pending WHERE seq = ?'),
      dropPendingOfTask: p('DELETE FROM queue_pending WHERE task_id = ?'),
      groupPage:
        p(`SELECT seq, task_id, definition, runs, retries_left, deadline, expires FROM queue_tasks
        WHERE task_group_id = ? AND seq > ? ORDER BY seq LIMIT ?`),
      dependentsPage: p(`SELECT dependent_task_id FROM queue_dependencies
        WHERE required_task_id = ? AND dependent_task_id > ? ORDER BY dependent_task_id LIMIT ?`),
      deadlineExceeded: p(`SELECT task_id FROM queue_tasks
        WHERE state IN ('unscheduled', 'pending', 'running') AND deadline <= ?`),
      claimExpired: p(
        "SELECT task_id FROM queue_tasks WHERE state = 'running' AND taken_until <= ?",
      ),
      expiredTasks: p('SELECT task_id FROM queue_tasks WHERE expires < ? LIMIT 1000'),
      deleteTask: p('DELETE FROM queue_tasks WHERE task_id = ?'),
      deleteTaskArtifacts: p('DELETE FROM queue_artifacts WHERE task_id = ?'),
      deleteTaskDeps: p(
        'DELETE FROM queue_dependencies WHERE dependent_task_id = ? OR required_task_id = ?',
      ),
      expiredArtifacts: p('DELETE FROM queue_artifacts WHERE expires < ?'),
      expiredGroups: p(`DELETE FROM queue_task_groups WHERE expires < ? AND NOT EXISTS
        (SELECT 1 FROM queue_tasks t WHERE t.task_group_id = queue_task_groups.task_group_id)`),
      getArtifact: p('SELECT * FROM queue_artifacts WHERE task_id = ? AND run_id = ? AND name = ?'),
      insertArtifact: p(`INSERT INTO queue_artifacts
        (task_id, run_id, name, storage_type, content_type, details, expires)
        VALUES (@task_id, @run_id, @name, @storage_type, @content_type, @details, @expires)`),
      updateArtifact:
        p(`UPDATE queue_artifacts SET storage_type = @storage_type, content_type = @content_type,
        details = @details, expires = @expires WHERE task_id = @task_id AND run_id = @run_id AND name = @name`),
      artifactPage: p(`SELECT * FROM queue_artifacts WHERE task_id = ? AND run_id = ? AND name > ?
        ORDER BY name LIMIT ?`),
    };

    const h: Record<string, Handler> = {
      createTask: (ctx) => ({
        body: this.createTaskCore(ctx.params.taskId, ctx.body, (e) => ctx.requireScopes(e)),
      }),
      task: (ctx) => this.getTask(ctx),
      status: (ctx) => this.getStatus(ctx),
      listTaskGroup: (ctx) => this.listTaskGroup(ctx),
      listDependentTasks: (ctx) => this.listDependentTasks(ctx),
      getTaskGroup: (ctx) => this.getTaskGroup(ctx),
      pendingTasks: (ctx) => this.queueCounts(ctx, false),
      taskQueueCounts: (ctx) => this.queueCounts(ctx, true),
      scheduleTask: (ctx) => this.scheduleTaskHandler(ctx),
      rerunTask: (ctx) => this.rerunTask(ctx),
      cancelTask: (ctx) => this.cancelTask(ctx),
      claimWork: (ctx) => this.claimWork(ctx),
      claimTask: () => {
        throw new ApiError(
          'NotImplemented',
          'queue.claimTask is deprecated upstream and not implemented by the embedded services; use claimWork',
        );
      },
      reclaimTask: (ctx) => this.reclaimTask(ctx),
      reportCompleted: (ctx) =>
        this.resolveHandler(ctx, ctx.body?.success === false ? 'failed' : 'completed'),
      reportFailed: (ctx) => this.resolveHandler(ctx, 'failed'),
      reportException: (ctx) => this.reportException(ctx),
      createArtifact: (ctx) => this.createArtifact(ctx),
      finishArtifact: (ctx) => this.finishArtifact(ctx),
      getArtifact: (ctx) => this.artifactDownload(ctx, false),
      getLatestArtifact: (ctx) => this.artifactDownload(ctx, true),
      artifact: (ctx) => this.artifactContent(ctx, false),
      latestArtifact: (ctx) => this.artifactContent(ctx, true),
      artifactInfo: (ctx) => this.artifactInfo(ctx, false),
      latestArtifactInfo: (ctx) => this.artifactInfo(ctx, true),
      listArtifacts: (ctx) => this.listArtifacts(ctx, false),
      listLatestArtifacts: (ctx) => this.listArtifacts(ctx, true),
    };
    this.handlers = h;
  }

  // ---------------------------------------------------------------------------------------------
  // Public API for other services

  /** Create a task on behalf of a principal holding `scopes` (used by the hooks service). Same
   * checks as createTask; throws ApiError. */
  createTaskAs(taskId: string, def: TaskDefinition, scopes: string[]): TaskStatusResponse {
    return this.createTaskCore(taskId, def, scopeChecker(scopes));
  }

  /** The stored definition of a task, or undefined. */
  taskDefinition(taskId: string): StoredTaskDefinition | undefined {
    return this.load(taskId)?.def;
  }

  /** The status of a task, or undefined. */
  taskStatus(taskId: string): TaskStatus | undefined {
    const rec = this.load(taskId);
    return rec && this.statusOf(rec);
  }

  /** Resolve claim expiry and deadlines as of `clock.now()`, then drop expired records. */
  sweep(): void {
    const now = this.nowMs();
    for (const { task_id } of this.st.deadlineExceeded.all(now) as { task_id: string }[]) {
      this.tx(() => this.resolveDeadline(task_id));
    }
    for (const { task_id } of this.st.claimExpired.all(now) as { task_id: string }[]) {
      this.tx(() => this.expireClaim(task_id));
    }
    this.tx(() => {
      for (const { task_id } of this.st.expiredTasks.all(now) as { task_id: string }[]) {
        this.st.deleteTask.run(task_id);
        this.st.deleteTaskArtifacts.run(task_id);
        this.st.deleteTaskDeps.run(task_id, task_id);
        this.st.dropPendingOfTask.run(task_id);
      }
      this.st.expiredArtifacts.run(now);
      this.st.expiredGroups.run(now);
    });
  }

  /** Ends pending claimWork long polls (they answer `{tasks: []}`). */
  close(): void {
    this.closed = true;
    for (const set of this.waiters.values()) for (const wake of [...set]) wake();
    this.waiters.clear();
  }

  // ---------------------------------------------------------------------------------------------
  // Storage helpers

  private nowMs(): number {
    return this.clock.now().getTime();
  }

  private tx<T>(fn: () => T): T {
    return this.txRunner(fn) as T;
  }

  private fromRow(row: TaskRow): TaskRecord {
    const def = JSON.parse(row.definition) as StoredTaskDefinition;
    return {
      seq: row.seq,
      taskId: row.task_id,
      def,
      retriesLeft: row.retries_left,
      runs: JSON.parse(row.runs) as TaskRun[],
      deadline: row.deadline,
      expires: row.expires,
    };
  }

  private load(taskId: string): TaskRecord | undefined {
    const row = this.st.getTask.get(taskId) as TaskRow | undefined;
    return row && this.fromRow(row);
  }

  private mustLoad(taskId: string): TaskRecord {
    const rec = this.load(taskId);
    if (!rec) throw taskNotFound(taskId);
    return rec;
  }

  private stateOf(rec: { runs: TaskRun[] }): TaskStatus['state'] {
    const last = rec.runs[rec.runs.length - 1];
    return last ? last.state : 'unscheduled';
  }

  private save(rec: TaskRecord): void {
    const last = rec.runs[rec.runs.length - 1];
    const takenUntil =
      last?.state === 'running' && last.takenUntil ? Date.parse(last.takenUntil) : null;
    this.st.saveRuns.run(
      JSON.stringify(rec.runs),
      this.stateOf(rec),
      rec.retriesLeft,
      takenUntil,
      rec.taskId,
    );
  }

  private statusOf(rec: TaskRecord): TaskStatus {
    const d = rec.def;
    return {
      taskId: rec.taskId,
      provisionerId: d.provisionerId,
      workerType: d.workerType,
      taskQueueId: d.taskQueueId,
      schedulerId: d.schedulerId,
      projectId: d.projectId,
      taskGroupId: d.taskGroupId,
      deadline: d.deadline,
      expires: d.expires,
      retriesLeft: rec.retriesLeft,
      state: this.stateOf(rec),
      runs: rec.runs.map((r) => ({ ...r })),
    };
  }

  /** Put a pending run on its task queue and wake the workers waiting there. */
  private enqueue(rec: TaskRecord, runId: number): void {
    this.st.enqueue.run(
      rec.def.taskQueueId,
      PRIORITY_LEVELS.indexOf(rec.def.priority),
      rec.taskId,
      runId,
    );
    const set = this.waiters.get(rec.def.taskQueueId);
    if (set) for (const wake of [...set]) wake();
  }

  /** Add the initial pending run when the task has none; null when past its deadline. */
  private scheduleInternal(taskId: string): TaskStatus | null {
    const rec = this.load(taskId);
    if (!rec) return null;
    const now = this.nowMs();
    if (rec.deadline < now) return null;
    if (rec.runs.length === 0) {
      rec.runs.push({
        runId: 0,
        state: 'pending',
        reasonCreated: 'scheduled',
        scheduled: iso(now),
      });
      this.save(rec);
      this.enqueue(rec, 0);
    }
    return this.statusOf(rec);
  }

  /** Release (or leave blocked) the tasks depending on a task that just resolved. */
  private resolveDependents(
    taskId: string,
    resolution: 'completed' | 'failed' | 'exception',
  ): void {
    const rows = this.st.unsatisfiedDependents.all(taskId) as {
      dependent_task_id: string;
      requires: string;
    }[];
    for (const dep of rows) {
      // all-completed dependents stay blocked by a failed/exception dependency (until deadline)
      if (resolution !== 'completed' && dep.requires !== 'all-resolved') continue;
      this.st.satisfy.run(taskId, dep.dependent_task_id);
      if (!this.st.blocked.get(dep.dependent_task_id)) this.scheduleInternal(dep.dependent_task_id);
    }
  }

  /**
   * Resolve run `runId` as `state`/`reason`. With a `retryReason` and retries left, a new pending
   * run is added (the task is not resolved); otherwise the dependents learn the resolution.
   */
  private resolveRun(
    rec: TaskRecord,
    runId: number,
    state: 'completed' | 'failed' | 'exception',
    reason: NonNullable<TaskRun['reasonResolved']>,
    retryReason?: 'retry' | 'task-retry',
  ): void {
    const now = iso(this.nowMs());
    const run = rec.runs[runId];
    run.state = state;
    run.reasonResolved = reason as TaskRun['reasonResolved'];
    run.resolved = now;
    let retried = false;
    if (retryReason && rec.retriesLeft > 0 && rec.runs.length < MAX_RUNS_ALLOWED) {
      rec.retriesLeft -= 1;
      rec.runs.push({
        runId: rec.runs.length,
        state: 'pending',
        reasonCreated: retryReason,
        scheduled: now,
      });
      retried = true;
    }
    this.save(rec);
    if (retried) this.enqueue(rec, rec.runs.length - 1);
    else this.resolveDependents(rec.taskId, state);
  }

  private resolveDeadline(taskId: string): void {
    const rec = this.load(taskId);
    if (!rec || rec.deadline > this.nowMs()) return;
    if (!this.resolveUnfinished(rec, 'deadline-exceeded')) return;
    this.log.info('queue.deadline-exceeded', { taskId });
  }

  /**
   * Resolve a task that has not finished (unscheduled: a new run; pending or running: its last
   * run) as exception with `reason`, then release or block its dependents. False when it had
   * already finished.
   */
  private resolveUnfinished(rec: TaskRecord, reason: 'deadline-exceeded' | 'canceled'): boolean {
    const state = this.stateOf(rec);
    const now = iso(this.nowMs());
    if (state === 'unscheduled') {
      rec.runs.push({
        runId: 0,
        state: 'exception',
        reasonCreated: 'exception',
        reasonResolved: reason,
        scheduled: now,
        resolved: now,
      } as TaskRun);
    } else if (state === 'pending' || state === 'running') {
      const run = rec.runs[rec.runs.length - 1]!;
      run.state = 'exception';
      run.reasonResolved = reason as TaskRun['reasonResolved'];
      run.resolved = now;
    } else {
      return false;
    }
    this.save(rec);
    this.st.dropPendingOfTask.run(rec.taskId);
    this.resolveDependents(rec.taskId, 'exception');
    return true;
  }

  private expireClaim(taskId: string): void {
    const rec = this.load(taskId);
    if (!rec) return;
    const runId = rec.runs.length - 1;
    const run = rec.runs[runId];
    if (!run || run.state !== 'running' || !run.takenUntil) return;
    if (Date.parse(run.takenUntil) > this.nowMs()) return;
    this.log.info('queue.claim-expired', { taskId, runId });
    this.resolveRun(rec, runId, 'exception', 'claim-expired', 'retry');
  }

  // ---------------------------------------------------------------------------------------------
  // Tasks

  private createTaskCore(
    taskIdParam: string | undefined,
    body: unknown,
    requireScopes: RequireScopes,
  ): TaskStatusResponse {
    const taskId = checkTaskId(taskIdParam);
    const def = validateRequest<TaskDefinition & Record<string, any>>('create-task-request', body);

    // taskQueueId ⇄ provisionerId/workerType, as upstream during the transition
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
      [provisionerId, workerType] = taskQueueId.split('/');
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

    const priority = def.priority as Priority;
    const taskGroupId = def.taskGroupId ?? taskId;
    const schedulerId = def.schedulerId as string;
    const projectId = def.projectId as string;
    const routes = def.routes as string[];
    const scopes = def.scopes as string[];
    const priorities = PRIORITY_LEVELS.slice(0, PRIORITY_LEVELS.indexOf(priority) + 1);

    requireScopes({
      AllOf: [
        ...scopes,
        ...routes.map((r) => `queue:route:${r}`),
        `queue:create-task:project:${projectId}`,
        `queue:scheduler-id:${schedulerId}`,
        { AnyOf: priorities.map((p) => `queue:create-task:${p}:${taskQueueId}`) },
      ],
    });

    // dates, as upstream's patchAndValidateTaskDef
    const now = this.nowMs();
    const created = Date.parse(def.created);
    const deadline = Date.parse(def.deadline);
    if (created < now - DRIFT_MS) {
      throw new ApiError('InputError', '`created` cannot be in the past (max 15min drift)', {
        created: def.created,
      });
    }
    if (created > now + DRIFT_MS) {
      throw new ApiError('InputError', '`created` cannot be in the future (max 15min drift)', {
        created: def.created,
      });
    }
    if (created > deadline) {
      throw new ApiError('InputError', '`deadline` cannot be earlier than `created`', {
        created: def.created,
        deadline: def.deadline,
      });
    }
    if (deadline < now) {
      throw new ApiError('InputError', '`deadline` cannot be in the past', {
        deadline: def.deadline,
      });
    }
    if (deadline - now > MAX_DEADLINE_MS) {
      throw new ApiError('InputError', '`deadline` cannot be more than 5 days into the future', {
        deadline: def.deadline,
      });
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
      throw new ApiError('InputError', '`expires` cannot be before `deadline`', {
        deadline: def.deadline,
        expires: iso(expires),
      });
    }
    if (scopes.some((s) => s.endsWith('**'))) {
      throw new ApiError('InputError', 'task scopes must not end with `**`', { scopes });
    }

    const stored: StoredTaskDefinition = {
      provisionerId,
      workerType,
      taskQueueId,
      schedulerId,
      projectId,
      taskGroupId,
      dependencies: def.dependencies as string[],
      requires: def.requires as StoredTaskDefinition['requires'],
      routes,
      priority,
      retries: def.retries as number,
      created: iso(created),
      deadline: iso(deadline),
      expires: iso(expires),
      scopes,
      payload: def.payload,
      metadata: def.metadata,
      tags: def.tags as Record<string, string>,
      extra: def.extra as Record<string, any>,
    };

    return this.tx(() => {
      const existing = this.load(taskId);
      if (existing) {
        if (canonical(existing.def) === canonical(stored))
          return { status: this.statusOf(existing) };
        throw new ApiError(
          'RequestConflict',
          `taskId ${taskId} is already used by another task with a different definition`,
          { taskId },
        );
      }

      const group = this.st.getGroup.get(taskGroupId) as { scheduler_id: string } | undefined;
      if (group && group.scheduler_id !== schedulerId) {
        throw new ApiError(
          'RequestConflict',
          `task group ${taskGroupId} contains tasks with schedulerId '${group.scheduler_id}'; ` +
            `all tasks in the same task group must have the same schedulerId (got '${schedulerId}')`,
          { taskGroupId, schedulerId },
        );
      }

      // dependencies: all must exist and not expire before this task's deadline
      const missing: string[] = [];
      const expiring: string[] = [];
      const satisfied = new Set<string>();
      for (const depId of stored.dependencies) {
        if (depId === taskId) continue; // a self-dependency waits for scheduleTask
        const row = this.st.depInfo.get(depId) as { runs: string; expires: number } | undefined;
        if (!row) {
          missing.push(depId);
          continue;
        }
        if (deadline > row.expires) {
          expiring.push(depId);
          continue;
        }
        const state = this.stateOf({ runs: JSON.parse(row.runs) as TaskRun[] });
        if (
          state === 'completed' ||
          (stored.requires === 'all-resolved' && (state === 'failed' || state === 'exception'))
        ) {
          satisfied.add(depId);
        }
      }
      if (missing.length || expiring.length) {
        const parts: string[] = [];
        if (missing.length) {
          parts.push(
            `task.dependencies references tasks that do not exist: ${missing.join(', ')}; ` +
              'all of them must be created before this task',
          );
        }
        if (expiring.length) {
          parts.push(
            `task.dependencies references tasks that expire before this task's deadline ` +
              `${stored.deadline}: ${expiring.join(', ')}`,
          );
        }
        throw new ApiError('InputError', parts.join('\n'), {
          dependencies: stored.dependencies,
          missingTaskDependencies: missing,
          expiringTaskDependencies: expiring,
        });
      }

      if (group) this.st.extendGroup.run(expires, taskGroupId);
      else this.st.insertGroup.run(taskGroupId, schedulerId, expires);
      this.st.insertTask.run({
        task_id: taskId,
        task_group_id: taskGroupId,
        task_queue_id: taskQueueId,
        priority: PRIORITY_LEVELS.indexOf(priority),
        deadline,
        expires,
        retries_left: stored.retries,
        state: 'unscheduled',
        taken_until: null,
        definition: JSON.stringify(stored),
        runs: '[]',
      });
      for (const depId of stored.dependencies) {
        this.st.insertDep.run(depId, taskId, stored.requires, satisfied.has(depId) ? 1 : 0);
      }
      if (!this.st.blocked.get(taskId)) this.scheduleInternal(taskId);
      this.log.debug('queue.task-defined', { taskId, taskQueueId });
      return { status: this.statusOf(this.mustLoad(taskId)) };
    });
  }

  private getTask(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    return { body: this.mustLoad(taskId).def };
  }

  private getStatus(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    return { body: { status: this.statusOf(this.mustLoad(taskId)) } };
  }

  private listTaskGroup(ctx: RequestContext): HandlerResult {
    const taskGroupId = checkTaskId(ctx.params.taskGroupId, 'taskGroupId');
    const limit = pageSize(ctx.query);
    const after = decodeToken<number>(ctx.query.continuationToken, 'number') ?? 0;
    const group = this.st.getGroup.get(taskGroupId) as
      { scheduler_id: string; expires: number } | undefined;
    if (!group) {
      throw new ApiError('ResourceNotFound', `no task group with taskGroupId ${taskGroupId}`, {
        taskGroupId,
      });
    }
    const rows = this.st.groupPage.all(taskGroupId, after, limit + 1) as TaskRow[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit).map((r) => this.fromRow(r));
    const body: Record<string, unknown> = {
      taskGroupId,
      schedulerId: group.scheduler_id,
      expires: iso(group.expires),
      tasks: page.map((rec) => ({ status: this.statusOf(rec), task: rec.def })),
    };
    if (more) body.continuationToken = encodeToken(page[page.length - 1].seq);
    return { body };
  }

  private getTaskGroup(ctx: RequestContext): HandlerResult {
    const taskGroupId = checkTaskId(ctx.params.taskGroupId, 'taskGroupId');
    const group = this.st.getGroup.get(taskGroupId) as
      { scheduler_id: string; expires: number } | undefined;
    if (!group) {
      throw new ApiError('ResourceNotFound', `no task group with taskGroupId ${taskGroupId}`, {
        taskGroupId,
      });
    }
    return {
      body: { taskGroupId, schedulerId: group.scheduler_id, expires: iso(group.expires) },
    };
  }

  /** pendingTasks / taskQueueCounts: exact counts of pending (and running) tasks of a queue. */
  private queueCounts(ctx: RequestContext, withClaimed: boolean): HandlerResult {
    const taskQueueId = ctx.params.taskQueueId;
    if (!taskQueueId || !TASK_QUEUE_ID.test(taskQueueId)) {
      throw new ApiError('InvalidRequestArguments', `'${taskQueueId ?? ''}' is not a taskQueueId`, {
        taskQueueId,
      });
    }
    const count = (state: string) =>
      (this.st.countInQueue.get(taskQueueId, state) as { n: number }).n;
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

  private listDependentTasks(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const limit = pageSize(ctx.query);
    const after = decodeToken<string>(ctx.query.continuationToken, 'string') ?? '';
    this.mustLoad(taskId);
    const rows = this.st.dependentsPage.all(taskId, after, limit + 1) as {
      dependent_task_id: string;
    }[];
    const more = rows.length > limit;
    const ids = rows.slice(0, limit).map((r) => r.dependent_task_id);
    const tasks = ids
      .map((id) => this.load(id))
      .filter((r): r is TaskRecord => !!r)
      .map((rec) => ({ status: this.statusOf(rec), task: rec.def }));
    const body: Record<string, unknown> = { taskId, tasks };
    if (more) body.continuationToken = encodeToken(ids[ids.length - 1]);
    return { body };
  }

  /** The schedule/rerun/cancel scope expression, rendered with the stored task's ids. */
  private requireTaskVerb(ctx: RequestContext, rec: TaskRecord): void {
    const { schedulerId, taskGroupId, projectId } = rec.def;
    ctx.authorize({ schedulerId, taskGroupId, projectId });
  }

  private scheduleTaskHandler(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const rec = this.mustLoad(taskId);
    this.requireTaskVerb(ctx, rec);
    const status = this.tx(() => this.scheduleInternal(taskId));
    if (!status) {
      throw new ApiError(
        'RequestConflict',
        `task ${taskId} can't be scheduled past its deadline of ${rec.def.deadline}`,
        { taskId, deadline: rec.def.deadline },
      );
    }
    return { body: { status } };
  }

  private rerunTask(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const rec0 = this.mustLoad(taskId);
    this.requireTaskVerb(ctx, rec0);
    return this.tx(() => {
      const rec = this.mustLoad(taskId);
      this.refusePastDeadline(rec, 'rescheduled');
      const state = this.stateOf(rec);
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
          scheduled: iso(this.nowMs()),
        });
        this.save(rec);
        this.enqueue(rec, rec.runs.length - 1);
      }
      return { body: { status: this.statusOf(rec) } };
    });
  }

  /** 409 for a verb (rescheduled, canceled) on a task whose deadline has passed, as upstream. */
  private refusePastDeadline(rec: TaskRecord, verb: string): void {
    if (rec.deadline >= this.nowMs()) return;
    throw new ApiError(
      'RequestConflict',
      `task ${rec.taskId} can't be ${verb} past its deadline of ${rec.def.deadline}`,
      { taskId: rec.taskId, deadline: rec.def.deadline },
    );
  }

  private cancelTask(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const rec0 = this.mustLoad(taskId);
    this.requireTaskVerb(ctx, rec0);
    return this.tx(() => {
      const rec = this.mustLoad(taskId);
      this.refusePastDeadline(rec, 'canceled');
      this.resolveUnfinished(rec, 'canceled');
      return { body: { status: this.statusOf(rec) } };
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Workers

  private credentialsFor(
    rec: TaskRecord,
    runId: number,
    workerGroup: string,
    workerId: string,
    takenUntil: number,
  ): TemporaryCredentials {
    const taskId = rec.taskId;
    return this.issueCredentials({
      clientId: `task-client/${taskId}/${runId}/on/${workerGroup}/${workerId}/until/${takenUntil / 1000}`,
      scopes: [
        `queue:reclaim-task:${taskId}/${runId}`,
        `queue:resolve-task:${taskId}/${runId}`,
        `queue:create-artifact:${taskId}/${runId}`,
        ...rec.def.scopes,
      ],
      start: new Date(this.nowMs()),
      expiry: new Date(takenUntil),
    });
  }

  /** Claim up to `count` pending runs of a task queue, priority first then FIFO. */
  private claimPending(
    taskQueueId: string,
    workerGroup: string,
    workerId: string,
    count: number,
  ): ClaimedTaskItem[] {
    return this.tx(() => {
      const claimed: ClaimedTaskItem[] = [];
      const now = this.nowMs();
      while (claimed.length < count) {
        const rows = this.st.nextPending.all(taskQueueId, count - claimed.length) as {
          seq: number;
          task_id: string;
          run_id: number;
        }[];
        if (rows.length === 0) break;
        for (const row of rows) {
          this.st.dropPending.run(row.seq);
          const rec = this.load(row.task_id);
          if (!rec || rec.deadline <= now) continue;
          const run = rec.runs[row.run_id];
          if (!run || run.state !== 'pending' || row.run_id !== rec.runs.length - 1) continue;
          const takenUntil = now + CLAIM_TIMEOUT_MS;
          run.state = 'running';
          run.workerGroup = workerGroup;
          run.workerId = workerId;
          run.takenUntil = iso(takenUntil);
          run.started = iso(now);
          this.save(rec);
          claimed.push({
            status: this.statusOf(rec),
            runId: row.run_id,
            workerGroup,
            workerId,
            takenUntil: iso(takenUntil),
            task: rec.def,
            credentials: this.credentialsFor(rec, row.run_id, workerGroup, workerId, takenUntil),
          });
          this.log.debug('queue.task-claimed', { taskId: rec.taskId, runId: row.run_id, workerId });
        }
      }
      return claimed;
    });
  }

  private waitForWork(taskQueueId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(taskQueueId);
      if (!set) this.waiters.set(taskQueueId, (set = new Set()));
      const wake = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', wake);
        const s = this.waiters.get(taskQueueId);
        s?.delete(wake);
        if (s && s.size === 0) this.waiters.delete(taskQueueId);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      signal?.addEventListener('abort', wake, { once: true });
      set.add(wake);
    });
  }

  private async claimWork(ctx: RequestContext): Promise<HandlerResult> {
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
    const until = Date.now() + this.pollMs;
    for (;;) {
      if (this.closed || signal?.aborted) return { body: { tasks: [] } };
      const tasks = this.claimPending(taskQueueId, body.workerGroup, body.workerId, body.tasks);
      if (tasks.length > 0) return { body: { tasks } };
      const remaining = until - Date.now();
      if (remaining <= 0) return { body: { tasks: [] } };
      await this.waitForWork(taskQueueId, remaining, signal);
    }
  }

  private runOf(ctx: RequestContext): { rec: TaskRecord; runId: number; run: TaskRun } {
    const taskId = checkTaskId(ctx.params.taskId);
    const runId = checkRunId(ctx.params.runId);
    const rec = this.mustLoad(taskId);
    const run = rec.runs[runId];
    if (!run) throw runNotFound(taskId, runId);
    return { rec, runId, run };
  }

  private reclaimTask(ctx: RequestContext): HandlerResult {
    const { rec, runId } = this.runOf(ctx);
    const taskId = rec.taskId;
    return this.tx(() => {
      const cur = this.mustLoad(taskId);
      const now = this.nowMs();
      if (cur.deadline <= now) {
        throw new ApiError(
          'RequestConflict',
          `task ${taskId} can't be reclaimed past its deadline of ${cur.def.deadline}`,
          { taskId, deadline: cur.def.deadline },
        );
      }
      const run = cur.runs[runId];
      if (cur.runs.length - 1 !== runId || run.state !== 'running') {
        throw new ApiError(
          'RequestConflict',
          `run ${runId} on task ${taskId} is resolved or not running`,
          { taskId, runId },
        );
      }
      const takenUntil = now + CLAIM_TIMEOUT_MS;
      run.takenUntil = iso(takenUntil);
      this.save(cur);
      const workerGroup = run.workerGroup as string;
      const workerId = run.workerId as string;
      return {
        body: {
          status: this.statusOf(cur),
          runId,
          workerGroup,
          workerId,
          takenUntil: iso(takenUntil),
          credentials: this.credentialsFor(cur, runId, workerGroup, workerId, takenUntil),
        },
      };
    });
  }

  private resolveHandler(ctx: RequestContext, target: 'completed' | 'failed'): HandlerResult {
    const { rec, runId } = this.runOf(ctx);
    const taskId = rec.taskId;
    let completed: TaskRecord | undefined;
    const result = this.tx(() => {
      const cur = this.mustLoad(taskId);
      const run = cur.runs[runId];
      if (run.state === target && run.reasonResolved === target && cur.runs.length - 1 === runId) {
        return { body: { status: this.statusOf(cur) } }; // idempotent
      }
      if (run.state !== 'running' || cur.runs.length - 1 !== runId) {
        throw new ApiError(
          'RequestConflict',
          `run ${runId} of task ${taskId} is not running or ${target}`,
          { taskId, runId, targetState: target },
        );
      }
      this.resolveRun(cur, runId, target, target);
      if (target === 'completed') completed = cur;
      return { body: { status: this.statusOf(cur) } };
    });
    if (completed && this.events.onTaskCompleted) {
      try {
        this.events.onTaskCompleted(taskId, completed.def);
      } catch (e) {
        this.log.error('queue.on-task-completed-failed', { taskId, error: e });
      }
    }
    return result;
  }

  private reportException(ctx: RequestContext): HandlerResult {
    const { reason } = validateRequest<{ reason: NonNullable<TaskRun['reasonResolved']> }>(
      'task-exception-request',
      ctx.body,
    );
    const { rec, runId } = this.runOf(ctx);
    const taskId = rec.taskId;
    return this.tx(() => {
      const cur = this.mustLoad(taskId);
      const run = cur.runs[runId];
      if (run.state === 'exception' && run.reasonResolved === reason) {
        // idempotent, unless a later run exists beyond the retry this call created
        if (cur.runs.length - 1 > runId + 1) {
          throw new ApiError(
            'RequestConflict',
            `run ${runId} on task ${taskId} is resolved or not running`,
            { taskId, runId },
          );
        }
        return { body: { status: this.statusOf(cur) } };
      }
      if (run.state !== 'running' || cur.runs.length - 1 !== runId) {
        throw new ApiError(
          'RequestConflict',
          `run ${runId} on task ${taskId} is resolved or not running`,
          { taskId, runId },
        );
      }
      const retryReason =
        reason === 'worker-shutdown'
          ? 'retry'
          : reason === 'intermittent-task'
            ? 'task-retry'
            : undefined;
      this.resolveRun(cur, runId, 'exception', reason, retryReason);
      return { body: { status: this.statusOf(cur) } };
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Artifacts

  private createArtifact(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const runId = checkRunId(ctx.params.runId);
    const name = checkArtifactName(ctx.params.name);
    const input = validateRequest<Record<string, any>>('post-artifact-request', ctx.body);
    const storageType = input.storageType as string;
    const contentType = (input.contentType as string | undefined) ?? 'application/binary';
    const expires = Date.parse(input.expires);
    const now = this.nowMs();
    if (expires < now - DRIFT_MS) {
      throw new ApiError('InputError', 'artifact `expires` must be in the future', {
        expires: input.expires,
      });
    }
    const rec = this.load(taskId);
    if (!rec) throw new ApiError('InputError', `task ${taskId} not found`, { taskId });
    const run = rec.runs[runId];
    if (!run)
      throw new ApiError('InputError', `run ${runId} of task ${taskId} not found`, {
        taskId,
        runId,
      });
    if (!run.workerGroup || !run.workerId) {
      throw new ApiError(
        'InputError',
        `run ${runId} of task ${taskId} was not claimed by a worker and so no artifacts can exist`,
        { taskId, runId },
      );
    }
    if (expires > rec.expires) {
      throw new ApiError(
        'InputError',
        `artifact expires (${iso(expires)}) after the task expires (${rec.def.expires}); ` +
          'artifacts may not outlive their task',
        { taskExpires: rec.def.expires, expires: iso(expires) },
      );
    }
    if (run.state !== 'running') {
      const allowed =
        run.state === 'exception' &&
        !!run.resolved &&
        Date.parse(run.resolved) > now - ARTIFACTS_AFTER_EXCEPTION_MS;
      if (!allowed) {
        throw new ApiError(
          'RequestConflict',
          `artifacts cannot be created for run ${runId} of task ${taskId}: it is ${run.state}. ` +
            "Artifacts are created while the run is running (or up to 25 min after an 'exception').",
          { taskId, runId, state: run.state },
        );
      }
    }
    if (storageType === 's3' || storageType === 'object') {
      throw new ApiError(
        'InputError',
        `storageType '${storageType}' is not served by the embedded queue; use a 'reference' artifact ` +
          'pointing at the uploaded object (or link/error)',
        { storageType },
      );
    }
    let details: Record<string, string>;
    if (storageType === 'reference') details = { url: input.url };
    else if (storageType === 'link') details = { artifact: input.artifact };
    else details = { reason: input.reason, message: input.message };

    const row: ArtifactRow = {
      task_id: taskId,
      run_id: runId,
      name,
      storage_type: storageType as ArtifactRow['storage_type'],
      content_type: contentType,
      details: JSON.stringify(details),
      expires,
    };
    this.tx(() => {
      const original = this.st.getArtifact.get(taskId, runId, name) as ArtifactRow | undefined;
      if (!original) {
        this.st.insertArtifact.run(row);
        return;
      }
      const compatible =
        (storageType === 'link' || original.content_type === contentType) &&
        original.expires <= expires &&
        (original.storage_type === storageType
          ? storageType === 'reference' || original.details === row.details
          : original.storage_type === 'reference' && storageType === 'link');
      if (!compatible) {
        throw new ApiError(
          'RequestConflict',
          `artifact ${name} of run ${runId} of task ${taskId} already exists with different ` +
            'properties, and none of the allowed changes apply (reference → new url or link, ' +
            'extending expires)',
          {
            originalArtifact: {
              storageType: original.storage_type,
              contentType: original.content_type,
              expires: iso(original.expires),
            },
          },
        );
      }
      this.st.updateArtifact.run(row);
    });
    return { body: { storageType } };
  }

  private finishArtifact(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const runId = checkRunId(ctx.params.runId);
    const name = checkArtifactName(ctx.params.name);
    validateRequest('finish-artifact-request', ctx.body);
    const row = this.st.getArtifact.get(taskId, runId, name) as ArtifactRow | undefined;
    if (!row || !this.load(taskId)?.runs[runId]) {
      throw new ApiError(
        'ResourceNotFound',
        `artifact ${name} of run ${runId} of task ${taskId} not found`,
        { taskId, runId, name },
      );
    }
    throw new ApiError(
      'InputError',
      `only object artifacts can be finished; ${name} is a '${row.storage_type}' artifact`,
      { storageType: row.storage_type },
    );
  }

  /** Names that need `queue:get-artifact:<name>`; public/ artifacts are readable by anyone. */
  private requireArtifactScopes(ctx: RequestContext, names: string[]): void {
    const guarded = names.filter((n) => !n.startsWith('public/'));
    if (guarded.length) {
      ctx.authorize({ names: guarded });
    }
  }

  private latestRunId(taskId: string): number {
    const rec = this.load(taskId);
    if (!rec) throw taskNotFound(taskId);
    if (rec.runs.length === 0) {
      throw new ApiError('ResourceNotFound', `task ${taskId} doesn't have any runs`, { taskId });
    }
    return rec.runs.length - 1;
  }

  /** The artifact at `name`, following link artifacts (checking scopes for every name). */
  private followLinks(
    ctx: RequestContext,
    taskId: string,
    runId: number,
    first: string,
  ): ArtifactRow {
    const names: string[] = [];
    let name = first;
    for (;;) {
      names.push(name);
      this.requireArtifactScopes(ctx, names);
      const row = this.st.getArtifact.get(taskId, runId, name) as ArtifactRow | undefined;
      if (!row) {
        throw new ApiError(
          'ResourceNotFound',
          `artifact ${name} not found on run ${runId} of task ${taskId}`,
          { taskId, runId, name },
        );
      }
      if (row.expires < this.nowMs()) {
        throw new ApiError('ResourceExpired', `artifact ${name} has expired`, {
          taskId,
          runId,
          name,
        });
      }
      if (row.storage_type !== 'link') return row;
      const target = (JSON.parse(row.details) as { artifact: string }).artifact;
      if (names.includes(target)) {
        throw new ApiError('InputError', `artifact ${first} leads to a link cycle`, {
          names: [...names, target],
        });
      }
      name = target;
    }
  }

  private artifactTarget(
    ctx: RequestContext,
    latest: boolean,
  ): { taskId: string; runId: number; name: string } {
    const taskId = checkTaskId(ctx.params.taskId);
    const name = checkArtifactName(ctx.params.name);
    if (latest) {
      this.requireArtifactScopes(ctx, [name]); // permission before revealing a 404
      return { taskId, name, runId: this.latestRunId(taskId) };
    }
    return { taskId, name, runId: checkRunId(ctx.params.runId) };
  }

  private artifactDownload(ctx: RequestContext, latest: boolean): HandlerResult {
    const { taskId, runId, name } = this.artifactTarget(ctx, latest);
    const row = this.followLinks(ctx, taskId, runId, name);
    const details = JSON.parse(row.details) as Record<string, string>;
    const headers = { 'x-taskcluster-artifact-storage-type': row.storage_type };
    if (row.storage_type === 'error') {
      return { status: 424, body: { reason: details.reason, message: details.message }, headers };
    }
    return {
      status: 303,
      body: { storageType: row.storage_type, url: details.url },
      headers: { ...headers, location: details.url },
    };
  }

  private artifactContent(ctx: RequestContext, latest: boolean): HandlerResult {
    const { taskId, runId, name } = this.artifactTarget(ctx, latest);
    const row = this.followLinks(ctx, taskId, runId, name);
    const details = JSON.parse(row.details) as Record<string, string>;
    if (row.storage_type === 'error') {
      return { body: { storageType: 'error', reason: details.reason, message: details.message } };
    }
    return { body: { storageType: 'reference', url: details.url } };
  }

  private serializeArtifact(row: ArtifactRow): Record<string, unknown> {
    return {
      storageType: row.storage_type,
      name: row.name,
      expires: iso(row.expires),
      contentType: row.content_type,
    };
  }

  /** The run an artifact listing is about (the latest, or the one named), after its scope check. */
  private listedRunId(ctx: RequestContext, taskId: string, latest: boolean): number {
    if (latest) {
      return this.latestRunId(taskId);
    }
    const runId = checkRunId(ctx.params.runId);
    return runId;
  }

  private artifactInfo(ctx: RequestContext, latest: boolean): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const name = checkArtifactName(ctx.params.name);
    const runId = this.listedRunId(ctx, taskId, latest);
    const row = this.st.getArtifact.get(taskId, runId, name) as ArtifactRow | undefined;
    if (!row) {
      throw new ApiError(
        'ResourceNotFound',
        `artifact ${name} not found on run ${runId} of task ${taskId}`,
        { taskId, runId, name },
      );
    }
    return { body: this.serializeArtifact(row) };
  }

  private listArtifacts(ctx: RequestContext, latest: boolean): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const runId = this.listedRunId(ctx, taskId, latest);
    if (!latest && runId > this.latestRunId(taskId)) {
      throw new ApiError('ResourceNotFound', `task ${taskId} has no run ${runId}`, {
        taskId,
        runId,
      });
    }
    const limit = pageSize(ctx.query);
    const after = decodeToken<string>(ctx.query.continuationToken, 'string') ?? '';
    const rows = this.st.artifactPage.all(taskId, runId, after, limit + 1) as ArtifactRow[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    const body: Record<string, unknown> = { artifacts: page.map((r) => this.serializeArtifact(r)) };
    if (more) body.continuationToken = encodeToken(page[page.length - 1].name);
    return { body };
  }

  /** Used by tests and diagnostics: the root URL this queue is served under. */
  get queueRootUrl(): string {
    return this.rootUrl();
  }
}
