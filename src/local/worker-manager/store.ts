// The embedded Worker Manager's tables (worker pools, workers, worker-pool errors) and the reads
// and answers its methods share.
import crypto from 'node:crypto';
import type { Database } from '../db.js';
import { ApiError, type Clock } from '../framework.js';

export const STATIC_PROVIDER_ID = 'static';
export const NULL_PROVIDER_ID = 'null-provider';
export const PROVIDERS = [STATIC_PROVIDER_ID, NULL_PROVIDER_ID];

export interface PoolRow {
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

export interface WorkerRow {
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

/** A worker's full name: its pool, group and id. */
export interface WorkerName {
  workerPoolId?: string;
  workerGroup?: string;
  workerId?: string;
}

const SCHEMA = `
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
`;

export const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

export function timingSafeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export class WorkerManagerStore {
  constructor(
    readonly db: Database,
    private readonly clock: Clock,
  ) {
    db.exec(SCHEMA);
  }

  now(): Date {
    return this.clock.now();
  }

  findPool(workerPoolId: string): PoolRow | undefined {
    return this.db
      .prepare('SELECT * FROM wm_worker_pools WHERE worker_pool_id = ?')
      .get(workerPoolId) as PoolRow | undefined;
  }

  pool(workerPoolId: string, message = 'Worker pool does not exist'): PoolRow {
    const row = this.findPool(workerPoolId);
    if (!row) throw new ApiError('ResourceNotFound', message);
    return row;
  }

  findWorker(p: WorkerName): WorkerRow | undefined {
    return this.db
      .prepare(
        'SELECT * FROM wm_workers WHERE worker_pool_id = ? AND worker_group = ? AND worker_id = ?',
      )
      .get(p.workerPoolId, p.workerGroup, p.workerId) as WorkerRow | undefined;
  }

  worker(p: WorkerName): WorkerRow {
    const row = this.findWorker(p);
    if (!row) throw new ApiError('ResourceNotFound', 'Worker not found');
    return row;
  }

  /** A worker pool as upstream answers it, with its workers counted by state. */
  serializePool(row: PoolRow): Record<string, unknown> {
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
      config: JSON.parse(row.config) as unknown,
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
}

export function serializeWorker(w: WorkerRow): Record<string, unknown> {
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
