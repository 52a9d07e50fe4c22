// The embedded Queue's tables (better-sqlite3, so a restart keeps everything) and the reads and
// writes of a task every part of the queue shares. Time comes only from the clock, so tests drive
// claim expiry and deadlines with a ManualClock.
//
// Every state change happens inside one synchronous SQLite transaction (`tx`); node runs one
// handler at a time, so no two requests interleave inside a change.
import type Database from 'better-sqlite3';
import type { TaskRun, TaskStatus } from '../../taskcluster/types.js';
import type { Clock } from '../framework.js';
import {
  PRIORITY_LEVELS,
  taskNotFound,
  type StoredTaskDefinition,
  type TaskRecord,
  type TaskRow,
} from './model.js';

const SCHEMA = `
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
`;

const TASK_COLUMNS = 'seq, task_id, definition, runs, retries_left, deadline, expires';

/** Every statement the queue runs, prepared once. */
const SQL = {
  getTask: `SELECT ${TASK_COLUMNS} FROM queue_tasks WHERE task_id = ?`,
  insertTask: `INSERT INTO queue_tasks (task_id, task_group_id, task_queue_id, priority, deadline,
    expires, retries_left, state, taken_until, definition, runs)
    VALUES (@task_id, @task_group_id, @task_queue_id, @priority, @deadline, @expires, @retries_left,
    @state, @taken_until, @definition, @runs)`,
  saveRuns:
    'UPDATE queue_tasks SET runs = ?, state = ?, retries_left = ?, taken_until = ? WHERE task_id = ?',
  depInfo: 'SELECT runs, expires FROM queue_tasks WHERE task_id = ?',
  countInQueue: 'SELECT COUNT(*) AS n FROM queue_tasks WHERE task_queue_id = ? AND state = ?',
  getGroup: 'SELECT scheduler_id, expires FROM queue_task_groups WHERE task_group_id = ?',
  insertGroup:
    'INSERT INTO queue_task_groups (task_group_id, scheduler_id, expires) VALUES (?, ?, ?)',
  extendGroup: 'UPDATE queue_task_groups SET expires = MAX(expires, ?) WHERE task_group_id = ?',
  insertDep: `INSERT OR IGNORE INTO queue_dependencies
    (required_task_id, dependent_task_id, requires, satisfied) VALUES (?, ?, ?, ?)`,
  unsatisfiedDependents: `SELECT dependent_task_id, requires FROM queue_dependencies
    WHERE required_task_id = ? AND satisfied = 0 ORDER BY dependent_task_id`,
  satisfy:
    'UPDATE queue_dependencies SET satisfied = 1 WHERE required_task_id = ? AND dependent_task_id = ?',
  blocked: 'SELECT 1 FROM queue_dependencies WHERE dependent_task_id = ? AND satisfied = 0 LIMIT 1',
  enqueue:
    'INSERT INTO queue_pending (task_queue_id, priority, task_id, run_id) VALUES (?, ?, ?, ?)',
  nextPending: `SELECT seq, task_id, run_id FROM queue_pending WHERE task_queue_id = ?
    ORDER BY priority, seq LIMIT ?`,
  dropPending: 'DELETE FROM queue_pending WHERE seq = ?',
  dropPendingOfTask: 'DELETE FROM queue_pending WHERE task_id = ?',
  groupPage: `SELECT ${TASK_COLUMNS} FROM queue_tasks
    WHERE task_group_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
  dependentsPage: `SELECT dependent_task_id FROM queue_dependencies
    WHERE required_task_id = ? AND dependent_task_id > ? ORDER BY dependent_task_id LIMIT ?`,
  deadlineExceeded: `SELECT task_id FROM queue_tasks
    WHERE state IN ('unscheduled', 'pending', 'running') AND deadline <= ?`,
  claimExpired: "SELECT task_id FROM queue_tasks WHERE state = 'running' AND taken_until <= ?",
  expiredTasks: 'SELECT task_id FROM queue_tasks WHERE expires < ? LIMIT 1000',
  deleteTask: 'DELETE FROM queue_tasks WHERE task_id = ?',
  deleteTaskArtifacts: 'DELETE FROM queue_artifacts WHERE task_id = ?',
  deleteTaskDeps:
    'DELETE FROM queue_dependencies WHERE dependent_task_id = ? OR required_task_id = ?',
  expiredArtifacts: 'DELETE FROM queue_artifacts WHERE expires < ?',
  expiredGroups: `DELETE FROM queue_task_groups WHERE expires < ? AND NOT EXISTS
    (SELECT 1 FROM queue_tasks t WHERE t.task_group_id = queue_task_groups.task_group_id)`,
  getArtifact: 'SELECT * FROM queue_artifacts WHERE task_id = ? AND run_id = ? AND name = ?',
  insertArtifact: `INSERT INTO queue_artifacts
    (task_id, run_id, name, storage_type, content_type, details, expires)
    VALUES (@task_id, @run_id, @name, @storage_type, @content_type, @details, @expires)`,
  updateArtifact: `UPDATE queue_artifacts SET storage_type = @storage_type,
    content_type = @content_type, details = @details, expires = @expires
    WHERE task_id = @task_id AND run_id = @run_id AND name = @name`,
  artifactPage: `SELECT * FROM queue_artifacts WHERE task_id = ? AND run_id = ? AND name > ?
    ORDER BY name LIMIT ?`,
} as const;

export type Statements = Record<keyof typeof SQL, Database.Statement>;

export interface TaskGroupRow {
  scheduler_id: string;
  expires: number;
}

export class QueueStore {
  readonly st: Statements;
  private readonly clock: Clock;
  /** Wakes of the claimWork long polls waiting on each task queue. */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Runs a function inside one SQLite transaction (nested calls become savepoints). */
  private readonly txRunner: (fn: () => unknown) => unknown;

  constructor(db: Database.Database, clock: Clock) {
    this.clock = clock;
    db.exec(SCHEMA);
    this.txRunner = db.transaction((fn: () => unknown) => fn());
    this.st = Object.fromEntries(
      Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)]),
    ) as Statements;
  }

  nowMs(): number {
    return this.clock.now().getTime();
  }

  tx<T>(fn: () => T): T {
    return this.txRunner(fn) as T;
  }

  fromRow(row: TaskRow): TaskRecord {
    return {
      seq: row.seq,
      taskId: row.task_id,
      def: JSON.parse(row.definition) as StoredTaskDefinition,
      retriesLeft: row.retries_left,
      runs: JSON.parse(row.runs) as TaskRun[],
      deadline: row.deadline,
      expires: row.expires,
    };
  }

  load(taskId: string): TaskRecord | undefined {
    const row = this.st.getTask.get(taskId) as TaskRow | undefined;
    return row && this.fromRow(row);
  }

  mustLoad(taskId: string): TaskRecord {
    const rec = this.load(taskId);
    if (!rec) throw taskNotFound(taskId);
    return rec;
  }

  group(taskGroupId: string): TaskGroupRow | undefined {
    return this.st.getGroup.get(taskGroupId) as TaskGroupRow | undefined;
  }

  stateOf(rec: { runs: TaskRun[] }): TaskStatus['state'] {
    const last = rec.runs[rec.runs.length - 1];
    return last ? last.state : 'unscheduled';
  }

  save(rec: TaskRecord): void {
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

  statusOf(rec: TaskRecord): TaskStatus {
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
  enqueue(rec: TaskRecord, runId: number): void {
    this.st.enqueue.run(
      rec.def.taskQueueId,
      PRIORITY_LEVELS.indexOf(rec.def.priority),
      rec.taskId,
      runId,
    );
    const set = this.waiters.get(rec.def.taskQueueId);
    if (set) for (const wake of [...set]) wake();
  }

  /** Resolves when work is enqueued on `taskQueueId`, after `ms` (real time), or on abort. */
  waitForWork(taskQueueId: string, ms: number, signal?: AbortSignal): Promise<void> {
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

  /** How many claimWork long polls are waiting on `taskQueueId` now. */
  waitingPolls(taskQueueId: string): number {
    return this.waiters.get(taskQueueId)?.size ?? 0;
  }

  /** Wakes every waiting long poll. */
  wakeAll(): void {
    for (const set of this.waiters.values()) for (const wake of [...set]) wake();
    this.waiters.clear();
  }

  /** Drops the tasks, artifacts and task groups that expired before `now`. */
  dropExpired(now: number): void {
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
}
