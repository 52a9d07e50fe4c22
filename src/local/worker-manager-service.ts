// The embedded Worker Manager: the `static` provider's subset of upstream's worker-manager
// (services/worker-manager/src/api.js, providers/static.js). A worker pool with providerId
// `static` holds workers created by an administrator with a 44-character secret; a worker trades
// that secret (registerWorker, no credentials needed) for temporary credentials named
// `worker/static/<pool>/<group>/<id>` and a one-time reregistration secret, then renews them with
// reregisterWorker (each renewal issues a new secret and refuses the previous one). removeWorker
// stops it; deleteWorkerPool hands the pool to `null-provider`, as upstream. Methods whose scope
// expression uses only URL parameters are authorized by the framework before the handler runs;
// the others call `ctx.authorize(params)` with the values from the body.
import crypto from 'node:crypto';
import slugid from 'slugid';
import type { Database } from './db.js';
import {
  ApiError,
  type Clock,
  type Handler,
  type IssueCredentials,
  type RequestContext,
  type Service,
  type ServiceDeps,
} from './framework.js';
import { pageOf } from './paging.js';
import { validateRequest } from './queue-validate.js';

const STATIC_PROVIDER_ID = 'static';
const NULL_PROVIDER_ID = 'null-provider';
/** Upstream's default reregistrationTimeout: 96 hours (providers/provider.js interpretLifecycle). */
const DEFAULT_REREGISTRATION_TIMEOUT_S = 345600;
const PROVIDERS = [STATIC_PROVIDER_ID, NULL_PROVIDER_ID];

export interface WorkerManagerDeps extends ServiceDeps {
  issueCredentials: IssueCredentials;
}

interface PoolRow {
  worker_pool_id: string;
  provider_id: string;
  previous_provider_ids: string;
  description: string;
  config: string;
  owner: string;
  email_on_error: number;
  created: string;
  last_modified: string;
}

interface WorkerRow {
  worker_pool_id: string;
  worker_group: string;
  worker_id: string;
  provider_id: string;
  created: string;
  expires: string;
  state: string;
  capacity: number;
  static_secret: string;
  secret_hash: string | null;
  last_modified: string;
  last_checked: string;
}

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
const newSecret = () => `${slugid.nice()}${slugid.nice()}`;

function initTables(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS wm_worker_pools (
      worker_pool_id TEXT PRIMARY KEY,
      provider_id TEXT NOT NULL,
      previous_provider_ids TEXT NOT NULL,
      description TEXT NOT NULL,
      config TEXT NOT NULL,
      owner TEXT NOT NULL,
      email_on_error INTEGER NOT NULL,
      created TEXT NOT NULL,
      last_modified TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS wm_workers (
      worker_pool_id TEXT NOT NULL,
      worker_group TEXT NOT NULL,
      worker_id TEXT NOT NULL,
      provider_id TEXT NOT NULL,
      created TEXT NOT NULL,
      expires TEXT NOT NULL,
      state TEXT NOT NULL,
      capacity INTEGER NOT NULL,
      static_secret TEXT NOT NULL,
      secret_hash TEXT,
      last_modified TEXT NOT NULL,
      last_checked TEXT NOT NULL,
      PRIMARY KEY (worker_pool_id, worker_group, worker_id)
    );
    CREATE TABLE IF NOT EXISTS wm_worker_pool_errors (
      error_id TEXT PRIMARY KEY,
      worker_pool_id TEXT NOT NULL,
      reported TEXT NOT NULL,
      kind TEXT NOT NULL,
      title TEXT NOT NULL,
      description TEXT NOT NULL,
      extra TEXT NOT NULL
    );
  `);
}

/** The scopes of a registered worker's credentials (upstream's util.js createCredentials). */
function workerScopes(pool: string, group: string, id: string): string[] {
  const w = `${pool}/${group}/${id}`;
  return [
    `assume:worker-type:${pool}`,
    `assume:worker-pool:${pool}`,
    `assume:worker-id:${group}/${id}`,
    `queue:worker-id:${group}/${id}`,
    `secrets:get:worker-type:${pool}`,
    `secrets:get:worker-pool:${pool}`,
    `queue:claim-work:${pool}`,
    `worker-manager:remove-worker:${w}`,
    `worker-manager:reregister-worker:${w}`,
    `worker-manager:should-worker-terminate:${w}`,
  ];
}

export class WorkerManagerService implements Service {
  readonly name = 'worker-manager';
  readonly handlers: Partial<Record<string, Handler>>;
  private readonly db: Database;
  private readonly clock: Clock;

  constructor(private readonly deps: WorkerManagerDeps) {
    this.db = deps.db;
    this.clock = deps.clock;
    initTables(this.db);
    this.handlers = {
      listProviders: () => {
        const providers = PROVIDERS.map((providerId) => ({ providerId, providerType: providerId }));
        return { body: { providers } };
      },
      createWorkerPool: (ctx) => ({ body: this.createWorkerPool(ctx) }),
      workerPool: (ctx) => ({ body: this.serializePool(this.pool(ctx.params.workerPoolId!)) }),
      deleteWorkerPool: (ctx) => ({ body: this.deleteWorkerPool(ctx) }),
      listWorkerPools: (ctx) => ({ body: this.listWorkerPools(ctx) }),
      createWorker: (ctx) => ({ body: this.createWorker(ctx) }),
      worker: (ctx) => ({ body: serializeWorker(this.worker(ctx.params)) }),
      removeWorker: (ctx) => ({ body: this.removeWorker(ctx) }),
      listWorkersForWorkerPool: (ctx) => ({ body: this.listWorkers(ctx) }),
      registerWorker: (ctx) => ({ body: this.registerWorker(ctx) }),
      reregisterWorker: (ctx) => ({ body: this.reregisterWorker(ctx) }),
      reportWorkerError: (ctx) => ({ body: this.reportWorkerError(ctx) }),
    };
  }

  private now(): Date {
    return this.clock.now();
  }

  private findPool(workerPoolId: string): PoolRow | undefined {
    return this.db
      .prepare('SELECT * FROM wm_worker_pools WHERE worker_pool_id = ?')
      .get(workerPoolId) as PoolRow | undefined;
  }

  private pool(workerPoolId: string, message = 'Worker pool does not exist'): PoolRow {
    const row = this.findPool(workerPoolId);
    if (!row) throw new ApiError('ResourceNotFound', message);
    return row;
  }

  private findWorker(p: Record<string, string | undefined>): WorkerRow | undefined {
    return this.db
      .prepare(
        'SELECT * FROM wm_workers WHERE worker_pool_id = ? AND worker_group = ? AND worker_id = ?',
      )
      .get(p.workerPoolId, p.workerGroup, p.workerId) as WorkerRow | undefined;
  }

  private worker(p: Record<string, string | undefined>): WorkerRow {
    const row = this.findWorker(p);
    if (!row) throw new ApiError('ResourceNotFound', 'Worker not found');
    return row;
  }

  private serializePool(row: PoolRow): Record<string, unknown> {
    const counts = this.db
      .prepare(
        `SELECT state, COUNT(*) AS n, SUM(capacity) AS c FROM wm_workers
         WHERE worker_pool_id = ? GROUP BY state`,
      )
      .all(row.worker_pool_id) as Array<{ state: string; n: number; c: number }>;
    const count = (state: string) => counts.find((r) => r.state === state)?.n ?? 0;
    const capacity = (state: string) => counts.find((r) => r.state === state)?.c ?? 0;
    return {
      workerPoolId: row.worker_pool_id,
      providerId: row.provider_id,
      description: row.description,
      created: row.created,
      lastModified: row.last_modified,
      config: JSON.parse(row.config),
      owner: row.owner,
      emailOnError: !!row.email_on_error,
      currentCapacity: capacity('running'),
      requestedCount: count('requested'),
      runningCount: count('running'),
      stoppingCount: count('stopping'),
      stoppedCount: count('stopped'),
      requestedCapacity: capacity('requested'),
      runningCapacity: capacity('running'),
      stoppingCapacity: capacity('stopping'),
      stoppedCapacity: capacity('stopped'),
    };
  }

  private createWorkerPool(ctx: RequestContext): Record<string, unknown> {
    const workerPoolId = ctx.params.workerPoolId!;
    const input = validateRequest<{
      providerId: string;
      description: string;
      config: Record<string, unknown>;
      owner: string;
      emailOnError: boolean;
    }>('worker-manager/create-worker-pool-request', ctx.body);
    ctx.authorize({ providerId: input.providerId });
    if (input.providerId !== STATIC_PROVIDER_ID) {
      throw new ApiError('InputError', 'Invalid Provider', {
        providerId: input.providerId,
        validProviderIds: [STATIC_PROVIDER_ID],
      });
    }
    validateRequest('worker-manager/static-config', input.config);
    const existing = this.findPool(workerPoolId);
    if (existing) {
      const same =
        existing.provider_id === input.providerId &&
        existing.description === input.description &&
        existing.config === JSON.stringify(input.config) &&
        existing.owner === input.owner &&
        !!existing.email_on_error === input.emailOnError;
      if (!same) throw new ApiError('RequestConflict', 'Worker pool already exists');
      return this.serializePool(existing);
    }
    const now = this.now().toISOString();
    this.db
      .prepare(
        `INSERT INTO wm_worker_pools (worker_pool_id, provider_id, previous_provider_ids,
           description, config, owner, email_on_error, created, last_modified)
         VALUES (?, ?, '[]', ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        workerPoolId,
        input.providerId,
        input.description,
        JSON.stringify(input.config),
        input.owner,
        input.emailOnError ? 1 : 0,
        now,
        now,
      );
    return this.serializePool(this.pool(workerPoolId));
  }

  private deleteWorkerPool(ctx: RequestContext): Record<string, unknown> {
    const row = this.pool(ctx.params.workerPoolId!);
    const previous = JSON.parse(row.previous_provider_ids) as string[];
    if (row.provider_id !== NULL_PROVIDER_ID && !previous.includes(row.provider_id)) {
      previous.push(row.provider_id);
    }
    this.db
      .prepare(
        `UPDATE wm_worker_pools SET provider_id = ?, previous_provider_ids = ?, last_modified = ?
         WHERE worker_pool_id = ?`,
      )
      .run(
        NULL_PROVIDER_ID,
        JSON.stringify(previous),
        this.now().toISOString(),
        row.worker_pool_id,
      );
    return this.serializePool(this.pool(row.worker_pool_id));
  }

  private listWorkerPools(ctx: RequestContext): Record<string, unknown> {
    const page = pageOf(
      ctx.query,
      (limit, offset) =>
        this.db
          .prepare('SELECT * FROM wm_worker_pools ORDER BY worker_pool_id LIMIT ? OFFSET ?')
          .all(limit, offset) as PoolRow[],
    );
    return {
      workerPools: page.rows.map((r) => this.serializePool(r)),
      ...(page.continuationToken ? { continuationToken: page.continuationToken } : {}),
    };
  }

  private createWorker(ctx: RequestContext): Record<string, unknown> {
    const p = ctx.params;
    const input = validateRequest<{
      expires: string;
      capacity?: number;
      providerInfo?: { staticSecret: string };
    }>('worker-manager/create-worker-request', ctx.body);
    const pool = this.pool(p.workerPoolId!, `Worker pool ${p.workerPoolId} does not exist`);
    if (new Date(input.expires) < this.now()) {
      throw new ApiError('InputError', 'worker.expires must be in the future');
    }
    if (pool.provider_id !== STATIC_PROVIDER_ID) {
      throw new ApiError('InputError', 'not supported for this provider');
    }
    const staticSecret = input.providerInfo?.staticSecret;
    if (!staticSecret) throw new ApiError('InputError', 'no worker staticSecret provided');
    const existing = this.findWorker(p);
    // as upstream, creating an existing worker again answers it unchanged
    if (existing) return serializeWorker(existing);
    const now = this.now().toISOString();
    this.db
      .prepare(
        `INSERT INTO wm_workers (worker_pool_id, worker_group, worker_id, provider_id, created,
           expires, state, capacity, static_secret, secret_hash, last_modified, last_checked)
         VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, NULL, ?, ?)`,
      )
      .run(
        p.workerPoolId,
        p.workerGroup,
        p.workerId,
        pool.provider_id,
        now,
        new Date(input.expires).toISOString(),
        input.capacity ?? 1,
        staticSecret,
        now,
        now,
      );
    return serializeWorker(this.worker(p));
  }

  private removeWorker(ctx: RequestContext): Record<string, never> {
    const w = this.worker(ctx.params);
    this.db
      .prepare(
        `UPDATE wm_workers SET state = 'stopped', last_modified = ?
         WHERE worker_pool_id = ? AND worker_group = ? AND worker_id = ?`,
      )
      .run(this.now().toISOString(), w.worker_pool_id, w.worker_group, w.worker_id);
    return {};
  }

  private listWorkers(ctx: RequestContext): Record<string, unknown> {
    const workerPoolId = ctx.params.workerPoolId!;
    this.pool(workerPoolId, 'Worker Pool does not exist');
    const state = ctx.query.state;
    if (state !== undefined && !/^(requested|running|stopping|stopped|standalone)$/.test(state)) {
      throw new ApiError('InvalidRequestArguments', `query parameter state '${state}' is invalid`);
    }
    const page = pageOf(
      ctx.query,
      (limit, offset) =>
        this.db
          .prepare(
            `SELECT * FROM wm_workers WHERE worker_pool_id = ? AND (? IS NULL OR state = ?)
           ORDER BY worker_group, worker_id LIMIT ? OFFSET ?`,
          )
          .all(workerPoolId, state ?? null, state ?? null, limit, offset) as WorkerRow[],
    );
    return {
      workers: page.rows.map(serializeWorker),
      ...(page.continuationToken ? { continuationToken: page.continuationToken } : {}),
    };
  }

  private credentialsFor(w: WorkerRow, expires: Date) {
    return this.deps.issueCredentials({
      clientId: `worker/${w.provider_id}/${w.worker_pool_id}/${w.worker_group}/${w.worker_id}`,
      scopes: workerScopes(w.worker_pool_id, w.worker_group, w.worker_id),
      start: new Date(this.now().getTime() - 15 * 60e3),
      expiry: expires,
    });
  }

  private storeSecret(w: WorkerRow, secret: string): void {
    this.db
      .prepare(
        `UPDATE wm_workers SET secret_hash = ?, last_modified = ?
         WHERE worker_pool_id = ? AND worker_group = ? AND worker_id = ?`,
      )
      .run(sha256(secret), this.now().toISOString(), w.worker_pool_id, w.worker_group, w.worker_id);
  }

  private registerWorker(ctx: RequestContext): Record<string, unknown> {
    const input = validateRequest<{
      workerPoolId: string;
      providerId: string;
      workerGroup: string;
      workerId: string;
      workerIdentityProof: { staticSecret: string };
    }>('worker-manager/register-worker-request', ctx.body);
    const { workerPoolId, providerId, workerGroup, workerId } = input;
    const pool = this.pool(workerPoolId, `Worker pool ${workerPoolId} does not exist`);
    if (!PROVIDERS.includes(providerId)) {
      throw new ApiError('ResourceNotFound', `Provider ${providerId} does not exist`);
    }
    const previous = JSON.parse(pool.previous_provider_ids) as string[];
    if (pool.provider_id !== providerId && !previous.includes(providerId)) {
      throw new ApiError(
        'InputError',
        `Worker pool ${workerPoolId} not associated with provider ${providerId}`,
      );
    }
    const w = this.findWorker({ workerPoolId, workerGroup, workerId });
    if (!w) {
      throw new ApiError(
        'ResourceNotFound',
        `Worker ${workerGroup}/${workerId} in worker pool ${workerPoolId} does not exist`,
      );
    }
    if (new Date(w.expires) < this.now()) {
      throw new ApiError('InputError', `Worker ${workerGroup}/${workerId} has expired`);
    }
    if (w.provider_id !== providerId) {
      throw new ApiError(
        'InputError',
        `Worker ${workerGroup}/${workerId} does not have provider ${providerId}`,
      );
    }
    if (w.state !== 'running') throw new ApiError('InputError', 'worker is not running');
    if (!timingSafeEqual(input.workerIdentityProof.staticSecret, w.static_secret)) {
      throw new ApiError('InputError', 'bad staticSecret in workerIdentityProof');
    }
    const config = JSON.parse(pool.config) as {
      lifecycle?: { reregistrationTimeout?: number };
      workerConfig?: Record<string, unknown>;
    };
    const timeout = config.lifecycle?.reregistrationTimeout || DEFAULT_REREGISTRATION_TIMEOUT_S;
    const expires = new Date(this.now().getTime() + timeout * 1000);
    const secret = newSecret();
    this.storeSecret(w, secret);
    return {
      expires: expires.toISOString(),
      credentials: this.credentialsFor(w, expires),
      workerConfig: config.workerConfig ?? {},
      secret,
    };
  }

  private reregisterWorker(ctx: RequestContext): Record<string, unknown> {
    const input = validateRequest<{
      workerPoolId: string;
      workerGroup: string;
      workerId: string;
      secret: string;
    }>('worker-manager/reregister-worker-request', ctx.body);
    ctx.authorize(input);
    const refused = () =>
      new ApiError('InputError', 'Could not generate credentials for this secret');
    const w = this.findWorker(input);
    if (!w || !w.secret_hash || !timingSafeEqual(sha256(input.secret), w.secret_hash)) {
      throw refused();
    }
    const label = `${input.workerGroup}/${input.workerId}`;
    if (w.state !== 'running') throw new ApiError('InputError', `Worker ${label} is not running`);
    if (new Date(w.expires) < this.now()) {
      throw new ApiError('InputError', `Worker ${label} has expired`);
    }
    // as upstream's static provider: the renewal lasts the default 96 hours
    const expires = new Date(this.now().getTime() + DEFAULT_REREGISTRATION_TIMEOUT_S * 1000);
    const secret = newSecret();
    this.storeSecret(w, secret);
    return { expires: expires.toISOString(), credentials: this.credentialsFor(w, expires), secret };
  }

  private reportWorkerError(ctx: RequestContext): Record<string, unknown> {
    const input = validateRequest<{
      workerGroup: string;
      workerId: string;
      kind: string;
      title: string;
      description: string;
      extra: Record<string, unknown>;
    }>('worker-manager/report-worker-error-request', ctx.body);
    ctx.authorize({ workerGroup: input.workerGroup, workerId: input.workerId });
    const pool = this.pool(ctx.params.workerPoolId!);
    const error = {
      errorId: slugid.v4(),
      workerPoolId: pool.worker_pool_id,
      reported: this.now().toISOString(),
      kind: input.kind,
      title: input.title,
      description: input.description,
      extra: { ...input.extra, workerGroup: input.workerGroup, workerId: input.workerId },
    };
    this.db
      .prepare(
        `INSERT INTO wm_worker_pool_errors (error_id, worker_pool_id, reported, kind, title,
           description, extra) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        error.errorId,
        error.workerPoolId,
        error.reported,
        error.kind,
        error.title,
        error.description,
        JSON.stringify(error.extra),
      );
    return error;
  }
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function serializeWorker(w: WorkerRow): Record<string, unknown> {
  return {
    workerPoolId: w.worker_pool_id,
    workerGroup: w.worker_group,
    workerId: w.worker_id,
    providerId: w.provider_id,
    created: w.created,
    expires: w.expires,
    state: w.state,
    capacity: w.capacity,
    lastModified: w.last_modified,
    lastChecked: w.last_checked,
  };
}
