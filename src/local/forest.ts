// `local up`: the whole forest on one machine, running until stopped. The embedded services; with
// a repository, its server on loopback (git smart HTTP or `hg serve`), accepting pushes, and a
// watcher that turns each push into the producer's decision task; the worker pools of every task
// queue the in-tree config names, played by the same local runners as `local run`; and the
// dashboard. close() stops them in reverse order and leaves no process behind.
import fs from 'node:fs';
import path from 'node:path';
import { loadGraphConfig, type GraphConfig } from '../decision/config.js';
import { errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { startDashboard, type Dashboard } from './dashboard.js';
import { startEmbedded, type Embedded } from './embedded.js';
import { configQueues, PushLog, PushProducer, type PushRecord } from './pushes.js';
import { hgPushlogHook, watchPushes, type PushWatch } from './push-watch.js';
import { detectVcs, loadConfigAt } from './repo.js';
import { startGitHttp, startHgServe, type RepoServer } from './repo-server.js';
import { localRunners } from './runners.js';
import type { Vcs } from './sample-repo.js';
import { startWorkerPools, type WorkerPools } from './worker-pools.js';

export interface ForestOptions {
  stateDir: string;
  /** This project's root (its taskcluster/ and scripts stand in for the images). */
  projectRoot: string;
  /** Port of the embedded services (default: the previous choice, else a free one). */
  port?: number;
  /** A local hg or git repository to serve and watch. */
  repo?: string;
  project?: string;
  level?: '1' | '2' | '3';
  /** Run the worker pools (default true). */
  workers?: boolean;
  /** Serve the dashboard (default true). */
  dashboard?: boolean;
  /** How often the repository is looked at for pushes (default 1000 ms). */
  pollMs?: number;
  log?: Logger;
  /** One line per event (a push, a task starting or resolving). */
  onEvent?: (line: string) => void;
}

/** The last lines of each task's log while it runs (and a little after). */
export class LiveLogs {
  private readonly logs = new Map<string, string[]>();
  constructor(private readonly maxLines = 400) {}
  add(taskId: string, line: string): void {
    let l = this.logs.get(taskId);
    if (!l) {
      l = [];
      this.logs.set(taskId, l);
      if (this.logs.size > 200) this.logs.delete(this.logs.keys().next().value!);
    }
    l.push(line);
    if (l.length > this.maxLines) l.splice(0, l.length - this.maxLines);
  }
  get(taskId: string): string[] | undefined {
    return this.logs.get(taskId);
  }
}

export interface Forest {
  embedded: Embedded;
  stateDir: string;
  /** The URL to push to (with a repository). */
  repository?: { url: string; vcs: Vcs; path: string };
  pushLog: PushLog;
  pools?: WorkerPools;
  liveLogs: LiveLogs;
  /** The dashboard's address (loopback). */
  dashboardUrl?: string;
  /** Look for pushes now (the watcher also looks every pollMs). */
  pollPushes(): Promise<void>;
  close(): Promise<void>;
}

/** The in-tree config that names the worker pools: the repository's, else this project's. */
async function forestConfig(o: ForestOptions, repo?: { path: string; vcs: Vcs }) {
  if (repo) {
    const head = repo.vcs === 'git' ? 'HEAD' : 'tip';
    const fromRepo = await loadConfigAt(repo.path, repo.vcs, head).catch(() => undefined);
    if (fromRepo) return fromRepo;
  }
  return loadGraphConfig(path.join(o.projectRoot, 'taskcluster'));
}

async function serveRepository(
  o: ForestOptions,
  stateDir: string,
): Promise<{ server: RepoServer; path: string; vcs: Vcs; hgPushlog?: string }> {
  const repoDir = path.resolve(o.repo!);
  const vcs = detectVcs(repoDir);
  const prefix = o.project ?? 'mozilla-central';
  if (vcs === 'git') {
    return { server: await startGitHttp(repoDir, { prefix, allowPush: true }), path: repoDir, vcs };
  }
  const hgPushlog = path.join(stateDir, 'hg-pushlog.txt');
  const server = await startHgServe(repoDir, {
    prefix,
    allowPush: true,
    config: [hgPushlogHook(hgPushlog)],
  });
  return { server, path: repoDir, vcs, hgPushlog };
}

type ServedRepository = Awaited<ReturnType<typeof serveRepository>>;

/** What the parts of a forest share while it starts: its services, and how to stop each part. */
interface ForestParts {
  o: ForestOptions;
  log: Logger;
  say: (line: string) => void;
  stateDir: string;
  embedded: Embedded;
  config: GraphConfig;
  served?: ServedRepository;
  pushLog: PushLog;
  liveLogs: LiveLogs;
  cleanups: Array<() => Promise<unknown>>;
}

/** The worker pools of every task queue the config names, played by the local runners. */
function startPools(f: ForestParts): WorkerPools {
  const { embedded, served, log, say } = f;
  const abort = new AbortController();
  const run = localRunners({
    rootUrl: embedded.rootUrl,
    credentials: embedded.credentials,
    s3: embedded.s3!,
    projectRoot: f.o.projectRoot,
    stateDir: f.stateDir,
    ...(served ? { repo: { path: served.path, vcs: served.vcs } } : {}),
    allowRepos: served ? [served.server.url] : [],
    log,
    signal: abort.signal,
    onLogLine: (taskId, line) => f.liveLogs.add(taskId, line),
  });
  const started = startWorkerPools({
    rootUrl: embedded.rootUrl,
    credentials: embedded.credentials,
    taskQueueIds: configQueues(f.config, ['1', '2', '3']),
    run,
    log,
    onStart: (t) => say(`running   ${t.label} ${t.taskId} (${t.taskQueueId})`),
    onResolved: (r) =>
      say(`${r.state.padEnd(9)} ${r.label} ${r.taskId} (${(r.ms / 1000).toFixed(1)} s)`),
  });
  f.cleanups.push(async () => {
    abort.abort();
    await started.stop();
  });
  return started;
}

/** The watcher that turns each push to the served repository into the producer's decision task. */
async function watchServedPushes(f: ForestParts, served: ServedRepository): Promise<PushWatch> {
  const { embedded, say } = f;
  const producer = new PushProducer({
    rootUrl: embedded.rootUrl,
    credentials: embedded.credentials,
    repoDir: served.path,
    vcs: served.vcs,
    repository: served.server.url,
    project: f.o.project ?? 'mozilla-central',
    level: f.o.level ?? '3',
    pushLog: f.pushLog,
  });
  const w = await watchPushes({
    repoDir: served.path,
    vcs: served.vcs,
    ...(served.hgPushlog ? { hgPushlogFile: served.hgPushlog } : {}),
    intervalMs: f.o.pollMs ?? 1000,
    log: f.log,
    onPush: async (p) => {
      let rec: PushRecord;
      try {
        rec = await producer.push({
          revision: p.revision,
          baseRevision: p.baseRevision,
          ...(served.vcs === 'git' ? { ref: p.ref } : {}),
          owner: p.email || 'developer@example.com',
          author: p.author,
          message: p.message,
        });
      } catch (e) {
        say(`push ${p.revision.slice(0, 12)} (${p.ref}): no decision task: ${errorMessage(e)}`);
        return;
      }
      say(
        `push ${rec.pushlogId}: ${p.revision.slice(0, 12)} ${p.ref} by ${p.author}: ` +
          `decision task ${rec.decisionTaskId} (${rec.producer})`,
      );
    },
  });
  // stopped before the pools and the server, so no push is half-handled
  f.cleanups.push(() => w.stop());
  return w;
}

export async function startForest(o: ForestOptions): Promise<Forest> {
  const log = o.log ?? silentLogger;
  const stateDir = path.resolve(o.stateDir);
  fs.mkdirSync(stateDir, { recursive: true });
  const cleanups: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  };
  try {
    const embedded = await startEmbedded({
      stateDir,
      log,
      claimWorkPollMs: 1000,
      ...(o.port !== undefined ? { port: o.port } : {}),
    });
    cleanups.push(() => embedded.close());
    const served = o.repo ? await serveRepository(o, stateDir) : undefined;
    if (served) cleanups.push(() => served.server.close());
    const repo = served ? { path: served.path, vcs: served.vcs } : undefined;
    const f: ForestParts = {
      o,
      log,
      say: o.onEvent ?? (() => {}),
      stateDir,
      embedded,
      config: await forestConfig(o, repo),
      ...(served ? { served } : {}),
      pushLog: new PushLog(stateDir),
      liveLogs: new LiveLogs(),
      cleanups,
    };
    const pools = o.workers !== false ? startPools(f) : undefined;
    let dashboard: Dashboard | undefined;
    if (o.dashboard !== false) {
      const d = await startDashboard({
        rootUrl: embedded.rootUrl,
        credentials: embedded.credentials,
        pushLog: f.pushLog,
        liveLogs: f.liveLogs,
        config: f.config,
        project: o.project ?? 'mozilla-central',
        log,
      });
      dashboard = d;
      cleanups.push(() => d.close());
    }
    const watch = served ? await watchServedPushes(f, served) : undefined;
    return {
      embedded,
      stateDir,
      ...(served
        ? { repository: { url: served.server.url, vcs: served.vcs, path: served.path } }
        : {}),
      pushLog: f.pushLog,
      ...(pools ? { pools } : {}),
      liveLogs: f.liveLogs,
      ...(dashboard ? { dashboardUrl: dashboard.url } : {}),
      pollPushes: () => watch?.poll() ?? Promise.resolve(),
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
