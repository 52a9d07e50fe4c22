// Workers of a static pool, as upstream's worker-manager api.js: an administrator creates one
// with its static secret (running at once), reads, lists (by state, paged) and removes it; the
// worker reports its own errors to its pool.
import slugid from 'slugid';
import type { WorkerErrorReport } from '../../taskcluster/types.js';
import { ApiError, type Handler, type RequestContext } from '../framework.js';
import { pageOf } from '../paging.js';
import { validateRequest } from '../queue-validate.js';
import {
  serializeWorker,
  STATIC_PROVIDER_ID,
  type WorkerManagerStore,
  type WorkerRow,
} from './store.js';

export function workerHandlers(store: WorkerManagerStore): Record<string, Handler> {
  return {
    createWorker: (ctx) => ({ body: createWorker(store, ctx) }),
    worker: (ctx) => ({ body: serializeWorker(store.worker(ctx.params)) }),
    removeWorker: (ctx) => ({ body: removeWorker(store, ctx) }),
    listWorkersForWorkerPool: (ctx) => ({ body: listWorkers(store, ctx) }),
    reportWorkerError: (ctx) => ({ body: reportWorkerError(store, ctx) }),
  };
}

function createWorker(store: WorkerManagerStore, ctx: RequestContext) {
  const p = ctx.params;
  const input = validateRequest<{
    expires: string;
    capacity?: number;
    providerInfo?: { staticSecret: string };
  }>('worker-manager/create-worker-request', ctx.body);
  const pool = store.pool(p.workerPoolId!, `Worker pool ${p.workerPoolId} does not exist`);
  if (new Date(input.expires) < store.now()) {
    throw new ApiError('InputError', 'worker.expires must be in the future');
  }
  if (pool.provider_id !== STATIC_PROVIDER_ID) {
    throw new ApiError('InputError', 'not supported for this provider');
  }
  const staticSecret = input.providerInfo?.staticSecret;
  if (!staticSecret) throw new ApiError('InputError', 'no worker staticSecret provided');
  const existing = store.findWorker(p);
  // as upstream, creating an existing worker again answers it unchanged
  if (existing) return serializeWorker(existing);
  const now = store.now().toISOString();
  store.db
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
  return serializeWorker(store.worker(p));
}

function removeWorker(store: WorkerManagerStore, ctx: RequestContext): Record<string, never> {
  const w = store.worker(ctx.params);
  store.db
    .prepare(
      `UPDATE wm_workers SET state = 'stopped', last_modified = ?
       WHERE worker_pool_id = ? AND worker_group = ? AND worker_id = ?`,
    )
    .run(store.now().toISOString(), w.worker_pool_id, w.worker_group, w.worker_id);
  return {};
}

function listWorkers(store: WorkerManagerStore, ctx: RequestContext) {
  const workerPoolId = ctx.params.workerPoolId!;
  store.pool(workerPoolId, 'Worker Pool does not exist');
  const state = ctx.query.state;
  if (state !== undefined && !/^(requested|running|stopping|stopped|standalone)$/.test(state)) {
    throw new ApiError('InvalidRequestArguments', `query parameter state '${state}' is invalid`);
  }
  const page = pageOf(
    ctx.query,
    (limit, offset) =>
      store.db
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

function reportWorkerError(store: WorkerManagerStore, ctx: RequestContext) {
  const input = validateRequest<WorkerErrorReport>(
    'worker-manager/report-worker-error-request',
    ctx.body,
  );
  ctx.authorize({ workerGroup: input.workerGroup, workerId: input.workerId });
  const pool = store.pool(ctx.params.workerPoolId!);
  const error = {
    errorId: slugid.v4(),
    workerPoolId: pool.worker_pool_id,
    reported: store.now().toISOString(),
    kind: input.kind,
    title: input.title,
    description: input.description,
    extra: { ...input.extra, workerGroup: input.workerGroup, workerId: input.workerId },
  };
  store.db
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
