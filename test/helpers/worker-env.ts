// An end-to-end environment for the worker tests and the worker benchmark: the embedded
// Taskcluster services over real HTTP, a real s3rver (with fault injection), a real Mercurial
// repository behind `hg serve`, and helpers to create archive tasks with the real client.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArchiveStore } from '../../src/storage/index.js';
import type { Embedded } from '../../src/local/embedded.js';
import type { Clock } from '../../src/local/framework.js';
import {
  indexClient,
  queueClient,
  slugid,
  type Credentials,
  type IndexClient,
  type QueueClient,
} from '../../src/taskcluster/client.js';
import type { ClaimedTask, TaskDefinition } from '../../src/taskcluster/types.js';
import { createLogger, type Logger } from '../../src/util/log.js';
import {
  runWorker,
  S3TaskLogStore,
  validateWorkerConfig,
  workerS3Client,
  type WorkerConfig,
  type WorkerDeps,
  type WorkerS3Settings,
  type WorkerSummary,
} from '../../src/worker/index.js';
import {
  createHgRepo,
  SAMPLE_SUBDIR,
  startHgServe,
  type HgServer,
  type SampleRepo,
} from './repos.js';
import { startS3, type TestS3 } from './s3.js';
import { assertUpstream } from './upstream.js';
import { testIsolationConfig } from './task-user.js';

/** A clock that follows real time plus an adjustable offset (claim expiry without Hawk skew). */
export class OffsetClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

export const WORKER_GROUP = 'tests';

/**
 * Load the embedded services through the ESM loader. Under mocha + tsx the test files are loaded
 * as CommonJS, while embedded.ts loads queue-service.ts with a dynamic import (ESM): two copies
 * of framework.ts, so the server no longer recognises the queue's ApiError (a 409 becomes a 500).
 * Importing embedded.ts itself dynamically keeps every module in the ESM graph.
 */
async function loadEmbedded(): Promise<typeof import('../../src/local/embedded.js')> {
  const specifier = '../../src/local/embedded.js';
  return (await import(specifier)) as typeof import('../../src/local/embedded.js');
}

export interface WorkerEnv {
  dir: string;
  /** A world-writable directory (mode 1777) where test commands, run as the task user, may write. */
  sharedDir: string;
  embedded: Embedded;
  clock: OffsetClock;
  s3: TestS3;
  repo: SampleRepo;
  hg: HgServer;
  root: QueueClient;
  index: IndexClient;
  workerCredentials: { clientId: string; accessToken: string };
  /** Every temporary credential handed to the worker (to check none reaches a log). */
  taskCredentials: Credentials[];
  /** Every worker log line. */
  logLines: string[];
  log: Logger;
  s3Settings: WorkerS3Settings;
  config(queue: string, overrides?: Record<string, unknown>): WorkerConfig;
  store(): ArchiveStore;
  /** Queue clients that validate requests/responses against the upstream schemas. */
  deps(extra?: Partial<WorkerDeps>): WorkerDeps;
  createTask(
    queue: string,
    payload: Record<string, unknown>,
    opts?: Partial<TaskDefinition>,
  ): Promise<string>;
  runOnce(
    queue: string,
    overrides?: Record<string, unknown>,
    extra?: Partial<WorkerDeps>,
  ): Promise<WorkerSummary>;
  close(): Promise<void>;
}

/** Make every queue call of the worker check its bodies against the upstream schemas. */
export function checkedQueue(q: QueueClient, env: { taskCredentials: Credentials[] }): QueueClient {
  return new Proxy(q, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const fn = value.bind(target) as (...a: any[]) => Promise<any>;
      switch (prop) {
        case 'claimWork':
          return async (queueId: string, body: unknown) => {
            assertUpstream('/schemas/queue/v1/claim-work-request.json', body, 'claimWork body');
            const r = await fn(queueId, body);
            assertUpstream('/schemas/queue/v1/claim-work-response.json', r, 'claimWork response');
            for (const t of r.tasks as ClaimedTask[]) env.taskCredentials.push(t.credentials);
            return r;
          };
        case 'reclaimTask':
          return async (taskId: string, runId: number) => {
            const r = await fn(taskId, runId);
            assertUpstream('/schemas/queue/v1/task-reclaim-response.json', r, 'reclaim response');
            env.taskCredentials.push(r.credentials);
            return r;
          };
        case 'createArtifact':
          return async (taskId: string, runId: number, name: string, body: unknown) => {
            assertUpstream(
              '/schemas/queue/v1/post-artifact-request.json',
              body,
              `artifact ${name}`,
            );
            const r = await fn(taskId, runId, name, body);
            assertUpstream('/schemas/queue/v1/post-artifact-response.json', r, `artifact ${name}`);
            return r;
          };
        case 'reportException':
          return async (taskId: string, runId: number, body: unknown) => {
            assertUpstream('/schemas/queue/v1/task-exception-request.json', body, 'exception');
            const r = await fn(taskId, runId, body);
            assertUpstream('/schemas/queue/v1/task-status-response.json', r, 'exception response');
            return r;
          };
        case 'reportCompleted':
        case 'reportFailed':
          return async (taskId: string, runId: number) => {
            const r = await fn(taskId, runId);
            assertUpstream('/schemas/queue/v1/task-status-response.json', r, String(prop));
            return r;
          };
        case 'use':
          return (o: any) => checkedQueue((value as any).call(target, o) as QueueClient, env);
        default:
          return fn;
      }
    },
  });
}

/** The worker side of a test deployment, shared by this file and integration-env.ts: S3 settings,
 * worker configurations, schema-checked worker dependencies and archive task definitions. */
export interface WorkerKitOptions {
  rootUrl: string;
  workerCredentials: Credentials;
  workerGroup: string;
  s3: TestS3;
  hgUrl: string;
  workDir: string;
  log: Logger;
  /** Every temporary credential handed to the worker lands here. */
  env: { taskCredentials: Credentials[] };
  /** Creates the task (with root credentials). */
  createTask: (taskId: string, def: TaskDefinition) => Promise<unknown>;
  source: string;
}

export function workerKit(o: WorkerKitOptions) {
  const s3Settings: WorkerS3Settings = {
    bucket: o.s3.bucket,
    endpoint: o.s3.endpoint,
    region: o.s3.region,
    publicBaseUrl: o.s3.publicBaseUrl,
    accessKeyId: o.s3.accessKeyId,
    secretAccessKey: o.s3.secretAccessKey,
    prefix: 'mozharness',
  };
  let workers = 0;
  const kit = {
    s3Settings,
    config(taskQueueId: string, overrides: Record<string, unknown> = {}): WorkerConfig {
      return validateWorkerConfig({
        rootUrl: o.rootUrl,
        credentials: o.workerCredentials,
        taskQueueId,
        workerGroup: o.workerGroup,
        workerId: `w${++workers}`,
        capacity: 1,
        s3: s3Settings,
        allowRepos: [o.hgUrl + '/', o.hgUrl],
        limits: { retries: 1, connectTimeoutMs: 2000, idleTimeoutMs: 5000, maxRetryTimeMs: 2000 },
        shutdownGraceSeconds: 5,
        pollIntervalSeconds: 0.05,
        workDir: o.workDir,
        ...testIsolationConfig(),
        ...overrides,
      });
    },
    store(): ArchiveStore {
      return new ArchiveStore(o.s3.client(), s3Settings);
    },
    deps(extra: Partial<WorkerDeps> = {}): WorkerDeps {
      return {
        queue: checkedQueue(
          queueClient({ rootUrl: o.rootUrl, credentials: o.workerCredentials }),
          o.env,
        ),
        taskQueue: (credentials) =>
          checkedQueue(queueClient({ rootUrl: o.rootUrl, credentials }), o.env),
        store: kit.store(),
        logs: new S3TaskLogStore(workerS3Client(s3Settings), s3Settings),
        log: o.log,
        ...extra,
      };
    },
    async createTask(
      taskQueueId: string,
      name: string,
      payload: Record<string, unknown>,
      opts: Partial<TaskDefinition> = {},
    ): Promise<string> {
      const taskId = slugid();
      const now = new Date();
      const def: TaskDefinition = {
        taskQueueId,
        schedulerId: 'mozharness-level-1',
        created: now.toISOString(),
        deadline: new Date(now.getTime() + 3 * 3600e3).toISOString(),
        expires: new Date(now.getTime() + 7 * 86400e3).toISOString(),
        retries: 0,
        metadata: {
          name: `mozharness archive ${name}`,
          description: 'archive testing/mozharness',
          owner: 'releng@example.com',
          source: o.source,
        },
        payload: { subdir: SAMPLE_SUBDIR, maxRunTime: 300, ...payload },
        ...opts,
      };
      assertUpstream('/schemas/queue/v1/create-task-request.json', def, 'task definition');
      await o.createTask(taskId, def);
      return taskId;
    },
  };
  return kit;
}

export async function startWorkerEnv(
  opts: {
    variants?: Array<string | undefined>;
    claimWorkPollMs?: number;
    /** Build the repository served by `hg serve` (default: the sample tree, one commit per variant). */
    createRepo?: (dir: string) => Promise<SampleRepo>;
  } = {},
): Promise<WorkerEnv> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-e2e-'));
  const sharedDir = path.join(dir, 'shared');
  fs.mkdirSync(sharedDir);
  fs.chmodSync(dir, 0o711); // the task user may traverse to sharedDir, not list or read the rest
  fs.chmodSync(sharedDir, 0o1777);
  const clock = new OffsetClock();
  const { startEmbedded } = await loadEmbedded();
  const embedded = await startEmbedded({
    stateDir: path.join(dir, 'state'),
    port: 0,
    clock,
    s3: false,
    sweepIntervalMs: 0,
    claimWorkPollMs: opts.claimWorkPollMs ?? 300,
    ...(process.env.DEBUG_EMBEDDED ? { log: createLogger({ json: true }) } : {}),
  });
  const s3 = await startS3();
  const repo = opts.createRepo
    ? await opts.createRepo(path.join(dir, 'repo'))
    : await createHgRepo(path.join(dir, 'repo'), {
        variants: opts.variants ?? [undefined, 'second', 'third'],
      });
  const hg = await startHgServe(repo.path);
  const root = queueClient({ rootUrl: embedded.rootUrl, credentials: embedded.credentials });
  const index = indexClient({ rootUrl: embedded.rootUrl, credentials: embedded.credentials });
  const workerCredentials = embedded.createClient('project/mozharness/worker-tests', [
    'queue:claim-work:proj-mozharness/*',
    `queue:worker-id:${WORKER_GROUP}/*`,
  ]);
  const logLines: string[] = [];
  const log = createLogger({ write: (l) => logLines.push(l), json: true, level: 'debug' });
  const taskCredentials: Credentials[] = [];
  const kit = workerKit({
    rootUrl: embedded.rootUrl,
    workerCredentials,
    workerGroup: WORKER_GROUP,
    s3,
    hgUrl: hg.url,
    workDir: path.join(dir, 'work'),
    log,
    env: { taskCredentials },
    createTask: (taskId, def) => root.createTask(taskId, def),
    source: 'https://example.com/worker-tests',
  });
  const s3Settings = kit.s3Settings;
  const env: WorkerEnv = {
    dir,
    sharedDir,
    embedded,
    clock,
    s3,
    repo,
    hg,
    root,
    index,
    workerCredentials,
    taskCredentials,
    logLines,
    log,
    s3Settings,
    config: (queue, overrides) => kit.config(`proj-mozharness/${queue}`, overrides),
    store: kit.store,
    deps: kit.deps,
    createTask: (queue, payload, opts) =>
      kit.createTask(`proj-mozharness/${queue}`, queue, payload, opts),
    async runOnce(queue, overrides = {}, extra = {}) {
      return runWorker(env.config(queue, { once: true, ...overrides }), env.deps(extra));
    },
    async close() {
      await hg.close().catch(() => {});
      await s3.close().catch(() => {});
      await embedded.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}
