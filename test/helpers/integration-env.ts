// The archive worker's world for test/integration: a backend (embedded or real Taskcluster,
// test/helpers/backend.ts), a real s3rver as the archive store, a Mercurial repository behind
// `hg serve`, a narrow worker client, and archive tasks created with the real client. Every name
// a test creates on the deployment (task queue, index namespace) is unique to this run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArchiveStore } from '../../src/storage/index.js';
import {
  indexClient,
  queueClient,
  type Credentials,
  type IndexClient,
  type QueueClient,
} from '../../src/taskcluster/client.js';
import type { TaskDefinition } from '../../src/taskcluster/types.js';
import { createLogger, type Logger } from '../../src/util/log.js';
import {
  runWorker,
  type WorkerConfig,
  type WorkerDeps,
  type WorkerS3Settings,
  type WorkerSummary,
} from '../../src/worker/index.js';
import { startBackend, type Backend } from './backend.js';
import { waitFor } from './wait.js';
import { createHgRepo, startHgServe, type HgServer, type SampleRepo } from './repos.js';
import { startS3, type TestS3 } from './s3.js';
import { assertUpstream } from './upstream.js';
import { workerKit } from './worker-env.js';

export const WORKER_GROUP = 'integration';

export interface IntegrationEnv {
  backend: Backend;
  dir: string;
  s3: TestS3;
  repo: SampleRepo;
  hg: HgServer;
  /** Root clients (scope `*`). */
  queue: QueueClient;
  index: IndexClient;
  /** Prefix of every task queue of this run: `proj-mozharness/<prefix>-<name>`. */
  queuePrefix: string;
  /** Index namespace root of this run: `project.mozharness.<unique>`. */
  namespace: string;
  workerCredentials: Credentials;
  taskCredentials: Credentials[];
  logLines: string[];
  log: Logger;
  s3Settings: WorkerS3Settings;
  taskQueueId(name: string): string;
  config(name: string, overrides?: Record<string, unknown>): WorkerConfig;
  store(): ArchiveStore;
  deps(extra?: Partial<WorkerDeps>): WorkerDeps;
  createTask(
    name: string,
    payload: Record<string, unknown>,
    opts?: Partial<TaskDefinition>,
  ): Promise<string>;
  runOnce(
    name: string,
    overrides?: Record<string, unknown>,
    extra?: Partial<WorkerDeps>,
  ): Promise<WorkerSummary>;
  /** The task indexed at `namespace`, or undefined (404). */
  indexed(namespace: string): Promise<string | undefined>;
  /** Wait until `namespace` points at `taskId` (the real index is asynchronous). */
  waitIndexed(namespace: string, taskId: string): Promise<void>;
  /** GET an artifact without following the redirect. */
  artifact(
    taskId: string,
    name: string,
    runId?: number,
  ): Promise<{ status: number; location: string | null; body: string }>;
  /** Follow an artifact's redirects to its bytes. */
  follow(taskId: string, name: string, runId?: number): Promise<Buffer>;
  close(): Promise<void>;
}

export async function startIntegrationEnv(
  opts: { variants?: Array<string | undefined>; backend?: Backend } = {},
): Promise<IntegrationEnv> {
  const backend = opts.backend ?? (await startBackend());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integration-'));
  fs.chmodSync(dir, 0o711); // test commands (run as the task user) reach <dir>/shared only
  fs.mkdirSync(path.join(dir, 'shared'), { mode: 0o1777 });
  fs.chmodSync(path.join(dir, 'shared'), 0o1777);
  const s3 = await startS3();
  const repo = await createHgRepo(path.join(dir, 'repo'), {
    variants: opts.variants ?? [undefined, 'second'],
  });
  const hg = await startHgServe(repo.path);
  const queuePrefix = backend.unique('it');
  const namespace = `project.mozharness.${queuePrefix}`;
  const root = { rootUrl: backend.rootUrl, credentials: backend.root };
  const queue = queueClient(root);
  const index = indexClient(root);
  const workerCredentials = await backend.clientWithScopes(
    [`queue:claim-work:proj-mozharness/${queuePrefix}-*`, `queue:worker-id:${WORKER_GROUP}/*`],
    'worker',
  );
  const logLines: string[] = [];
  const log = createLogger({ write: (l) => logLines.push(l), json: true, level: 'debug' });
  const taskCredentials: Credentials[] = [];
  const kit = workerKit({
    rootUrl: backend.rootUrl,
    workerCredentials,
    workerGroup: WORKER_GROUP,
    s3,
    hgUrl: hg.url,
    workDir: path.join(dir, 'work'),
    log,
    env: { taskCredentials },
    createTask: (taskId, def) => queue.createTask(taskId, def),
    source: 'https://example.com/integration-tests',
  });
  const s3Settings = kit.s3Settings;
  const env: IntegrationEnv = {
    backend,
    dir,
    s3,
    repo,
    hg,
    queue,
    index,
    queuePrefix,
    namespace,
    workerCredentials,
    taskCredentials,
    logLines,
    log,
    s3Settings,
    taskQueueId: (name) => `proj-mozharness/${queuePrefix}-${name}`,
    config: (name, overrides) => kit.config(env.taskQueueId(name), overrides),
    store: kit.store,
    deps: kit.deps,
    createTask: (name, payload, opts) => kit.createTask(env.taskQueueId(name), name, payload, opts),
    async runOnce(name, overrides = {}, extra = {}) {
      return runWorker(env.config(name, { once: true, ...overrides }), env.deps(extra));
    },
    async indexed(ns) {
      try {
        const r = await index.findTask(ns);
        assertUpstream('/schemas/index/v1/indexed-task-response.json', r, 'findTask');
        return r.taskId;
      } catch (e: any) {
        if (e.statusCode === 404) return undefined;
        throw e;
      }
    },
    async waitIndexed(ns, taskId) {
      await waitFor(`${ns} -> ${taskId}`, async () =>
        (await env.indexed(ns)) === taskId ? true : undefined,
      );
    },
    async artifact(taskId, name, runId) {
      const base = `${backend.rootUrl}/api/queue/v1/task/${taskId}`;
      const url =
        runId === undefined
          ? `${base}/artifacts/${encodeURIComponent(name)}`
          : `${base}/runs/${runId}/artifacts/${encodeURIComponent(name)}`;
      const res = await fetch(url, { redirect: 'manual' });
      const body = await res.text();
      return { status: res.status, location: res.headers.get('location'), body };
    },
    async follow(taskId, name, runId) {
      const a = await env.artifact(taskId, name, runId);
      if (a.status !== 303) throw new Error(`${name}: ${a.status} ${a.body}`);
      let location = a.location!;
      for (let i = 0; i < 3 && location.startsWith(backend.rootUrl); i++) {
        const r = await fetch(location, { redirect: 'manual' });
        if (r.status !== 303) throw new Error(`${location}: ${r.status}`);
        location = r.headers.get('location')!;
      }
      const res = await fetch(location);
      if (res.status !== 200) throw new Error(`GET ${location}: ${res.status}`);
      return Buffer.from(await res.arrayBuffer());
    },
    async close() {
      await hg.close().catch(() => {});
      await s3.close().catch(() => {});
      if (!opts.backend) await backend.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}
