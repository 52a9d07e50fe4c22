// The embedded Index service (upstream services/index): a dot-separated hierarchy of namespaces
// holding the best-ranked task per index path. `insertTask` replaces an entry when the new rank is
// greater than or equal to the old one (ties: newest wins) and otherwise still answers 200 with
// the existing entry; parent namespaces are created and their expiry extended (rounded up to the
// next day). When a task completes, every `index.<namespace>` route is indexed with
// rank/data/expires from `task.extra.index`, exactly like upstream's route handler.
import { decodeToken, encodeToken, pageSize } from './paging.js';
import { satisfiesExpression } from 'taskcluster-lib-scopes';
import type { TaskDefinition } from '../taskcluster/types.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import {
  ApiError,
  type Handler,
  type HandlerResult,
  type RequestContext,
  type Service,
  type ServiceDeps,
} from './framework.js';

/** Upstream `namespaceFormat` (services/index/src/helpers.js). */
const NAMESPACE_FORMAT = /^([a-zA-Z0-9_!~*'()%-]+\.)*[a-zA-Z0-9_!~*'()%-]+$/;
/** Response schemas declare `namespace` with maxLength 255. */
const MAX_NAMESPACE_LENGTH = 255;
const SLUGID = /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;
const MAX_DATA_BYTES = 32 * 1024;

export interface IndexEntry {
  namespace: string;
  taskId: string;
  rank: number;
  data: Record<string, unknown>;
  expires: string;
}

interface TaskRow {
  namespace: string;
  name: string;
  rank: number;
  task_id: string;
  data: string;
  expires: string;
}

interface NamespaceRow {
  parent: string;
  name: string;
  expires: string;
}

function split(path: string): [string, string] {
  const i = path.lastIndexOf('.');
  return i < 0 ? ['', path] : [path.slice(0, i), path.slice(i + 1)];
}

function join(parent: string, name: string): string {
  return parent ? `${parent}.${name}` : name;
}

function checkNamespace(namespace: string, what = 'namespace'): void {
  if (!NAMESPACE_FORMAT.test(namespace)) {
    throw new ApiError(
      'InvalidRequestArguments',
      `${what} '${namespace}' is not a valid index namespace: dot-separated, non-empty segments ` +
        "of [a-zA-Z0-9_!~*'()%-]",
    );
  }
  if (namespace.length > MAX_NAMESPACE_LENGTH) {
    throw new ApiError(
      'InvalidRequestArguments',
      `${what} is ${namespace.length} characters long; at most ${MAX_NAMESPACE_LENGTH} are allowed`,
    );
  }
}

function isoDate(v: unknown, what: string): string {
  const d = typeof v === 'string' || v instanceof Date ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) {
    throw new ApiError('InputValidationError', `${what} must be a date-time`);
  }
  return d.toISOString();
}

/** Round up to the next UTC day (upstream extends namespace expiry like this). */
function nextDay(iso: string): string {
  const d = new Date(iso);
  d.setUTCHours(0, 0, 0, 0);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString();
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS index_namespaces (
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    expires TEXT NOT NULL,
    PRIMARY KEY (parent, name)
  );
  CREATE TABLE IF NOT EXISTS index_tasks (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    rank REAL NOT NULL,
    task_id TEXT NOT NULL,
    data TEXT NOT NULL,
    expires TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
  );
  CREATE INDEX IF NOT EXISTS index_tasks_expires ON index_tasks (expires);
  CREATE INDEX IF NOT EXISTS index_namespaces_expires ON index_namespaces (expires);
`;

/** The index paths of a findTasksAtIndex body (`{indexes: [...]}`, nothing else). */
function findTasksAtIndexInput(body: unknown): string[] {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b !== 'object' || Array.isArray(b)) {
    throw new ApiError('InputValidationError', 'the request body must be a JSON object');
  }
  const extra = Object.keys(b).filter((k) => k !== 'indexes');
  if (extra.length) {
    throw new ApiError('InputValidationError', `unexpected properties: ${extra.join(', ')}`);
  }
  const indexes = b.indexes ?? [];
  if (!Array.isArray(indexes) || !indexes.every((i: unknown) => typeof i === 'string')) {
    throw new ApiError('InputValidationError', 'indexes must be an array of index paths');
  }
  return indexes as string[];
}

export class IndexService implements Service {
  readonly name = 'index';
  readonly handlers: Record<string, Handler>;
  private readonly log: Logger;

  constructor(
    private readonly deps: ServiceDeps & {
      log?: Logger;
      /** Sign a GET URL (bewit) for artifact redirects anonymous callers may not read. */
      signUrl?: (url: string, ttlSec: number) => string;
      /** Scopes of unauthenticated callers (to decide whether a redirect needs signing). */
      anonymousScopes?: () => string[];
    },
  ) {
    this.log = deps.log ?? silentLogger;
    deps.db.exec(SCHEMA);
    this.handlers = {
      findTask: (ctx) => ({ body: this.mustFind(ctx.params.indexPath!) }),
      insertTask: (ctx) => {
        const namespace = ctx.params.namespace!;
        return { body: this.insert(namespace, this.insertBody(ctx.body)) };
      },
      deleteTask: (ctx) => this.deleteTask(ctx),
      listNamespaces: (ctx) => this.listNamespaces(ctx),
      listTasks: (ctx) => this.listTasks(ctx),
      findTasksAtIndex: (ctx) => this.findTasksAtIndex(ctx),
      findArtifactFromTask: (ctx) => this.findArtifactFromTask(ctx),
    };
  }

  private mustFind(path: string): IndexEntry {
    const found = this.find(path);
    if (!found) throw new ApiError('ResourceNotFound', `no task indexed at '${path}'`);
    return found;
  }

  private deleteTask(ctx: RequestContext): HandlerResult {
    const namespace = ctx.params.namespace!;
    checkNamespace(namespace);
    const [parent, name] = split(namespace);
    this.deps.db
      .prepare('DELETE FROM index_tasks WHERE namespace = ? AND name = ?')
      .run(parent, name);
    return { body: {} };
  }

  private listNamespaces(ctx: RequestContext): HandlerResult {
    const namespace = ctx.params.namespace ?? '';
    if (namespace) checkNamespace(namespace);
    const { page, continuationToken } = this.page<NamespaceRow>(
      'SELECT * FROM index_namespaces WHERE parent = ?',
      namespace,
      ctx,
    );
    const out: Record<string, unknown> = {
      namespaces: page.map((r) => ({
        namespace: join(r.parent, r.name),
        name: r.name,
        expires: r.expires,
      })),
    };
    if (continuationToken) out.continuationToken = continuationToken;
    return { body: out };
  }

  private listTasks(ctx: RequestContext): HandlerResult {
    const namespace = ctx.params.namespace ?? '';
    if (namespace) checkNamespace(namespace);
    const { page, continuationToken } = this.page<TaskRow>(
      'SELECT * FROM index_tasks WHERE namespace = ?',
      namespace,
      ctx,
    );
    const out: Record<string, unknown> = { tasks: page.map((r) => this.entry(r)) };
    if (continuationToken) out.continuationToken = continuationToken;
    return { body: out };
  }

  private findTasksAtIndex(ctx: RequestContext): HandlerResult {
    const indexes = findTasksAtIndexInput(ctx.body);
    ctx.authorize({ indexPaths: indexes });
    const limit = pageSize(ctx.query);
    const afterRaw = decodeToken<string>(ctx.query.continuationToken, 'string');
    let start = 0;
    if (afterRaw !== undefined) {
      start = Number(afterRaw);
      if (!Number.isInteger(start) || start < 0) {
        throw new ApiError('InvalidRequestArguments', 'invalid continuationToken');
      }
    }
    const tasks: IndexEntry[] = [];
    let i = start;
    for (; i < indexes.length && tasks.length < limit; i++) {
      const found = NAMESPACE_FORMAT.test(indexes[i]!) ? this.find(indexes[i]!) : undefined;
      if (found) tasks.push(found);
    }
    const out: Record<string, unknown> = { tasks };
    if (i < indexes.length) out.continuationToken = encodeToken(String(i));
    return { body: out };
  }

  /** A 303 to the artifact on the queue, signed when anonymous callers may not read it. */
  private findArtifactFromTask(ctx: RequestContext): HandlerResult {
    const name = ctx.params.name!;
    const found = this.mustFind(ctx.params.indexPath!);
    let url =
      `${ctx.rootUrl}/api/queue/v1/task/${encodeURIComponent(found.taskId)}` +
      `/artifacts/${encodeURIComponent(name)}`;
    const anonymous = this.deps.anonymousScopes?.() ?? [];
    if (!satisfiesExpression(anonymous, `queue:get-artifact:${name}`) && this.deps.signUrl) {
      url = this.deps.signUrl(url, 15 * 60);
    }
    return { status: 303, headers: { location: url } };
  }

  /**
   * One page of unexpired rows under a namespace, by name: `select` picks the rows of one parent
   * (`… WHERE <parent column> = ?`); paging continues after the last name returned.
   */
  private page<Row extends { name: string }>(
    select: string,
    namespace: string,
    ctx: RequestContext,
  ): { page: Row[]; continuationToken?: string } {
    const limit = pageSize(ctx.query);
    const after = decodeToken<string>(ctx.query.continuationToken, 'string');
    const rows = this.deps.db
      .prepare(`${select} AND expires > ? AND name > ? ORDER BY name LIMIT ?`)
      .all(namespace, this.now(), after ?? '', limit + 1) as Row[];
    const page = rows.slice(0, limit);
    return rows.length > limit
      ? { page, continuationToken: encodeToken(page[page.length - 1]!.name) }
      : { page };
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }

  private entry(r: TaskRow): IndexEntry {
    return {
      namespace: join(r.namespace, r.name),
      taskId: r.task_id,
      rank: r.rank,
      data: JSON.parse(r.data),
      expires: r.expires,
    };
  }

  private insertBody(b: unknown): {
    taskId: string;
    rank: number;
    data: Record<string, unknown>;
    expires: string;
  } {
    if (typeof b !== 'object' || b === null || Array.isArray(b)) {
      throw new ApiError('InputValidationError', 'the request body must be a JSON object');
    }
    const o = b as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => !['taskId', 'rank', 'data', 'expires'].includes(k));
    if (extra.length) {
      throw new ApiError('InputValidationError', `unexpected properties: ${extra.join(', ')}`);
    }
    if (typeof o.taskId !== 'string' || !SLUGID.test(o.taskId)) {
      throw new ApiError('InputValidationError', 'taskId must be a slugid');
    }
    if (typeof o.rank !== 'number' || !Number.isFinite(o.rank)) {
      throw new ApiError('InputValidationError', 'rank must be a number');
    }
    if (typeof o.data !== 'object' || o.data === null || Array.isArray(o.data)) {
      throw new ApiError('InputValidationError', 'data must be a JSON object');
    }
    return {
      taskId: o.taskId,
      rank: o.rank,
      data: o.data as Record<string, unknown>,
      expires: isoDate(o.expires, 'expires'),
    };
  }

  /** The entry at an index path, unless missing or expired. */
  find(indexPath: string): IndexEntry | undefined {
    if (!NAMESPACE_FORMAT.test(indexPath)) return undefined;
    const [parent, name] = split(indexPath);
    const row = this.deps.db
      .prepare('SELECT * FROM index_tasks WHERE namespace = ? AND name = ? AND expires > ?')
      .get(parent, name, this.now()) as TaskRow | undefined;
    return row ? this.entry(row) : undefined;
  }

  /**
   * Insert with upstream rank semantics: replaced when `existing.rank <= rank`; otherwise the
   * existing entry stays and is returned. Expired entries count as absent.
   */
  insert(
    namespace: string,
    input: { taskId: string; rank: number; data: Record<string, unknown>; expires: string | Date },
  ): IndexEntry {
    checkNamespace(namespace);
    const expires = isoDate(input.expires, 'expires');
    const data = JSON.stringify(input.data ?? {});
    if (Buffer.byteLength(data) > MAX_DATA_BYTES) {
      throw new ApiError('InputTooLarge', `index data exceeds ${MAX_DATA_BYTES} bytes`);
    }
    const [parent, name] = split(namespace);
    const db = this.deps.db;
    const now = this.now();
    return db.transaction(() => {
      const existing = db
        .prepare('SELECT * FROM index_tasks WHERE namespace = ? AND name = ?')
        .get(parent, name) as TaskRow | undefined;
      if (existing && existing.expires > now && existing.rank > input.rank) {
        return this.entry(existing);
      }
      db.prepare(
        `INSERT INTO index_tasks (namespace, name, rank, task_id, data, expires)
          VALUES (?, ?, ?, ?, ?, ?)
          ON CONFLICT(namespace, name) DO UPDATE SET rank = excluded.rank,
            task_id = excluded.task_id, data = excluded.data, expires = excluded.expires`,
      ).run(parent, name, input.rank, input.taskId, data, expires);
      // create/extend every parent namespace
      const nsExpires = nextDay(expires);
      const parts = parent ? parent.split('.') : [];
      for (let i = 0; i < parts.length; i++) {
        const p = parts.slice(0, i).join('.');
        db.prepare(
          `INSERT INTO index_namespaces (parent, name, expires) VALUES (?, ?, ?)
            ON CONFLICT(parent, name) DO UPDATE SET expires = max(expires, excluded.expires)`,
        ).run(p, parts[i], nsExpires);
      }
      return this.entry(
        db
          .prepare('SELECT * FROM index_tasks WHERE namespace = ? AND name = ?')
          .get(parent, name) as TaskRow,
      );
    })();
  }

  /**
   * Upstream's route handler: when a task completes, index it under every `index.<namespace>`
   * route with `task.extra.index` rank (default 0), data (default {}) and expires (default
   * task.expires). A non-number rank or non-object data aborts indexing of that task.
   * Wire this as the queue's `QueueEvents.onTaskCompleted`.
   */
  indexTaskOnCompletion(
    taskId: string,
    task: Pick<TaskDefinition, 'routes' | 'expires' | 'extra'>,
  ): IndexEntry[] {
    const routes: string[] = Array.isArray(task.routes) ? task.routes : [];
    const namespaces = routes
      .filter((r) => typeof r === 'string' && r.startsWith('index.'))
      .map((r) => r.slice('index.'.length))
      .filter((ns) => {
        const ok = NAMESPACE_FORMAT.test(ns) && ns.length <= MAX_NAMESPACE_LENGTH;
        if (!ok) this.log.warn('index-route-invalid', { taskId, namespace: ns });
        return ok;
      });
    if (namespaces.length === 0) return [];
    const opts = ((task.extra && typeof task.extra === 'object' ? task.extra.index : undefined) ??
      {}) as { rank?: unknown; data?: unknown; expires?: unknown };
    const rank = opts.rank ?? 0;
    const data = opts.data ?? {};
    if (typeof rank !== 'number' || !Number.isFinite(rank)) {
      this.log.warn('index-rank-invalid', { taskId, rank });
      return [];
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      this.log.warn('index-data-invalid', { taskId });
      return [];
    }
    let expires: string;
    try {
      expires = isoDate(opts.expires ?? task.expires, 'extra.index.expires');
    } catch {
      this.log.warn('index-expires-invalid', { taskId });
      return [];
    }
    const out: IndexEntry[] = [];
    for (const ns of namespaces) {
      try {
        out.push(this.insert(ns, { taskId, rank, data: data as Record<string, unknown>, expires }));
      } catch (e) {
        this.log.warn('index-insert-failed', { taskId, namespace: ns, error: e });
      }
    }
    this.log.debug('task-indexed', { taskId, namespaces });
    return out;
  }

  /** Drop expired entries and namespaces. */
  sweep(): void {
    const now = this.now();
    this.deps.db.prepare('DELETE FROM index_tasks WHERE expires <= ?').run(now);
    this.deps.db.prepare('DELETE FROM index_namespaces WHERE expires <= ?').run(now);
  }
}
