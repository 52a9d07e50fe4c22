// On-demand builds: the one archive task of (project, revision, subdir).
//
// Its task id is derived from (project, repository, revision, subdir, attempt), so every replica
// of the lookup service computes the same id, and the queue's idempotent createTask is the lock
// between replicas: a 409 means another replica created it first, and its task is used. A small
// SQLite database under the state directory remembers, per replica, the builds it started (to
// survive a restart between recording and creating), the full revisions of short ones, and the
// revisions the repository does not know. Unknown revisions are looked up in the repository at a
// bounded rate per project.
import BetterSqlite3 from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { QueueClient } from '../../taskcluster/client.js';
import { deterministicSlugid } from '../../taskcluster/task-ids.js';
import type { TaskDefinition } from '../../taskcluster/types.js';
import { ArchiveError, errorMessage, isArchiveError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { LookupConfig, ProjectConfig } from '../config.js';
import {
  ARCHIVE_KIND,
  DEFAULT_ARCHIVE_ARTIFACT,
  indexRoute,
  revisionNamespace,
} from '../../contract/index.js';
import { describeArchive, type FindClients } from '../find.js';
import { HttpError } from './answer.js';
import { RateLimit, SingleFlight, TtlCache } from './cache.js';

export type ResolveRevision = (project: ProjectConfig, revision: string) => Promise<string>;

export type BuildState = 'pending' | 'running' | 'completed' | 'failed';

export interface BuildStatus {
  taskId: string;
  state: BuildState;
  project?: string;
  revision?: string;
  /** completed: the archive. */
  url?: string;
  sha256?: string;
  size?: number;
  /** failed: why. */
  reason?: string;
  statusUrl: string;
}

export interface BuildRecord {
  project: string;
  revision: string;
  taskId: string;
  attempt: number;
  createdAt: string;
  submitted: boolean;
}

type StoredBuild = BuildRecord & { definition: string };

interface BuildRow {
  project: string;
  revision: string;
  task_id: string;
  attempt: number;
  definition: string;
  created_at: string;
  submitted: number;
}

/** The task id of attempt `attempt` of the on-demand build of (project, revision, subdir). */
export function onDemandTaskId(
  project: string,
  p: Pick<ProjectConfig, 'repository' | 'subdir'>,
  revision: string,
  attempt = 0,
): string {
  return deterministicSlugid(
    [
      'mozharness-archive/on-demand/v1',
      project,
      p.repository,
      revision,
      p.subdir ?? '',
      String(attempt),
    ].join('\n'),
  );
}

export class BuildStore {
  private db: BetterSqlite3.Database;
  constructor(stateDir: string) {
    fs.mkdirSync(stateDir, { recursive: true });
    this.db = new BetterSqlite3(path.join(stateDir, 'lookup.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS builds (
        project TEXT NOT NULL, revision TEXT NOT NULL, task_id TEXT NOT NULL UNIQUE,
        definition TEXT NOT NULL, created_at TEXT NOT NULL, submitted INTEGER NOT NULL DEFAULT 0,
        attempt INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project, revision));
      CREATE TABLE IF NOT EXISTS unknown_revisions (
        project TEXT NOT NULL, revision TEXT NOT NULL, checked_at INTEGER NOT NULL,
        PRIMARY KEY (project, revision));`);
    const columns = this.db.prepare('PRAGMA table_info(builds)').all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'attempt')) {
      this.db.exec('ALTER TABLE builds ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0');
    }
  }
  get(project: string, revision: string): StoredBuild | undefined {
    const r = this.db
      .prepare('SELECT * FROM builds WHERE project = ? AND revision = ?')
      .get(project, revision) as BuildRow | undefined;
    return r && this.row(r);
  }
  byTask(taskId: string): StoredBuild | undefined {
    const r = this.db.prepare('SELECT * FROM builds WHERE task_id = ?').get(taskId) as
      BuildRow | undefined;
    return r && this.row(r);
  }
  byPrefix(project: string, short: string): string[] {
    return (
      this.db
        .prepare("SELECT revision FROM builds WHERE project = ? AND revision LIKE ? || '%'")
        .all(project, short) as Array<{ revision: string }>
    ).map((r) => r.revision);
  }
  /** Insert unless present; returns the record that is there afterwards. */
  claim(project: string, revision: string, taskId: string, definition: string, at: string) {
    this.db
      .prepare(
        'INSERT OR IGNORE INTO builds (project, revision, task_id, definition, created_at, submitted, attempt) VALUES (?, ?, ?, ?, ?, 0, 0)',
      )
      .run(project, revision, taskId, definition, at);
    return this.get(project, revision)!;
  }
  /** Swap a failed build's task for the next attempt; false when another request already did. */
  replace(old: string, taskId: string, attempt: number, definition: string, at: string): boolean {
    return (
      this.db
        .prepare(
          'UPDATE builds SET task_id = ?, attempt = ?, definition = ?, created_at = ?, submitted = 0 WHERE task_id = ?',
        )
        .run(taskId, attempt, definition, at, old).changes === 1
    );
  }
  update(taskId: string, definition: string): void {
    this.db.prepare('UPDATE builds SET definition = ? WHERE task_id = ?').run(definition, taskId);
  }
  submitted(taskId: string): void {
    this.db.prepare('UPDATE builds SET submitted = 1 WHERE task_id = ?').run(taskId);
  }
  forget(taskId: string): void {
    this.db.prepare('DELETE FROM builds WHERE task_id = ? AND submitted = 0').run(taskId);
  }
  unknown(project: string, revision: string, since: number): boolean {
    return !!this.db
      .prepare(
        'SELECT 1 FROM unknown_revisions WHERE project = ? AND revision = ? AND checked_at >= ?',
      )
      .get(project, revision, since);
  }
  markUnknown(project: string, revision: string, at: number): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO unknown_revisions (project, revision, checked_at) VALUES (?, ?, ?)',
      )
      .run(project, revision, at);
  }
  ping(): void {
    this.db.prepare('SELECT 1').get();
  }
  close(): void {
    this.db.close();
  }
  private row(r: BuildRow): StoredBuild {
    return {
      project: r.project,
      revision: r.revision,
      taskId: r.task_id,
      attempt: r.attempt ?? 0,
      createdAt: r.created_at,
      submitted: !!r.submitted,
      definition: r.definition,
    };
  }
}

export interface OnDemandDeps {
  config: LookupConfig;
  store: BuildStore;
  clients: FindClients;
  /** Reads task statuses. */
  queue: Pick<QueueClient, 'status' | 'task'>;
  /** Creates the archive tasks (and reads a task another replica created). */
  createQueue: Pick<QueueClient, 'createTask' | 'task'>;
  resolve: ResolveRevision;
  log: Logger;
  now: () => number;
  flight: SingleFlight;
  /** Called when a repository is asked for a revision (observability and tests). */
  onRepositoryLookup?: (project: string) => void;
  /** Called when this replica created an archive task. */
  onBuildCreated?: (project: string) => void;
}

const statusCode = (e: unknown) => (e as { statusCode?: number }).statusCode;

export class OnDemandBuilds {
  private statuses: TtlCache<BuildStatus>;
  private limits = new Map<string, RateLimit>();
  constructor(private deps: OnDemandDeps) {
    this.statuses = new TtlCache(deps.config.cache.maxEntries, deps.now);
  }

  clearCache(): void {
    this.statuses.clear();
  }

  /** The task definition of an on-demand build. Times are wall-clock: the queue checks them. */
  definition(name: string, p: ProjectConfig, revision: string): TaskDefinition {
    const od = p.onDemand!;
    const now = new Date();
    const deadline = new Date(now.getTime() + (od.deadlineMinutes ?? 180) * 60_000);
    const expires = new Date(now.getTime() + (od.expiresDays ?? 365) * 86_400_000);
    return {
      taskQueueId: od.taskQueueId,
      schedulerId: od.schedulerId ?? '-',
      projectId: od.projectId ?? 'none',
      priority: od.priority ?? 'low',
      created: now.toISOString(),
      deadline: deadline.toISOString(),
      expires: expires.toISOString(),
      routes: [indexRoute(revisionNamespace(this.deps.config.indexPrefix, name, revision))],
      scopes: od.scopes ?? [],
      payload: {
        repository: p.repository,
        ...(p.repositoryType ? { repositoryType: p.repositoryType } : {}),
        revision,
        subdir: p.subdir,
        artifactName: DEFAULT_ARCHIVE_ARTIFACT,
        maxRunTime: od.maxRunTime ?? 1800,
      },
      metadata: {
        name: `mozharness-archive ${name} ${revision.slice(0, 12)} (on demand)`,
        description: `Archive of ${p.subdir} of ${p.repository} at ${revision}, requested through the lookup service.`,
        owner: 'mozharness-archive-lookup',
        source: `${p.repository.replace(/\/+$/, '')}/rev/${revision}`,
      },
      tags: {
        kind: ARCHIVE_KIND,
        createdBy: 'lookup-service',
        project: name,
        'worker-implementation': 'mozharness-archive',
      },
      extra: { index: { rank: 0 } },
    };
  }

  /**
   * createTask; a 409 means the task id is taken: by another replica's build of the same
   * (project, revision, subdir) — then that task is this build — or, impossibly, by another task.
   */
  private async submit(
    name: string,
    p: ProjectConfig,
    taskId: string,
    def: TaskDefinition,
  ): Promise<'created' | 'existing'> {
    try {
      await this.deps.createQueue.createTask(taskId, def);
      return 'created';
    } catch (e) {
      const status = statusCode(e);
      if (status === 409) {
        const existing = await this.deps.createQueue.task(taskId).catch(() => undefined);
        const payload = (existing?.payload ?? {}) as Record<string, unknown>;
        if (
          payload.revision === def.payload.revision &&
          payload.subdir === def.payload.subdir &&
          payload.repository === def.payload.repository
        ) {
          this.deps.log.info('lookup.build-joined', { project: name, taskId });
          return 'existing';
        }
        throw new ArchiveError(
          'internal',
          `task id ${taskId} of the on-demand build of ${name} is taken by another task`,
        );
      }
      throw new ArchiveError(
        status && status < 500 ? 'not-allowed' : 'unavailable',
        `creating the archive task failed${status ? ` (${status})` : ''}: ${errorMessage(e)}`,
      );
    }
  }

  private async taskExists(taskId: string): Promise<boolean> {
    try {
      await this.deps.createQueue.task(taskId);
      return true;
    } catch (e) {
      if (statusCode(e) === 404) return false;
      throw new ArchiveError(
        'unavailable',
        `queue lookup of task ${taskId} failed: ${errorMessage(e)}`,
      );
    }
  }

  /** The one archive task of (project, revision): existing, or created now. */
  async ensureBuild(
    name: string,
    p: ProjectConfig,
    revision: string,
    opts: { replaceFailed?: string } = {},
  ): Promise<{ taskId: string; created: boolean }> {
    const { store } = this.deps;
    return this.deps.flight.run(`build:${name}:${revision}`, async () => {
      let rec = store.get(name, revision);
      if (rec && opts.replaceFailed && rec.taskId === opts.replaceFailed) {
        const def = this.definition(name, p, revision);
        const attempt = rec.attempt + 1;
        const taskId = onDemandTaskId(name, p, revision, attempt);
        if (store.replace(rec.taskId, taskId, attempt, JSON.stringify(def), def.created)) {
          this.deps.log.info('lookup.build-retry', {
            project: name,
            revision,
            failed: rec.taskId,
            taskId,
          });
        }
        rec = store.get(name, revision)!;
      }
      if (rec?.submitted) return { taskId: rec.taskId, created: false };
      if (!rec) {
        const def = this.definition(name, p, revision);
        const taskId = onDemandTaskId(name, p, revision);
        rec = store.claim(name, revision, taskId, JSON.stringify(def), def.created);
        if (rec.submitted) return { taskId: rec.taskId, created: false };
      } else if (await this.taskExists(rec.taskId)) {
        // created before a restart (or by another replica), not yet recorded as submitted
        store.submitted(rec.taskId);
        return { taskId: rec.taskId, created: false };
      } else {
        // never reached the queue: same task id, fresh timestamps
        const def = this.definition(name, p, revision);
        store.update(rec.taskId, JSON.stringify(def));
        rec = { ...rec, definition: JSON.stringify(def) };
      }
      let outcome: 'created' | 'existing';
      try {
        outcome = await this.submit(name, p, rec.taskId, JSON.parse(rec.definition));
      } catch (e) {
        store.forget(rec.taskId);
        throw e;
      }
      store.submitted(rec.taskId);
      if (outcome === 'created') {
        this.deps.onBuildCreated?.(name);
        this.deps.log.info('lookup.build-created', { project: name, revision, taskId: rec.taskId });
      }
      return { taskId: rec.taskId, created: outcome === 'created' };
    });
  }

  private limiter(name: string): RateLimit {
    let l = this.limits.get(name);
    if (!l) {
      const perMinute = this.deps.config.projects[name]?.onDemand?.repositoryLookupsPerMinute ?? 60;
      l = new RateLimit(perMinute, this.deps.now);
      this.limits.set(name, l);
    }
    return l;
  }

  /** Full revision for a not-indexed request, asking the repository at most once per revision. */
  async fullRevision(name: string, p: ProjectConfig, rev: string): Promise<string> {
    const { store, config } = this.deps;
    if (rev.length < 40) {
      const known = store.byPrefix(name, rev);
      if (known.length === 1) return known[0]!;
    } else if (store.get(name, rev)) {
      return rev;
    }
    const since = this.deps.now() - config.unknownRevisionTtlSeconds * 1000;
    if (store.unknown(name, rev, since)) {
      throw new HttpError(404, `revision ${rev} is not in ${p.repository}`);
    }
    return this.deps.flight.run(`resolve:${name}:${rev}`, async () => {
      const limit = this.limiter(name);
      if (!limit.take()) {
        const after = limit.retryAfterSeconds();
        throw new HttpError(
          429,
          `too many lookups of revisions not indexed yet for ${name}; try again in ${after} s`,
          { 'retry-after': String(after) },
        );
      }
      this.deps.onRepositoryLookup?.(name);
      try {
        const full = await this.deps.resolve(p, rev);
        if (!/^[0-9a-f]{40}$/.test(full)) {
          throw new ArchiveError(
            'internal',
            `the repository resolved ${rev} to ${JSON.stringify(full)}`,
          );
        }
        return full;
      } catch (e) {
        if (isArchiveError(e, 'not-found')) {
          store.markUnknown(name, rev, this.deps.now());
          throw new HttpError(404, `revision ${rev} is not in ${p.repository}`);
        }
        throw e;
      }
    });
  }

  /** Task state → build status (completed with the archive, failed with the reason). */
  async buildStatus(taskId: string, statusPath: string): Promise<BuildStatus> {
    const cached = this.statuses.get(taskId);
    if (cached) return { ...cached, statusUrl: statusPath + taskId };
    return this.deps.flight.run(`status:${taskId}`, async () => {
      let status: Awaited<ReturnType<QueueClient['status']>>['status'];
      try {
        status = (await this.deps.queue.status(taskId)).status;
      } catch (e) {
        if (statusCode(e) === 404) throw new HttpError(404, `no task ${taskId}`);
        throw new ArchiveError(
          'unavailable',
          `queue status of ${taskId} failed: ${errorMessage(e)}`,
        );
      }
      const rec = this.deps.store.byTask(taskId);
      const out: BuildStatus = { taskId, state: 'pending', statusUrl: statusPath + taskId };
      if (rec) {
        out.project = rec.project;
        out.revision = rec.revision;
      }
      const runs = (status.runs ?? []) as Array<{ reasonResolved?: string }>;
      const last = runs[runs.length - 1];
      switch (status.state) {
        case 'unscheduled':
        case 'pending':
          out.state = 'pending';
          break;
        case 'running':
          out.state = 'running';
          break;
        case 'completed': {
          const found = await describeArchive(this.deps.clients, {
            taskId,
            namespace: rec
              ? revisionNamespace(this.deps.config.indexPrefix, rec.project, rec.revision)
              : '',
            expires: status.expires,
          });
          out.state = 'completed';
          out.url = found.objectUrl ?? found.url;
          out.sha256 = found.sha256;
          out.size = found.size;
          break;
        }
        default:
          out.state = 'failed';
          out.reason =
            status.state === 'failed'
              ? 'the archive task failed (see its log: public/logs/live_backing.log)'
              : `the archive task ended in exception: ${last?.reasonResolved ?? 'unknown'}`;
      }
      if (out.state === 'completed' || out.state === 'failed') {
        this.statuses.set(taskId, out, this.deps.config.cache.hitTtlSeconds * 1000);
      }
      return out;
    });
  }

  /** How old the build behind `taskId` is (Infinity when this replica did not record it). */
  age(taskId: string): number {
    const rec = this.deps.store.byTask(taskId);
    return rec ? this.deps.now() - Date.parse(rec.createdAt) : Infinity;
  }
}
