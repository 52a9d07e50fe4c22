// Start the embedded Taskcluster services in-process: one database under the state directory,
// one HTTP server (queue, index, hooks, auth, worker-manager under `<rootUrl>/api/<service>/v1`), a periodic
// sweep driven by the clock, and an s3rver on loopback for artifacts. `local up` and the tests
// use this typed API; production code talks to it through the real taskcluster-client.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { redact, silentLogger, type Logger } from '../util/log.js';
import { HawkAuthenticator } from './auth.js';
import { createClient, rootCredentials } from './auth-store.js';
import { AuthService } from './auth-service.js';
import { getSetting, openDatabase, setSetting, type Database } from './db.js';
import { systemClock, type Clock, type Service, type ServiceDeps } from './framework.js';
import { HooksService } from './hooks-service.js';
import { IndexService } from './index-service.js';
import { QueueService } from './queue-service.js';
import { WorkerManagerService } from './worker-manager-service.js';
import { listenWithFallback } from './listen.js';
import { ApiServer } from './server.js';
import { lockStateDir } from './state-lock.js';

const DEFAULT_ARCHIVE_TASK_QUEUE_ID = 'proj-mozharness/archive';
const DEFAULT_S3_BUCKET = 'mozharness-archive';
const DEFAULT_SWEEP_INTERVAL_MS = 1000;
/** s3rver accepts any credentials; these are its documented defaults. */
const S3RVER_ACCESS_KEY = 'S3RVER';

export interface EmbeddedOptions {
  stateDir: string;
  /** HTTP port (default: the port persisted by the previous start, else a free one). */
  port?: number;
  clock?: Clock;
  /** Period of the background sweep in ms (default 1000; 0 disables it — call `sweep()`). */
  sweepIntervalMs?: number;
  /** Start s3rver too (default true). */
  s3?: boolean;
  log?: Logger;
  archiveTaskQueueId?: string;
  /** claimWork long-poll length in ms (default 20 s, as upstream). */
  claimWorkPollMs?: number;
}

export interface EmbeddedS3 {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Objects are readable without credentials at `${publicBaseUrl}/<key>`. */
  publicBaseUrl: string;
}

export interface Embedded {
  rootUrl: string;
  /** Root credentials (scope `*`). */
  credentials: { clientId: string; accessToken: string };
  s3?: EmbeddedS3;
  archiveTaskQueueId: string;
  stateDir: string;
  db: Database;
  server: ApiServer;
  auth: HawkAuthenticator;
  queue: QueueService;
  index: IndexService;
  hooks: HooksService;
  workerManager: WorkerManagerService;
  /** Run every service's sweep once (claim expiry, deadlines, expiry) as of the clock. */
  sweep(): Promise<void>;
  /** Create or re-key a configured client with these scopes (for tests, limited workers…). */
  createClient(clientId: string, scopes: string[]): { clientId: string; accessToken: string };
  /** Create or replace a role (`assume:<roleId>` grants its scopes). */
  setRole(roleId: string, scopes: string[]): void;
  close(): Promise<void>;
}

async function startS3(stateDir: string, db: Database, log: Logger) {
  const { default: S3rver } = await import('s3rver');
  const directory = path.join(stateDir, 's3');
  fs.mkdirSync(directory, { recursive: true });
  const persisted = Number(getSetting(db, 's3.port') ?? 0);
  const s3rver = new S3rver({
    directory,
    silent: true,
    configureBuckets: [
      {
        name: DEFAULT_S3_BUCKET,
        configs: [
          '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>' +
            '<AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>' +
            '<AllowedHeader>*</AllowedHeader><MaxAgeSeconds>3000</MaxAgeSeconds>' +
            '</CORSRule></CORSConfiguration>',
        ],
      },
    ],
  });
  await s3rver.configureBuckets();
  // s3rver's own run() leaves listen errors unhandled; serve its handler from our own server
  const httpServer = http.createServer(s3rver.callback());
  httpServer.on('close', () => s3rver.logger?.close?.());
  const port = await listenWithFallback(httpServer, {
    host: '127.0.0.1',
    what: 'S3 (s3rver)',
    remembered: persisted,
    log,
  });
  setSetting(db, 's3.port', String(port));
  const endpoint = `http://127.0.0.1:${port}`;
  const s3: EmbeddedS3 = {
    endpoint,
    region: 'us-east-1',
    bucket: DEFAULT_S3_BUCKET,
    accessKeyId: S3RVER_ACCESS_KEY,
    secretAccessKey: S3RVER_ACCESS_KEY,
    publicBaseUrl: `${endpoint}/${DEFAULT_S3_BUCKET}`,
  };
  const close = async () => {
    if (!httpServer.listening) return;
    await new Promise<void>((resolve) => {
      httpServer.close(() => resolve());
      httpServer.closeAllConnections();
    });
  };
  return { s3, close };
}

/** Runs cleanup steps in order, each whatever the others did; `log` hears of a failing one. */
async function runSteps(steps: Array<() => unknown>, log?: Logger): Promise<void> {
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      log?.warn('embedded-close-step-failed', { error: e });
    }
  }
}

/** The hosted services, wired to each other: completed tasks reach the index, hooks create
 * tasks through the queue, every issued credential is signed by the embedded auth. */
function createServices(
  deps: ServiceDeps,
  auth: HawkAuthenticator,
  opts: EmbeddedOptions,
  log: Logger,
) {
  const index = new IndexService({
    ...deps,
    log: log.child({ service: 'index' }),
    signUrl: (url, ttl) => auth.signUrl(url, ttl),
    anonymousScopes: () => auth.anonymousScopes(),
  });
  const queue = new QueueService({
    ...deps,
    issueCredentials: auth.issueCredentials,
    events: { onTaskCompleted: (taskId, task) => void index.indexTaskOnCompletion(taskId, task) },
    log: log.child({ service: 'queue' }),
    ...(opts.claimWorkPollMs !== undefined ? { claimWorkPollMs: opts.claimWorkPollMs } : {}),
  });
  const hooks = new HooksService({
    ...deps,
    createTask: (taskId, def, scopes) => queue.createTaskAs(taskId, def, scopes),
    expandScopes: (scopes) => auth.expandScopes(scopes),
    log: log.child({ service: 'hooks' }),
  });
  const authService = new AuthService({ ...deps, auth });
  const workerManager = new WorkerManagerService({
    ...deps,
    issueCredentials: auth.issueCredentials,
  });
  return { index, queue, hooks, authService, workerManager };
}

/** One sweep of every service at a time (a sweep asked for during one joins it). */
function sweeper(services: Service[], log: Logger) {
  let sweeping: Promise<void> | undefined;
  const sweep = async (): Promise<void> => {
    if (sweeping) return sweeping;
    sweeping = (async () => {
      for (const svc of services) {
        try {
          await svc.sweep?.();
        } catch (e) {
          log.error('embedded-sweep-failed', { service: svc.name, error: e });
        }
      }
    })().finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  };
  /** Resolves once a sweep under way has finished. */
  const settled = async () => {
    if (sweeping) await sweeping.catch(() => {});
  };
  return { sweep, settled };
}

/** Start the embedded services (and s3rver unless `s3: false`). */
export async function startEmbedded(opts: EmbeddedOptions): Promise<Embedded> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? silentLogger;
  const stateDir = path.resolve(opts.stateDir);
  const lock = lockStateDir(stateDir);
  const cleanup: Array<() => unknown> = [() => lock.release()];
  try {
    const db = openDatabase(stateDir);
    cleanup.unshift(() => void db.close());
    const auth = new HawkAuthenticator(db, { clock });
    const root = rootCredentials(db);
    redact(root.accessToken);

    const server = new ApiServer(auth, {
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      rememberedPort: Number(getSetting(db, 'server.port') ?? 0),
      clock,
      log,
    });
    const deps: ServiceDeps = { db, clock, rootUrl: () => server.rootUrl };
    const wired = createServices(deps, auth, opts, log);
    const { index, queue, hooks, workerManager } = wired;
    cleanup.unshift(() => queue.close());
    const services: Service[] = [queue, index, hooks, wired.authService, workerManager];
    services.forEach((svc) => server.register(svc));
    const rootUrl = await server.listen();
    cleanup.unshift(() => server.close());
    setSetting(db, 'server.port', new URL(rootUrl).port);

    let s3: EmbeddedS3 | undefined;
    if (opts.s3 !== false) {
      const started = await startS3(stateDir, db, log);
      s3 = started.s3;
      cleanup.unshift(started.close);
    }

    const { sweep, settled } = sweeper(services, log);
    const interval = opts.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (interval > 0) {
      const timer = setInterval(() => void sweep(), interval);
      timer.unref();
      cleanup.unshift(() => clearInterval(timer));
    }

    let closed = false;
    return {
      rootUrl,
      credentials: root,
      ...(s3 ? { s3 } : {}),
      archiveTaskQueueId: opts.archiveTaskQueueId ?? DEFAULT_ARCHIVE_TASK_QUEUE_ID,
      stateDir,
      db,
      server,
      auth,
      queue,
      index,
      hooks,
      workerManager,
      sweep,
      createClient: (clientId, scopes) => {
        const creds = createClient(db, clientId, scopes, { clock });
        redact(creds.accessToken);
        return creds;
      },
      setRole: (roleId, scopes) => void auth.roles.set(roleId, scopes),
      close: async () => {
        if (closed) return;
        closed = true;
        await settled();
        await runSteps(cleanup, log);
      },
    };
  } catch (e) {
    await runSteps(cleanup); // already failing
    throw e;
  }
}
