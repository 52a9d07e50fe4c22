// `mozharness-archive serve`: the HTTP lookup endpoint (relengapi-compatible).
//
//   GET /v1/<project>/revision/<rev>     302 to the archive (X-Archive-Sha256/-Size, X-Task-Id),
//                                        JSON with Accept: application/json or ?format=json;
//                                        not indexed + on-demand → 202 Location /v1/status/<taskId>
//   GET /v1/<project>/latest             GET /v1/digest/<treeDigest>
//   GET /v1/status/<taskId>              {state: pending|running|completed|failed, …}
//   GET /archiver/hgmo/<repo>/<rev>?subdir=…&suffix=tar.gz   legacy relengapi archiver
//   GET /archiver/status/<id>            {state, status, src_url, s3_urls}
//   GET /__heartbeat__  /__lbheartbeat__  /__version__       Dockerflow
//
// Found archives are cached for `hitTtlSeconds` (the whole answer, so a cached hit costs about
// what a bare server's 302 does), misses for `missTtlSeconds`; concurrent lookups of one key share
// one index request. On-demand builds are one task per (project, revision, subdir) across
// replicas (see serve/builds.ts). Revisions the repository does not know are answered 404 and
// remembered; Mercurial's pseudo-revisions (null, working directory) are refused. Cached hits are
// logged one in `requestLogSampleRate`; every other answer is logged. Every outbound request goes
// to a configured host only.
import http from 'node:http';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseSource, resolveRevision } from '../archive/index.js';
import type { QueueClient } from '../taskcluster/client.js';
import { errorMessage, isArchiveError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { LookupConfig, ProjectConfig } from './config.js';
import {
  checkDigest,
  checkRevision,
  findArchive,
  type FindClients,
  type FoundArchive,
  type IndexLookup,
  type QueueLookup,
} from './find.js';
import { hostAllowList } from '../util/http.js';
import { acceptsJson, HttpError, type Answer } from './serve/answer.js';
import { FrontDoor } from './serve/front-door.js';
import {
  BuildStore,
  OnDemandBuilds,
  type BuildState,
  type BuildStatus,
  type ResolveRevision,
} from './serve/builds.js';
import { SingleFlight, TtlCache } from './serve/cache.js';
import { checkLegacyQuery, legacyProject, legacyStatus } from './serve/legacy.js';
import { pathSegments, routeTable, type Route, type RouteTarget } from './serve/routes.js';
import { LookupMetrics } from './serve/metrics.js';

export {
  onDemandTaskId,
  type BuildRecord,
  type BuildState,
  type BuildStatus,
} from './serve/builds.js';
export type { ResolveRevision } from './serve/builds.js';

export const SLUGID_RE =
  /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;

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
  /** Clock for cache TTLs, rate limits and retry ages (task definitions use wall-clock time). */
  now?: () => number;
  stateDir: string;
  /** What /__version__ answers (default: version.json beside the package, or package.json). */
  version?: Record<string, string>;
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

/** Dockerflow's version document: version.json at the package root, else package.json's version. */
function packageVersion(): Record<string, string> {
  const read = (rel: string) => {
    try {
      return JSON.parse(fs.readFileSync(new URL(rel, import.meta.url), 'utf8'));
    } catch {
      return undefined;
    }
  };
  const v = read('../../version.json');
  if (v && typeof v === 'object') return v as Record<string, string>;
  const pkg = read('../../package.json') as { version?: string } | undefined;
  return {
    source: 'https://github.com/mozilla-releng/mozharness-archive',
    version: pkg?.version ?? 'unknown',
    commit: process.env.MOZHARNESS_ARCHIVE_COMMIT ?? 'unknown',
    build: process.env.MOZHARNESS_ARCHIVE_BUILD ?? 'local',
  };
}

export class LookupService implements RouteTarget {
  readonly config: LookupConfig;
  readonly metrics = new LookupMetrics();
  private deps: LookupDeps;
  private log: Logger;
  private now: () => number;
  private store: BuildStore;
  private builds: OnDemandBuilds;
  private found: TtlCache<FoundArchive | null>;
  private flight = new SingleFlight();
  private clients: FindClients;
  private routes: Route[];
  private server?: http.Server;
  private front: FrontDoor;
  private version: Record<string, string>;
  /** Outbound requests to the repositories, by project (observability and tests). */
  readonly repositoryLookups: Record<string, number> = {};

  constructor(config: LookupConfig, deps: LookupDeps) {
    this.config = config;
    this.deps = deps;
    this.log = deps.log ?? silentLogger;
    this.now = deps.now ?? Date.now;
    this.version = deps.version ?? packageVersion();
    this.store = new BuildStore(deps.stateDir);
    this.found = new TtlCache(config.cache.maxEntries, this.now);
    this.clients = {
      index: deps.index,
      queue: deps.queue,
      allowUrl: hostAllowList([
        deps.rootUrl,
        ...Object.values(config.projects).map((p) => p.repository),
        ...config.allowHosts,
      ]),
      timeoutMs: 20_000,
    };
    this.builds = new OnDemandBuilds({
      config,
      store: this.store,
      clients: this.clients,
      queue: deps.queue,
      createQueue:
        deps.createQueue ?? (deps.queue as unknown as Pick<QueueClient, 'createTask' | 'task'>),
      resolve: deps.resolveRevision ?? engineResolveRevision,
      log: this.log,
      now: this.now,
      flight: this.flight,
      onRepositoryLookup: (name) => {
        this.repositoryLookups[name] = (this.repositoryLookups[name] ?? 0) + 1;
        this.metrics.repositoryLookups.inc({ project: name });
      },
      onBuildCreated: (name) => this.metrics.builds.inc({ project: name }),
    });
    this.routes = routeTable(this);
    this.front = new FrontDoor({
      config,
      metrics: this.metrics,
      log: this.log,
      now: this.now,
      dispatch: (method, url, accept) => this.dispatch(method, url, accept),
    });
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
    let checked: string;
    try {
      checked = checkRevision(rev);
    } catch (e) {
      throw new HttpError(400, errorMessage(e));
    }
    // hgweb resolves these to Mercurial's null revision and to the working directory: nobody
    // pushed them, so nothing is looked up or built for them.
    if (/^0+$/.test(checked)) {
      throw new HttpError(400, `revision ${checked} is Mercurial's null revision, not a push`);
    }
    if (/^f+$/.test(checked)) {
      throw new HttpError(
        400,
        `revision ${checked} is Mercurial's working-directory pseudo-revision, not a push`,
      );
    }
    return checked;
  }

  /** Cached index lookup: the archive, or null when not indexed. */
  private async lookup(
    key: string,
    q: () => Promise<FoundArchive>,
  ): Promise<{ found: FoundArchive | null; cache: 'hit' | 'miss' | 'negative' }> {
    const cached = this.found.get(key);
    if (cached !== undefined) return { found: cached, cache: cached ? 'hit' : 'negative' };
    const found = await this.flight.run(`lookup:${key}`, async () => {
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

  /** The one archive task of (project, revision): existing, or created now. */
  ensureBuild(
    name: string,
    revision: string,
    opts: { replaceFailed?: string } = {},
  ): Promise<{ taskId: string; created: boolean }> {
    return this.builds.ensureBuild(name, this.project(name), revision, opts);
  }

  /** Task state → build status (completed with the archive, failed with the reason). */
  async buildStatus(taskId: string, statusPath = '/v1/status/'): Promise<BuildStatus> {
    if (!SLUGID_RE.test(taskId))
      throw new HttpError(400, `invalid task id ${JSON.stringify(taskId)}`);
    const s = await this.builds.buildStatus(taskId, statusPath);
    if (s.state === 'completed' && s.project && s.revision) {
      this.found.delete(`rev:${s.project}:${s.revision}`);
    }
    return s;
  }

  // --- routes ----------------------------------------------------------------------------------

  private archiveAnswer(found: FoundArchive, json: boolean, cache: 'hit' | 'miss'): Answer {
    const headers = {
      'x-archive-sha256': found.sha256,
      'x-archive-size': String(found.size),
      'x-task-id': found.taskId,
      'x-archive-revision': found.revision,
      'cache-control': `public, max-age=${Math.floor(this.config.cache.hitTtlSeconds)}`,
    };
    const log = { taskId: found.taskId, cache };
    if (json) return { status: 200, headers, body: found, log, outcome: cache };
    return {
      status: 302,
      headers: { ...headers, location: found.objectUrl ?? found.url },
      log,
      outcome: cache,
    };
  }

  private async found404(
    key: string,
    q: () => Promise<FoundArchive>,
    json: boolean,
    notFound: string,
  ): Promise<Answer> {
    const { found, cache } = await this.lookup(key, q);
    if (!found) throw new HttpError(404, notFound);
    return this.archiveAnswer(found, json, cache === 'negative' ? 'hit' : cache);
  }

  async byRevision(
    name: string,
    rawRev: string,
    json: boolean,
    statusPath = '/v1/status/',
  ): Promise<Answer & { taskId?: string }> {
    const p = this.project(name);
    const rev = this.revision(rawRev);
    const prefix = this.config.indexPrefix;
    const { found, cache } = await this.lookup(`rev:${name}:${rev}`, () =>
      findArchive(this.clients, { project: name, revision: rev, prefix }),
    );
    if (found) return this.archiveAnswer(found, json, cache === 'negative' ? 'hit' : cache);
    if (!p.onDemand) {
      throw new HttpError(
        404,
        `no archive of ${name} revision ${rev} is indexed, and on-demand builds are off for ${name}`,
      );
    }
    const full = await this.builds.fullRevision(name, p, rev);
    if (full !== rev) {
      // the full revision may be indexed even though the short one was not listed yet
      const again = await this.lookup(`rev:${name}:${full}`, () =>
        findArchive(this.clients, { project: name, revision: full, prefix }),
      );
      if (again.found) {
        return this.archiveAnswer(
          again.found,
          json,
          again.cache === 'negative' ? 'hit' : again.cache,
        );
      }
    }
    let { taskId, created } = await this.builds.ensureBuild(name, p, full);
    let state: BuildState = 'pending';
    if (!created) {
      // an earlier request's task: report its state, and replace it once it failed long enough ago
      const s = await this.buildStatus(taskId, statusPath);
      state = s.state;
      if (
        s.state === 'failed' &&
        this.builds.age(taskId) >= this.config.retryFailedAfterSeconds * 1000
      ) {
        const failed = taskId;
        // a concurrent plain request may hold the single-flight slot: ask until replaced
        for (let i = 0; i < 5 && taskId === failed; i++) {
          ({ taskId, created } = await this.builds.ensureBuild(name, p, full, {
            replaceFailed: failed,
          }));
        }
        state = 'pending';
      }
    }
    const location = statusPath + taskId;
    return {
      status: 202,
      headers: { location, 'retry-after': '10', 'x-task-id': taskId, 'cache-control': 'no-store' },
      body: { state, taskId, project: name, revision: full, statusUrl: location },
      log: { project: name, taskId, created, cache },
      outcome: 'on-demand',
      taskId,
    };
  }

  async status(taskId: string, statusPath: string, legacy: boolean): Promise<Answer> {
    const s = await this.buildStatus(taskId, statusPath);
    return {
      status: 200,
      body: legacy ? legacyStatus(this.config, s) : s,
      headers: { 'cache-control': 'no-store' },
      log: { taskId: s.taskId },
      outcome: 'status',
    };
  }

  async legacyArchive(seg: string[], url: URL): Promise<Answer> {
    const rev = seg[seg.length - 1]!;
    const [name, p] = legacyProject(this.config, seg.slice(2, -1).join('/'));
    checkLegacyQuery(p, url.searchParams);
    const a = await this.byRevision(name, rev, false, '/archiver/status/');
    if (a.status !== 202) return { ...a, log: { project: name, ...a.log } };
    const s = await this.buildStatus(a.taskId!, '/archiver/status/');
    return { ...a, body: legacyStatus(this.config, s) };
  }

  // --- what the routes answer (serve/routes.ts reads the paths) --------------------------------

  dockerflow(name: string): Promise<Answer> | undefined {
    if (name === '__heartbeat__') {
      this.store.ping();
      return Promise.resolve({
        status: 200,
        body: { status: 'ok', projects: Object.keys(this.config.projects) },
      });
    }
    if (name === '__lbheartbeat__') return Promise.resolve({ status: 200, body: {} });
    if (name === '__version__') return Promise.resolve({ status: 200, body: this.version });
    return undefined;
  }

  async latest(name: string, json: boolean): Promise<Answer> {
    this.project(name);
    const prefix = this.config.indexPrefix;
    return this.found404(
      `latest:${name}`,
      () => findArchive(this.clients, { project: name, latest: true, prefix }),
      json,
      `no archive of ${name} is indexed yet`,
    );
  }

  async digest(raw: string, json: boolean): Promise<Answer> {
    let digest: string;
    try {
      digest = checkDigest(raw);
    } catch (e) {
      throw new HttpError(400, errorMessage(e));
    }
    const project = Object.keys(this.config.projects)[0]!;
    const prefix = this.config.indexPrefix;
    return this.found404(
      `digest:${digest}`,
      () => findArchive(this.clients, { project, digest, prefix }),
      json,
      `no archive with tree digest ${digest} is indexed`,
    );
  }

  /** Route a request; also returns the route's name (for metrics). */
  async dispatch(method: string, url: URL, accept: string): Promise<Answer & { route: string }> {
    if (method !== 'GET' && method !== 'HEAD') {
      throw new HttpError(405, `method ${method} not allowed`, { allow: 'GET, HEAD' });
    }
    const json = url.searchParams.get('format') === 'json' || acceptsJson(accept);
    const seg = pathSegments(url.pathname);
    for (const r of this.routes) {
      const answer = r.match(seg, url, json);
      if (answer) return { ...(await answer), route: r.name };
    }
    throw new HttpError(404, `no route for ${url.pathname}`);
  }

  /** Route a request (tests call this directly). */
  route(method: string, url: URL, accept: string): Promise<Answer> {
    return this.dispatch(method, url, accept);
  }

  /** node:http request handler. */
  handle = (req: http.IncomingMessage, res: http.ServerResponse): void =>
    this.front.handle(req, res);

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
    this.front.clear();
    this.builds.clearCache();
  }
}

export function createLookupService(config: LookupConfig, deps: LookupDeps): LookupService {
  return new LookupService(config, deps);
}
