// Dependency resolution, as upstream's dependencytracker.js: a task is scheduled once every task
// it depends on has resolved as its `requires` asks; resolving a run (or a deadline, a
// cancellation, an expired claim) either retries it or tells its dependents.
import type { TaskRun, TaskStatus } from '../../taskcluster/types.js';
import type { Logger } from '../../util/log.js';
import { ApiError } from '../framework.js';
import {
  iso,
  MAX_RUNS_ALLOWED,
  type Resolution,
  type StoredTaskDefinition,
  type TaskRecord,
} from './model.js';
import type { QueueStore } from './store.js';

export class DependencyTracker {
  constructor(
    private readonly store: QueueStore,
    private readonly log: Logger,
  ) {}

  /**
   * The dependencies of a new task `taskId` that are already satisfied; throws InputError when
   * some do not exist or expire before the task's deadline.
   */
  satisfiedDependencies(taskId: string, def: StoredTaskDefinition, deadline: number): Set<string> {
    const missing: string[] = [];
    const expiring: string[] = [];
    const satisfied = new Set<string>();
    for (const depId of def.dependencies) {
      if (depId === taskId) continue; // a self-dependency waits for scheduleTask
      const row = this.store.st.depInfo.get(depId) as { runs: string; expires: number } | undefined;
      if (!row) {
        missing.push(depId);
        continue;
      }
      if (deadline > row.expires) {
        expiring.push(depId);
        continue;
      }
      const state = this.store.stateOf({ runs: JSON.parse(row.runs) as TaskRun[] });
      if (
        state === 'completed' ||
        (def.requires === 'all-resolved' && (state === 'failed' || state === 'exception'))
      ) {
        satisfied.add(depId);
      }
    }
    if (missing.length || expiring.length) throw dependencyError(def, missing, expiring);
    return satisfied;
  }

  /** Record a new task's dependencies, and schedule it when none blocks it. */
  track(taskId: string, def: StoredTaskDefinition, satisfied: Set<string>): void {
    for (const depId of def.dependencies) {
      this.store.st.insertDep.run(depId, taskId, def.requires, satisfied.has(depId) ? 1 : 0);
    }
    if (!this.store.st.blocked.get(taskId)) this.schedule(taskId);
  }

  /** Add the initial pending run when the task has none; null when past its deadline. */
  schedule(taskId: string): TaskStatus | null {
    const rec = this.store.load(taskId);
    if (!rec) return null;
    const now = this.store.nowMs();
    if (rec.deadline < now) return null;
    if (rec.runs.length === 0) {
      rec.runs.push({
        runId: 0,
        state: 'pending',
        reasonCreated: 'scheduled',
        scheduled: iso(now),
      });
      this.store.save(rec);
      this.store.enqueue(rec, 0);
    }
    return this.store.statusOf(rec);
  }

  /** Release (or leave blocked) the tasks depending on a task that just resolved. */
  private resolveDependents(taskId: string, resolution: Resolution): void {
    const rows = this.store.st.unsatisfiedDependents.all(taskId) as {
      dependent_task_id: string;
      requires: string;
    }[];
    for (const dep of rows) {
      // all-completed dependents stay blocked by a failed/exception dependency (until deadline)
      if (resolution !== 'completed' && dep.requires !== 'all-resolved') continue;
      this.store.st.satisfy.run(taskId, dep.dependent_task_id);
      if (!this.store.st.blocked.get(dep.dependent_task_id)) this.schedule(dep.dependent_task_id);
    }
  }

  /**
   * Resolve run `runId` as `state`/`reason`. With a `retryReason` and retries left, a new pending
   * run is added (the task is not resolved); otherwise the dependents learn the resolution.
   */
  resolveRun(
    rec: TaskRecord,
    runId: number,
    state: Resolution,
    reason: NonNullable<TaskRun['reasonResolved']>,
    retryReason?: 'retry' | 'task-retry',
  ): void {
    const now = iso(this.store.nowMs());
    const run = rec.runs[runId];
    run.state = state;
    run.reasonResolved = reason;
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
    this.store.save(rec);
    if (retried) this.store.enqueue(rec, rec.runs.length - 1);
    else this.resolveDependents(rec.taskId, state);
  }

  /**
   * Resolve a task that has not finished (unscheduled: a new run; pending or running: its last
   * run) as exception with `reason`, then release or block its dependents. False when it had
   * already finished.
   */
  resolveUnfinished(rec: TaskRecord, reason: 'deadline-exceeded' | 'canceled'): boolean {
    const state = this.store.stateOf(rec);
    const now = iso(this.store.nowMs());
    if (state === 'unscheduled') {
      rec.runs.push({
        runId: 0,
        state: 'exception',
        reasonCreated: 'exception',
        reasonResolved: reason,
        scheduled: now,
        resolved: now,
      });
    } else if (state === 'pending' || state === 'running') {
      const run = rec.runs[rec.runs.length - 1]!;
      run.state = 'exception';
      run.reasonResolved = reason;
      run.resolved = now;
    } else {
      return false;
    }
    this.store.save(rec);
    this.store.st.dropPendingOfTask.run(rec.taskId);
    this.resolveDependents(rec.taskId, 'exception');
    return true;
  }

  /** Resolve the deadlines and claims that ran out by `now`. */
  sweep(now: number): void {
    const ids = (rows: unknown[]) => (rows as { task_id: string }[]).map((r) => r.task_id);
    for (const taskId of ids(this.store.st.deadlineExceeded.all(now))) {
      this.store.tx(() => this.resolveDeadline(taskId));
    }
    for (const taskId of ids(this.store.st.claimExpired.all(now))) {
      this.store.tx(() => this.expireClaim(taskId));
    }
  }

  private resolveDeadline(taskId: string): void {
    const rec = this.store.load(taskId);
    if (!rec || rec.deadline > this.store.nowMs()) return;
    if (!this.resolveUnfinished(rec, 'deadline-exceeded')) return;
    this.log.info('queue.deadline-exceeded', { taskId });
  }

  private expireClaim(taskId: string): void {
    const rec = this.store.load(taskId);
    if (!rec) return;
    const runId = rec.runs.length - 1;
    const run = rec.runs[runId];
    if (!run || run.state !== 'running' || !run.takenUntil) return;
    if (Date.parse(run.takenUntil) > this.store.nowMs()) return;
    this.log.info('queue.claim-expired', { taskId, runId });
    this.resolveRun(rec, runId, 'exception', 'claim-expired', 'retry');
  }
}

function dependencyError(def: StoredTaskDefinition, missing: string[], expiring: string[]) {
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
        `${def.deadline}: ${expiring.join(', ')}`,
    );
  }
  return new ApiError('InputError', parts.join('\n'), {
    dependencies: def.dependencies,
    missingTaskDependencies: missing,
    expiringTaskDependencies: expiring,
  });
}
