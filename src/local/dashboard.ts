// The local forest's dashboard: pushes newest first in Treeherder's style, the archive of each
// push, a page per task (definition, runs, log tail, artifacts, dependencies both ways), the
// push's actions.json actions as buttons, and revision lookups as `serve` answers them. It listens
// on 127.0.0.1 only, answers only requests addressed to that host (no DNS rebinding), reads only
// the embedded services' data (and the live log of tasks the local workers are running), and
// runs an action only for a POST that carries this run's random token from the same origin.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchActionsJson, selectAction, triggerAction } from '../actions/trigger.js';
import type { GraphConfig } from '../decision/config.js';
import { findArchive } from '../lookup/find.js';
import { indexClient, queueClient, type QueueClient } from '../taskcluster/client.js';
import { errorMessage } from '../util/errors.js';
import { getBuffer } from '../util/http.js';
import type { Logger } from '../util/log.js';
import {
  DASHBOARD_CSS,
  DASHBOARD_JS,
  errorPage,
  lookupPage,
  pushesFragment,
  pushesPage,
  taskFragment,
  taskPage,
  type PushView,
  type TaskPageData,
  type TaskRow,
} from './dashboard-views.js';
import type { LiveLogs } from './forest.js';
import { listTaskGroup } from '../taskcluster/listing.js';
import { pushArchive, type PushArchive, type PushLog } from './pushes.js';
import type { TaskDefinition, TaskStatus } from '../taskcluster/types.js';

export interface DashboardOptions {
  rootUrl: string;
  /** Credentials the dashboard reads task groups with and triggers actions as. */
  credentials: { clientId: string; accessToken: string };
  pushLog: PushLog;
  liveLogs?: LiveLogs;
  config: Pick<GraphConfig, 'indexPrefix' | 'archive'>;
  project?: string;
  log: Logger;
  port?: number;
}

export interface Dashboard {
  url: string;
  close(): Promise<void>;
}

/** Actions offered as buttons on a task page (their inputs have defaults for everything). */
const TASK_ACTIONS = ['retrigger', 'rebuild-mozharness-archive'];
const SLUGID = /^[A-Za-z0-9_-]{22}$/;
const MAX_PUSHES = 30;
const LOG_LINES = 200;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function taskRow(t: {
  status: Pick<TaskStatus, 'taskId'> & { state: string };
  task?: TaskDefinition;
}): TaskRow {
  const th = (t.task?.extra?.treeherder ?? {}) as { symbol?: unknown; groupSymbol?: unknown };
  return {
    taskId: t.status.taskId,
    label: t.task?.metadata?.name ?? t.status.taskId,
    state: t.status.state,
    symbol: typeof th.symbol === 'string' && th.symbol ? th.symbol : '?',
    ...(typeof th.groupSymbol === 'string' ? { groupSymbol: th.groupSymbol } : {}),
  };
}

async function readBody(req: http.IncomingMessage, limit = 8192): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new HttpError(413, 'request body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function fetchText(url: string): Promise<string | undefined> {
  const res = await getBuffer(url, { retries: 0 }).catch(() => undefined);
  return res && res.status >= 200 && res.status < 300 ? res.body.toString('utf8') : undefined;
}

class DashboardData {
  private readonly queue: QueueClient;
  private readonly archives = new Map<string, PushArchive>();
  constructor(private readonly o: DashboardOptions) {
    this.queue = queueClient({ rootUrl: o.rootUrl, credentials: o.credentials });
  }

  async pushes(): Promise<PushView[]> {
    const recent = this.o.pushLog.list().slice(-MAX_PUSHES).reverse();
    return Promise.all(
      recent.map(async (push) => {
        const tasks = await listTaskGroup(this.queue, push.decisionTaskId).catch(() => []);
        let archive = this.archives.get(push.decisionTaskId);
        if (!archive?.sha256) {
          archive = await pushArchive(
            { queue: this.queue, index: indexClient({ rootUrl: this.o.rootUrl }) },
            push,
            this.o.config,
          ).catch(() => undefined);
          if (archive?.sha256) this.archives.set(push.decisionTaskId, archive);
        }
        return { push, tasks: tasks.map(taskRow), ...(archive ? { archive } : {}) };
      }),
    );
  }

  private async rows(ids: string[]): Promise<TaskRow[]> {
    return Promise.all(
      ids.map(async (id) => {
        const [task, status] = await Promise.all([
          this.queue.task(id).catch(() => undefined),
          this.queue.status(id).catch(() => undefined),
        ]);
        return taskRow({ task, status: status?.status ?? { taskId: id, state: 'unknown' } });
      }),
    );
  }

  private async logTail(
    taskId: string,
    state: string,
  ): Promise<{ lines: string[]; source: string }> {
    const live = this.o.liveLogs?.get(taskId);
    if (live && (state === 'running' || state === 'pending')) {
      return { lines: live.slice(-LOG_LINES), source: 'live, while the task runs' };
    }
    const url = this.queue.buildUrl(
      this.queue.getLatestArtifact,
      taskId,
      'public/logs/live_backing.log',
    );
    const text = await fetchText(url);
    if (text !== undefined) {
      return { lines: text.split('\n').slice(-LOG_LINES), source: 'public/logs/live_backing.log' };
    }
    return { lines: live?.slice(-LOG_LINES) ?? [], source: live ? 'live' : 'no log yet' };
  }

  async task(taskId: string, token: string): Promise<TaskPageData> {
    if (!SLUGID.test(taskId)) throw new HttpError(404, 'not a task id');
    const task = await this.queue.task(taskId).catch(() => undefined);
    if (!task) throw new HttpError(404, `task ${taskId} does not exist`);
    const status = (await this.queue.status(taskId)).status;
    const [dependencies, dependentsRes, artifactsRes, log] = await Promise.all([
      this.rows((task.dependencies ?? []).filter((d: string) => d !== task.taskGroupId)),
      this.queue.listDependentTasks(taskId).catch(() => ({ tasks: [] })),
      this.queue.listLatestArtifacts(taskId).catch(() => ({ artifacts: [] })),
      this.logTail(taskId, status.state),
    ]);
    const artifacts = (artifactsRes.artifacts ?? []).map((a) => ({
      name: String(a.name),
      contentType: a.contentType,
      url: this.queue.buildUrl(this.queue.getLatestArtifact, taskId, a.name),
    }));
    let actions: TaskPageData['actions'] = [];
    try {
      const doc = await fetchActionsJson(this.o.rootUrl, task.taskGroupId ?? taskId);
      actions = TASK_ACTIONS.flatMap((name) => {
        const a = selectAction(doc.actions, name, task.tags ?? {});
        return a ? [{ name: a.name, title: a.title, description: a.description }] : [];
      });
    } catch {
      // a group without actions.json (yet): no buttons
    }
    const push = this.o.pushLog.list().find((p) => p.decisionTaskId === task.taskGroupId);
    return {
      taskId,
      task,
      status,
      label: task.metadata?.name ?? taskId,
      ...(push ? { push } : {}),
      dependencies,
      dependents: (dependentsRes.tasks ?? []).map(taskRow),
      artifacts,
      log: log.lines,
      logSource: log.source,
      actions,
      token,
    };
  }

  async trigger(form: URLSearchParams): Promise<string> {
    const action = form.get('action') ?? '';
    const decisionTaskId = form.get('decisionTaskId') ?? '';
    const taskId = form.get('taskId') ?? '';
    if (!TASK_ACTIONS.includes(action)) throw new HttpError(400, `unknown action '${action}'`);
    if (!SLUGID.test(decisionTaskId) || !SLUGID.test(taskId)) {
      throw new HttpError(400, 'decisionTaskId and taskId must be task ids');
    }
    const r = await triggerAction({
      rootUrl: this.o.rootUrl,
      credentials: this.o.credentials,
      decisionTaskId,
      taskId,
      action,
      input: {},
      log: this.o.log,
    });
    return r.actionTaskId;
  }

  async lookup(revision: string): Promise<Record<string, unknown>> {
    const clients = {
      index: indexClient({ rootUrl: this.o.rootUrl }),
      queue: queueClient({ rootUrl: this.o.rootUrl }),
    };
    const found = await findArchive(clients, {
      project: this.o.project ?? 'mozilla-central',
      revision,
    });
    return { ...found };
  }
}

const HTML = 'text/html; charset=utf-8';

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // same-origin, not no-referrer: with no-referrer a form POST carries `Origin: null`
    'referrer-policy': 'same-origin',
    'x-frame-options': 'DENY',
    'content-security-policy':
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
      "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  });
  res.end(body);
}

/** One running dashboard: its data, its form token and the loopback addresses it answers for. */
interface Site {
  data: DashboardData;
  token: string;
  origin: string;
  allowedHosts: Set<string>;
}

/** POST /actions: a same-origin form with the page's token triggers the action, then 303. */
async function postAction(site: Site, req: http.IncomingMessage, res: http.ServerResponse) {
  const from = req.headers.origin;
  if (from !== undefined && !site.allowedHosts.has(from.replace(/^http:\/\//, '')))
    throw new HttpError(403, 'cross-origin request refused');
  if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    throw new HttpError(415, 'expected a form');
  }
  const form = new URLSearchParams(await readBody(req));
  const given = Buffer.from(form.get('token') ?? '');
  const expected = Buffer.from(site.token);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    throw new HttpError(403, 'missing or wrong token: reload the page and try again');
  }
  const actionTaskId = await site.data.trigger(form);
  res.writeHead(303, { location: `/?action=${encodeURIComponent(actionTaskId)}` });
  res.end();
}

/** The pushes page, with a note of the action task just created (after POST /actions). */
async function pushesIndex(site: Site, u: URL): Promise<string> {
  const done = u.searchParams.get('action');
  const flash =
    done && SLUGID.test(done)
      ? { text: 'Action task created; its tasks appear in the push when it has run:', taskId: done }
      : undefined;
  return pushesPage(await site.data.pushes(), flash);
}

async function handle(site: Site, req: http.IncomingMessage, res: http.ServerResponse) {
  if (!site.allowedHosts.has(String(req.headers.host ?? ''))) {
    throw new HttpError(421, 'the dashboard answers only requests for its loopback address');
  }
  const { data, token } = site;
  const u = new URL(req.url ?? '/', site.origin);
  const route = `${req.method} ${u.pathname}`;
  if (route === 'GET /dashboard.css') return send(res, 200, 'text/css', DASHBOARD_CSS);
  if (route === 'GET /dashboard.js') return send(res, 200, 'text/javascript', DASHBOARD_JS);
  if (route === 'GET /favicon.ico') return send(res, 204, 'image/x-icon', '');
  if (route === 'GET /') return send(res, 200, HTML, await pushesIndex(site, u));
  if (route === 'GET /fragments/pushes')
    return send(res, 200, HTML, pushesFragment(await data.pushes()));
  let m = /^GET \/task\/([^/]+)$/.exec(route);
  if (m) return send(res, 200, HTML, taskPage(await data.task(decodeURIComponent(m[1]!), token)));
  m = /^GET \/fragments\/task\/([^/]+)$/.exec(route);
  if (m)
    return send(res, 200, HTML, taskFragment(await data.task(decodeURIComponent(m[1]!), token)));
  if (route === 'GET /lookup') {
    const revision = (u.searchParams.get('revision') ?? '').trim();
    try {
      return send(res, 200, HTML, lookupPage(revision, await data.lookup(revision)));
    } catch (e) {
      return send(res, 404, HTML, lookupPage(revision, undefined, errorMessage(e)));
    }
  }
  if (route === 'POST /actions') return postAction(site, req, res);
  throw new HttpError(404, `no page at ${u.pathname}`);
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const site: Site = {
    data: new DashboardData(o),
    token: crypto.randomBytes(24).toString('base64url'),
    origin: '',
    allowedHosts: new Set<string>(),
  };
  const server = http.createServer((req, res) => {
    handle(site, req, res).catch((e) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500)
        o.log.warn('dashboard-request-failed', { url: req.url, error: errorMessage(e) });
      if (!res.headersSent) send(res, status, HTML, errorPage(status, errorMessage(e)));
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  site.origin = `http://127.0.0.1:${port}`;
  site.allowedHosts.add(`127.0.0.1:${port}`).add(`localhost:${port}`);
  return {
    url: `${site.origin}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
