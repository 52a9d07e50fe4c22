// `mozharness-archive serve`: the HTTP lookup endpoint (relengapi-compatible).
//
//   GET /v1/<project>/revision/<rev>     302 to the archive (X-Archive-Sha256/-Size, X-Task-Id),
//                                        JSON with Accept: application/json or ?format=json;
//                                        not indexed + on-demand → 202 Location /v1/status/<taskId>
//   GET /v1/<project>/latest             GET /v1/digest/<treeDigest>
//   GET /v1/status/<taskId>              {state: pending|running|completed|failed, …}
//   GET /archiver/hgmo/<repo>/<rev>?subdir=…&suffix=tar.gz   legacy relengapi archiver
//   GET /archiver/status/<id>            {state, status, src_url, s3_urls}
//   GET /__heartbeat__                   health
//
// On-demand builds are single-flight: one archive task per (project, revision), recorded in a
// small SQLite database under the state directory before the task is created, so concurrent
// requests and a restart never make a second task. Revisions the repository does not know are
// answered 404 at once and remembered. Found entries are cached for `hitTtlSeconds`, misses for
// `missTtlSeconds`. Every outbound request goes to a configured host only.
import BetterSqlite3 from 'better-sqlite3';
import { parseSource, resolveRevision } from '../archive/index.js';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { QueueClient } from '../taskcluster/client.js';
import { slugid } from '../taskcluster/client.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import { ArchiveError, errorMessage, isArchiveError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { LookupConfig, ProjectConfig } from './config.js';
import { DEFAULT_ARCHIVE_ARTIFACT, indexRoute, revisionNamespace } from '../contract/index.js';
import {
  checkDigest,
  checkRevision,
  describeArchive,
  findArchive,
  type FindClients,
  type FoundArchive,
  type IndexLookup,
  type QueueLookup,
} from './find.js';
import { hostAllowList, type HostCheck } from './http.js';

export const SLUGID_RE =
  /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;

export type ResolveRevision = (project: ProjectConfig, revision: string) => Promise<string>;

export interface LookupDeps {
  index: IndexLookup;
  /** Anonymous (or read) queue client. */
  queue: QueueLookup & Pick<QueueClient, 'task'>;
  /** Queue client with credentials for on-demand `createTask` (defaults to `queue`). */
  createQueue?: Pick<QueueClient, 'createTask' | 'task'>;
  rootUrl: string;
  /** Full revision from the repository; unknown → ArchiveError('not-found'). Default: the archive engine. */
  resolveRevision?: ResolveRevision;
  log?: Logger;
  /** Clock for cache TTLs and retry ages (task definitions always use wall-clock time). */
  now?: () => number;
  stateDir: string;
}

export interface BuildRecord {
  project: string;
  revision: string;
  taskId: string;
  createdAt: string;
  submitted: boolean;
}

type Cached<T> = { value: T; until: number };

class TtlCache<T> {
  private map = new Map<string, Cached<T>>();
  constructor(
    private max: number,
    private now: () => number,
  ) {}
  get(key: string): T | undefined {
    const c = this.map.get(key);
    if (!c) return undefined;
    if (c.until <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    return c.value;
  }
  set(key: string, value: T, ttlMs: number): void {
    if (ttlMs <= 0) return;
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    this.map.delete(key);
    this.map.set(key, { value, until: this.now() + ttlMs });
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
}

/** Default revision resolution: the archive engine's `resolveRevision` on the configured repository. */
export const engineResolveRevision: ResolveRevision = async (project, revision) => {
  const source = parseSource(project.repository, project.repositoryType);
  return resolveRevision(source, revision, {
    allowRepos: [project.repository],
    connectTimeoutMs: 10_000,
    idleTimeoutMs: 30_000,
    retries: 2,
    maxRetryTimeMs: 20_000,
  });
};

class BuildStore {
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
        PRIMARY KEY (project, revision));
      CREATE TABLE IF NOT EXISTS unknown_revisions (
        project TEXT NOT NULL, revision TEXT NOT NULL, checked_at INTEGER NOT NULL,
        PRIMARY KEY (project, revision));`);
  }
  get(project: string, revision: string): (BuildRecord & { definition: string }) | undefined {
    const r = this.db
      .prepare('SELECT * FROM builds WHERE project = ? AND revision = ?')
      .get(project, revision) as any;
    return r && this.row(r);
  }
  byTask(taskId: string): (BuildRecord & { definition: string }) | undefined {
    const r = this.db.prepare('SELECT * FROM builds WHERE task_id = ?').get(taskId) as any;
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
        'INSERT OR IGNORE INTO builds (project, revision, task_id, definition, created_at, submitted) VALUES (?, ?, ?, ?, ?, 0)',
      )
      .run(project, revision, taskId, definition, at);
    return this.get(project, revision)!;
  }
  /** Swap a failed build's task for a new one; false when another request already did. */
  replace(old: string, taskId: string, definition: string, at: string): boolean {
    return (
      this.db
        .prepare(
          'UPDATE builds SET task_id = ?, definition = ?, created_at = ?, submitted = 0 WHERE task_id = ?',
        )
        .run(taskId, definition, at, old).changes === 1
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
  private row(r: any): BuildRecord & { definition: string } {
    return {
      project: r.project,
      revision: r.revision,
      taskId: r.task_id,
      createdAt: r.created_at,
      submitted: !!r.submitted,
      definition: r.definition,
    };
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Fields for the request's log line. */
  log?: Record<string, unknown>;
}

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

export class LookupService {
  readonly config: LookupConfig;
  private deps: LookupDeps;
  private log: Logger;
  private now: () => number;
  private store: BuildStore;
  private found: TtlCache<FoundArchive | null>;
  private statuses: TtlCache<BuildStatus>;
  private inflight = new Map<string, Promise<unknown>>();
  private allowUrl: HostCheck;
  private resolve: ResolveRevision;
  private clients: FindClients;
  private server?: http.Server;
  /** Outbound requests to the repositories, by project (observability and tests). */
  readonly repositoryLookups: Record<string, number> = {};

  constructor(config: LookupConfig, deps: LookupDeps) {
    this.config = config;
    this.deps = deps;
    this.log = deps.log ?? silentLogger;
    this.now = deps.now ?? Date.now;
    this.store = new BuildStore(deps.stateDir);
    this.found = new TtlCache(config.cache.maxEntries, this.now);
    this.statuses = new TtlCache(config.cache.maxEntries, this.now);
    this.allowUrl = hostAllowList([
      deps.rootUrl,
      ...Object.values(config.projects).map((p) => p.repository),
      ...config.allowHosts,
    ]);
    this.resolve = deps.resolveRevision ?? engineResolveRevision;
    this.clients = {
      index: deps.index,
      queue: deps.queue,
      allowUrl: this.allowUrl,
      timeoutMs: 20_000,
    };
  }

  /** Coalesce concurrent identical work. */
  private once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const p = this.inflight.get(key) as Promise<T> | undefined;
    if (p) return p;
    const q = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, q);
    return q;
  }

  private project(name: string): ProjectConfig {
    const p = Object.prototype.hasOwnProperty.call(this.config.projects, name)
      ? this.config.projects[name]
      : undefined;
    if (!p) {
      throw new HttpError(
        400,
        `unknown project ${JSON.stringify(name)}; configured projects: ${Object.keys(this.config.projects).join(', ')}`,
      );
    }
    return p;
  }

  private revision(rev: string): string {
    try {
      return checkRevision(rev);
    } catch (e) {
      throw new HttpError(400, errorMessage(e));
    }
  }

  /** Cached index lookup: the archive, or null when not indexed. */
  private async lookup(
    key: string,
    q: () => Promise<FoundArchive>,
  ): Promise<{ found: FoundArchive | null; cache: 'hit' | 'miss' | 'negative' }> {
    const cached = this.found.get(key);
    if (cached !== undefined) return { found: cached, cache: cached ? 'hit' : 'negative' };
    const found = await this.once(`lookup:${key}`, async () => {
      try {
        const f = await q();
        this.found.set(key, f, this.config.cache.hitTtlSeconds * 1000);
        return f;
      } catch (e) {
        if (isArchiveError(e, 'not-found')) {
          this.found.set(key, null, this.config.cache.missTtlSeconds * 1000);
          return null;
        }
        throw e;
      }
    });
    return { found, cache: 'miss' };
  }

  // --- on-demand builds -----------------------------------------------------------------------

  private definition(name: string, p: ProjectConfig, revision: string): TaskDefinition {
    const od = p.onDemand!;
    // the queue checks `created` against its own clock: task times are wall-clock time
    const now = new Date();
    const deadline = new Date(now.getTime() + (od.deadlineMinutes ?? 180) * 60_000);
    const expires = new Date(now.getTime() + (od.expiresDays ?? 365) * 86_400_000);
    const def: TaskDefinition = {
      taskQueueId: od.taskQueueId,
      schedulerId: od.schedulerId ?? '-',
      projectId: od.projectId ?? 'none',
      priority: od.priority ?? 'low',
      created: now.toISOString(),
      deadline: deadline.toISOString(),
      expires: expires.toISOString(),
      routes: [indexRoute(revisionNamespace(this.config.indexPrefix, name, revision))],
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
        source: `${p.repository}/rev/${revision}`,
      },
      tags: { kind: 'mozharness-archive', createdBy: 'lookup-service' },
      extra: { index: { rank: 0 } },
    };
    return def;
  }

  private async submit(taskId: string, def: TaskDefinition): Promise<void> {
    const queue =
      this.deps.createQueue ?? (this.deps.queue as unknown as Pick<QueueClient, 'createTask'>);
    try {
      await queue.createTask(taskId, def);
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode;
      throw new ArchiveError(
        status && status < 500 ? 'not-allowed' : 'unavailable',
        `creating the archive task failed${status ? ` (${status})` : ''}: ${errorMessage(e)}`,
      );
    }
  }

  private async taskExists(taskId: string): Promise<boolean> {
    const queue = this.deps.createQueue ?? this.deps.queue;
    try {
      await queue.task(taskId);
      return true;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return false;
      throw new ArchiveError(
        'unavailable',
        `queue lookup of task ${taskId} failed: ${errorMessage(e)}`,
      );
    }
  }

  /** The one archive task of (project, revision): existing, or created now. */
  async ensureBuild(
    name: string,
    revision: string,
    opts: { replaceFailed?: string } = {},
  ): Promise<{ taskId: string; created: boolean }> {
    const p = this.project(name);
    return this.once(`build:${name}:${revision}`, async () => {
      let rec = this.store.get(name, revision);
      if (rec && opts.replaceFailed && rec.taskId === opts.replaceFailed) {
        const def = this.definition(name, p, revision);
        const taskId = slugid();
        if (this.store.replace(rec.taskId, taskId, JSON.stringify(def), def.created)) {
          this.log.info('lookup.build-retry', {
            project: name,
            revision,
            failed: rec.taskId,
            taskId,
          });
        }
        rec = this.store.get(name, revision)!;
      }
      if (rec?.submitted) return { taskId: rec.taskId, created: false };
      if (!rec) {
        const def = this.definition(name, p, revision);
        rec = this.store.claim(name, revision, slugid(), JSON.stringify(def), def.created);
        if (rec.submitted) return { taskId: rec.taskId, created: false };
      } else if (await this.taskExists(rec.taskId)) {
        // created before a restart, not yet recorded as submitted
        this.store.submitted(rec.taskId);
        return { taskId: rec.taskId, created: false };
      } else {
        // never reached the queue: same task id, fresh timestamps
        const def = this.definition(name, p, revision);
        this.store.update(rec.taskId, JSON.stringify(def));
        rec = { ...rec, definition: JSON.stringify(def) };
      }
      try {
        await this.submit(rec.taskId, JSON.parse(rec.definition));
      } catch (e) {
        this.store.forget(rec.taskId);
        throw e;
      }
      this.store.submitted(rec.taskId);
      this.log.info('lookup.build-created', { project: name, revision, taskId: rec.taskId });
      return { taskId: rec.taskId, created: true };
    });
  }

  /** Full revision for a not-indexed request, asking the repository at most once. */
  private async fullRevision(name: string, p: ProjectConfig, rev: string): Promise<string> {
    if (rev.length < 40) {
      const known = this.store.byPrefix(name, rev);
      if (known.length === 1) return known[0]!;
    } else if (this.store.get(name, rev)) {
      return rev;
    }
    const since = this.now() - this.config.unknownRevisionTtlSeconds * 1000;
    if (this.store.unknown(name, rev, since)) {
      throw new HttpError(404, `revision ${rev} is not in ${p.repository}`);
    }
    return this.once(`resolve:${name}:${rev}`, async () => {
      this.repositoryLookups[name] = (this.repositoryLookups[name] ?? 0) + 1;
      try {
        const full = await this.resolve(p, rev);
        if (!/^[0-9a-f]{40}$/.test(full)) {
          throw new ArchiveError(
            'internal',
            `the repository resolved ${rev} to ${JSON.stringify(full)}`,
          );
        }
        return full;
      } catch (e) {
        if (isArchiveError(e, 'not-found')) {
          this.store.markUnknown(name, rev, this.now());
          throw new HttpError(404, `revision ${rev} is not in ${p.repository}`);
        }
        throw e;
      }
    });
  }

  /** Task state → build status (completed with the archive, failed with the reason). */
  async buildStatus(taskId: string, statusPath = '/v1/status/'): Promise<BuildStatus> {
    if (!SLUGID_RE.test(taskId))
      throw new HttpError(400, `invalid task id ${JSON.stringify(taskId)}`);
    const cached = this.statuses.get(taskId);
    if (cached) return { ...cached, statusUrl: statusPath + taskId };
    return this.once(`status:${taskId}`, async () => {
      let status: any;
      try {
        status = (await this.deps.queue.status(taskId)).status;
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode === 404) {
          throw new HttpError(404, `no task ${taskId}`);
        }
        throw new ArchiveError(
          'unavailable',
          `queue status of ${taskId} failed: ${errorMessage(e)}`,
        );
      }
      const rec = this.store.byTask(taskId);
      const out: BuildStatus = { taskId, state: 'pending', statusUrl: statusPath + taskId };
      if (rec) {
        out.project = rec.project;
        out.revision = rec.revision;
      }
      const runs: any[] = status.runs ?? [];
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
          const found = await describeArchive(this.clients, {
            taskId,
            namespace: rec
              ? revisionNamespace(this.config.indexPrefix, rec.project, rec.revision)
              : '',
            expires: status.expires,
          });
          out.state = 'completed';
          out.url = found.objectUrl ?? found.url;
          out.sha256 = found.sha256;
          out.size = found.size;
          if (rec) this.found.delete(`rev:${rec.project}:${rec.revision}`);
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
        this.statuses.set(taskId, out, this.config.cache.hitTtlSeconds * 1000);
      }
      return out;
    });
  }

  // --- routes ----------------------------------------------------------------------------------

  private archiveAnswer(found: FoundArchive, json: boolean, cache: string): Answer {
    const headers = {
      'x-archive-sha256': found.sha256,
      'x-archive-size': String(found.size),
      'x-task-id': found.taskId,
      'x-archive-revision': found.revision,
      'cache-control': `public, max-age=${Math.floor(this.config.cache.hitTtlSeconds)}`,
    };
    const log = { taskId: found.taskId, cache };
    if (json) return { status: 200, headers, body: found, log };
    return {
      status: 302,
      headers: { ...headers, location: found.objectUrl ?? found.url },
      log,
    };
  }

  private async byRevision(
    name: string,
    rawRev: string,
    json: boolean,
    statusPath: string,
  ): Promise<Answer & { found?: FoundArchive; taskId?: string; revision?: string }> {
    const p = this.project(name);
    const rev = this.revision(rawRev);
    const { found, cache } = await this.lookup(`rev:${name}:${rev}`, () =>
      findArchive(this.clients, { project: name, revision: rev, prefix: this.config.indexPrefix }),
    );
    if (found) return { ...this.archiveAnswer(found, json, cache), found };
    if (!p.onDemand) {
      throw new HttpError(
        404,
        `no archive of ${name} revision ${rev} is indexed, and on-demand builds are off for ${name}`,
      );
    }
    const full = await this.fullRevision(name, p, rev);
    if (full !== rev) {
      // the full revision may be indexed even though the short one was not listed yet
      const again = await this.lookup(`rev:${name}:${full}`, () =>
        findArchive(this.clients, {
          project: name,
          revision: full,
          prefix: this.config.indexPrefix,
        }),
      );
      if (again.found)
        return { ...this.archiveAnswer(again.found, json, again.cache), found: again.found };
    }
    let { taskId, created } = await this.ensureBuild(name, full);
    let state: BuildState = 'pending';
    if (!created) {
      // an earlier request's task: report its state, and replace it once it failed long enough ago
      const s = await this.buildStatus(taskId, statusPath);
      state = s.state;
      const rec = this.store.byTask(taskId);
      const age = rec ? this.now() - Date.parse(rec.createdAt) : Infinity;
      if (s.state === 'failed' && age >= this.config.retryFailedAfterSeconds * 1000) {
        const failed = taskId;
        // a concurrent plain request may hold the single-flight slot: ask until replaced
        for (let i = 0; i < 5 && taskId === failed; i++) {
          ({ taskId, created } = await this.ensureBuild(name, full, { replaceFailed: failed }));
        }
        state = 'pending';
      }
    }
    const location = statusPath + taskId;
    return {
      status: 202,
      headers: { location, 'retry-after': '10', 'x-task-id': taskId, 'cache-control': 'no-store' },
      body: { state, taskId, project: name, revision: full, statusUrl: location },
      log: { taskId, created, cache },
      taskId,
      revision: full,
    };
  }

  private legacyProject(repoPath: string): [string, ProjectConfig] {
    const clean = repoPath.replace(/^\/+|\/+$/g, '');
    for (const [name, p] of Object.entries(this.config.projects)) {
      if (p.legacyPath === clean) return [name, p];
    }
    throw new HttpError(
      400,
      `unknown repository ${JSON.stringify(clean)}; configured: ${Object.values(
        this.config.projects,
      )
        .map((p) => p.legacyPath)
        .join(', ')}`,
    );
  }

  private legacyStatus(s: BuildStatus): Record<string, unknown> {
    const rec = s.project ? this.config.projects[s.project] : undefined;
    const state =
      s.state === 'pending'
        ? 'PENDING'
        : s.state === 'running'
          ? 'STARTED'
          : s.state === 'completed'
            ? 'SUCCESS'
            : 'FAILURE';
    return {
      state,
      status:
        s.state === 'completed'
          ? `Task completed! Archive is at ${s.url}`
          : s.state === 'failed'
            ? `Task failed: ${s.reason}`
            : s.state === 'running'
              ? 'Task is running'
              : 'Task is pending',
      src_url:
        rec && s.revision ? `${rec.repository}/archive/${s.revision}.tar.gz/${rec.subdir}` : null,
      s3_urls: s.state === 'completed' && s.url ? { [this.config.legacyRegion]: s.url } : {},
      ...(s.sha256 ? { sha256: s.sha256, size: s.size } : {}),
      taskId: s.taskId,
    };
  }

  async route(method: string, url: URL, accept: string): Promise<Answer> {
    if (method !== 'GET' && method !== 'HEAD') {
      throw new HttpError(405, `method ${method} not allowed`, { allow: 'GET, HEAD' });
    }
    const json = url.searchParams.get('format') === 'json' || /\bapplication\/json\b/.test(accept);
    const parts = url.pathname.split('/').filter((s, i) => i > 0 || s !== '');
    const seg = parts.map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new HttpError(400, `malformed path segment ${JSON.stringify(s)}`);
      }
    });
    if (url.pathname === '/__heartbeat__') {
      this.store.ping();
      return { status: 200, body: { status: 'ok', projects: Object.keys(this.config.projects) } };
    }
    if (url.pathname === '/__lbheartbeat__') return { status: 200, body: {} };
    if (seg[0] === 'v1') {
      if (seg.length === 4 && seg[2] === 'revision') {
        const a = await this.byRevision(seg[1]!, seg[3]!, json, '/v1/status/');
        return { ...a, log: { project: seg[1], ...a.log } };
      }
      if (seg.length === 3 && seg[2] === 'latest' && seg[1] !== 'digest' && seg[1] !== 'status') {
        const name = seg[1]!;
        this.project(name);
        const { found, cache } = await this.lookup(`latest:${name}`, () =>
          findArchive(this.clients, {
            project: name,
            latest: true,
            prefix: this.config.indexPrefix,
          }),
        );
        if (!found) throw new HttpError(404, `no archive of ${name} is indexed yet`);
        return this.archiveAnswer(found, json, cache);
      }
      if (seg.length === 3 && seg[1] === 'digest') {
        let digest: string;
        try {
          digest = checkDigest(seg[2]!);
        } catch (e) {
          throw new HttpError(400, errorMessage(e));
        }
        const project = Object.keys(this.config.projects)[0]!;
        const { found, cache } = await this.lookup(`digest:${digest}`, () =>
          findArchive(this.clients, { project, digest, prefix: this.config.indexPrefix }),
        );
        if (!found) throw new HttpError(404, `no archive with tree digest ${digest} is indexed`);
        return this.archiveAnswer(found, json, cache);
      }
      if (seg.length === 3 && seg[1] === 'status') {
        const s = await this.buildStatus(seg[2]!, '/v1/status/');
        return {
          status: 200,
          body: s,
          headers: { 'cache-control': 'no-store' },
          log: { taskId: s.taskId },
        };
      }
    }
    if (seg[0] === 'archiver') {
      if (seg[1] === 'hgmo' && seg.length >= 4) {
        const rev = seg[seg.length - 1]!;
        const [name, p] = this.legacyProject(seg.slice(2, -1).join('/'));
        const subdir = url.searchParams.get('subdir');
        const suffix = url.searchParams.get('suffix') ?? 'tar.gz';
        if (subdir !== null && subdir.replace(/^\/+|\/+$/g, '') !== p.subdir) {
          throw new HttpError(
            400,
            `subdir ${JSON.stringify(subdir)} is not archived for ${p.legacyPath}; only ${p.subdir}`,
          );
        }
        if (suffix !== 'tar.gz') {
          throw new HttpError(
            400,
            `suffix ${JSON.stringify(suffix)} is not supported; only tar.gz`,
          );
        }
        const a = await this.byRevision(name, rev, false, '/archiver/status/');
        if (a.status === 202) {
          const s = await this.buildStatus(a.taskId!, '/archiver/status/');
          return { ...a, body: this.legacyStatus(s) };
        }
        return { ...a, log: { project: name, ...a.log } };
      }
      if (seg[1] === 'status' && seg.length === 3) {
        const s = await this.buildStatus(seg[2]!, '/archiver/status/');
        return {
          status: 200,
          body: this.legacyStatus(s),
          headers: { 'cache-control': 'no-store' },
          log: { taskId: s.taskId },
        };
      }
    }
    throw new HttpError(404, `no route for ${url.pathname}`);
  }

  /** node:http request handler. */
  handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://lookup.invalid');
    } catch {
      url = new URL('http://lookup.invalid/');
    }
    const finish = (a: Answer) => {
      const body =
        a.body === undefined
          ? a.status >= 300 && a.status < 400
            ? ''
            : JSON.stringify({})
          : JSON.stringify(a.body, null, 0);
      const headers: Record<string, string> = { ...a.headers };
      if (body) {
        headers['content-type'] = 'application/json; charset=utf-8';
        headers['content-length'] = String(Buffer.byteLength(body));
      } else headers['content-length'] = '0';
      res.writeHead(a.status, headers);
      res.end(method === 'HEAD' ? undefined : body);
      this.log.info('lookup.request', {
        method,
        path: url.pathname,
        status: a.status,
        ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        ...a.log,
      });
    };
    this.route(method, url, String(req.headers.accept ?? '')).then(finish, (e) => {
      if (e instanceof HttpError) {
        finish({
          status: e.status,
          headers: e.headers,
          body: { error: e.message },
          log: { error: e.message },
        });
        return;
      }
      const code = isArchiveError(e) ? e.code : 'internal';
      const status =
        code === 'usage'
          ? 400
          : code === 'not-found'
            ? 404
            : code === 'unavailable'
              ? 503
              : code === 'not-allowed' || code === 'corrupt'
                ? 502
                : 500;
      finish({
        status,
        headers: status === 503 ? { 'retry-after': '30' } : {},
        body: { error: errorMessage(e), code },
        log: { error: errorMessage(e), code },
      });
    });
  };

  /** Listen on 127.0.0.1:`port` (0 = any); returns the base URL. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    const server = http.createServer(this.handle);
    server.keepAliveTimeout = 65_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    return `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) {
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections?.();
      });
    }
    this.store.close();
  }

  /** Drop cached lookups (tests, or after a promotion). */
  clearCache(): void {
    this.found.clear();
    this.statuses.clear();
  }
}

export function createLookupService(config: LookupConfig, deps: LookupDeps): LookupService {
  return new LookupService(config, deps);
}
