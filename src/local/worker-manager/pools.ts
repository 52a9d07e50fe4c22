// Worker pools, as upstream's worker-manager api.js: create (only for the `static` provider;
// the same definition again is accepted, another one is a 409), read, list, and delete (the
// pool passes to `null-provider`, as upstream).
import { ApiError, type Handler, type RequestContext } from '../framework.js';
import { pageOf } from '../paging.js';
import { validateRequest } from '../queue-validate.js';
import {
  NULL_PROVIDER_ID,
  PROVIDERS,
  STATIC_PROVIDER_ID,
  type PoolRow,
  type WorkerManagerStore,
} from './store.js';

interface PoolInput {
  providerId: string;
  description: string;
  config: Record<string, unknown>;
  owner: string;
  emailOnError: boolean;
}

export function poolHandlers(store: WorkerManagerStore): Record<string, Handler> {
  return {
    listProviders: () => {
      const providers = PROVIDERS.map((providerId) => ({ providerId, providerType: providerId }));
      return { body: { providers } };
    },
    createWorkerPool: (ctx) => ({ body: createWorkerPool(store, ctx) }),
    workerPool: (ctx) => ({ body: store.serializePool(store.pool(ctx.params.workerPoolId!)) }),
    deleteWorkerPool: (ctx) => ({ body: deleteWorkerPool(store, ctx) }),
    listWorkerPools: (ctx) => ({ body: listWorkerPools(store, ctx) }),
  };
}

function samePool(existing: PoolRow, input: PoolInput): boolean {
  return (
    existing.provider_id === input.providerId &&
    existing.description === input.description &&
    existing.config === JSON.stringify(input.config) &&
    existing.owner === input.owner &&
    !!existing.email_on_error === input.emailOnError
  );
}

function createWorkerPool(store: WorkerManagerStore, ctx: RequestContext) {
  const workerPoolId = ctx.params.workerPoolId!;
  const input = validateRequest<PoolInput>('worker-manager/create-worker-pool-request', ctx.body);
  ctx.authorize({ providerId: input.providerId });
  if (input.providerId !== STATIC_PROVIDER_ID) {
    throw new ApiError('InputError', 'Invalid Provider', {
      providerId: input.providerId,
      validProviderIds: [STATIC_PROVIDER_ID],
    });
  }
  validateRequest('worker-manager/static-config', input.config);
  const existing = store.findPool(workerPoolId);
  if (existing) {
    if (!samePool(existing, input)) {
      throw new ApiError('RequestConflict', 'Worker pool already exists');
    }
    return store.serializePool(existing);
  }
  const now = store.now().toISOString();
  store.db
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
  return store.serializePool(store.pool(workerPoolId));
}

function deleteWorkerPool(store: WorkerManagerStore, ctx: RequestContext) {
  const row = store.pool(ctx.params.workerPoolId!);
  const previous = JSON.parse(row.previous_provider_ids) as string[];
  if (row.provider_id !== NULL_PROVIDER_ID && !previous.includes(row.provider_id)) {
    previous.push(row.provider_id);
  }
  store.db
    .prepare(
      `UPDATE wm_worker_pools SET provider_id = ?, previous_provider_ids = ?, last_modified = ?
       WHERE worker_pool_id = ?`,
    )
    .run(NULL_PROVIDER_ID, JSON.stringify(previous), store.now().toISOString(), row.worker_pool_id);
  return store.serializePool(store.pool(row.worker_pool_id));
}

function listWorkerPools(store: WorkerManagerStore, ctx: RequestContext) {
  const page = pageOf(
    ctx.query,
    (limit, offset) =>
      store.db
        .prepare('SELECT * FROM wm_worker_pools ORDER BY worker_pool_id LIMIT ? OFFSET ?')
        .all(limit, offset) as PoolRow[],
  );
  return {
    workerPools: page.rows.map((r) => store.serializePool(r)),
    ...(page.continuationToken ? { continuationToken: page.continuationToken } : {}),
  };
}
