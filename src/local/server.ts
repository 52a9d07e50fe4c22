// The HTTP framework of the embedded Taskcluster services: one node:http server on one loopback
// port serving `<rootUrl>/api/<service>/v1/<route>` for queue, index, hooks and auth. The route
// table is built from the API references taskcluster-client ships (src/apis.js), so paths and
// verbs match upstream by construction; a method no service implements answers 501 naming it.
// Errors are upstream's JSON `{code, message, requestInfo}` with upstream statuses.
import http from 'node:http';
import { removeGivenScopes, satisfiesExpression } from 'taskcluster-lib-scopes';
import { apiEntries, type ApiEntry } from '../taskcluster/references.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { AuthProvider, AuthResult } from './auth.js';
import { authorizedFromUrl, renderScopeTemplate, type ScopeTemplate } from './authorize.js';
import { listenWithFallback } from './listen.js';
import { BodyTooLarge, parseRequestBody, readBody } from './request-body.js';
import {
  ApiError,
  systemClock,
  type Clock,
  type Handler,
  type HandlerResult,
  type RequestContext,
  type ScopeExpression,
  type Service,
} from './framework.js';

/** The upstream services the embedded server hosts. */
export const EMBEDDED_SERVICES = ['queue', 'index', 'hooks', 'auth', 'worker-manager'] as const;

/** Request bodies larger than this answer 413 InputTooLarge. */
const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;

export interface ServerOptions {
  /** A port to listen on; taken means `listen()` fails (default: a free port). */
  port?: number;
  /** The port of a previous start: used when free, else a free port is chosen. */
  rememberedPort?: number;
  host?: string;
  clock?: Clock;
  log?: Logger;
  /** Maximum request body in bytes (default 10 MiB). */
  bodyLimit?: number;
}

const SLUGID = /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;
const IDENT = /^[a-zA-Z0-9-_]{1,38}$/;

/** URL parameter patterns declared by upstream (services/queue/src/api.js `params`). */
const PARAM_PATTERNS: Record<string, RegExp> = {
  taskId: SLUGID,
  taskGroupId: SLUGID,
  runId: /^[1-9]*[0-9]+$/,
  provisionerId: IDENT,
  workerType: /^[a-z]([-a-z0-9]{0,36}[a-z0-9])?$/,
  workerGroup: IDENT,
  workerId: IDENT,
  taskQueueId: /^[a-zA-Z0-9-_]{1,38}\/[a-z]([-a-z0-9]{0,36}[a-z0-9])?$/,
  workerPoolId: /^[a-zA-Z0-9-_]{1,38}\/[a-z]([-a-z0-9]{0,36}[a-z0-9])?$/,
  name: /^[\x20-\x7e]+$/,
};

/**
 * Methods upstream added after taskcluster-client@87.1.3 (whose apis.js the table is built from):
 * routed too, so they answer 501 naming the method like every other unimplemented one.
 */
export const UPSTREAM_ADDITIONS: Record<string, ApiEntry[]> = {
  queue: [
    {
      type: 'function',
      name: 'changeTaskPriority',
      method: 'post',
      route: '/task/<taskId>/priority',
      args: ['taskId'],
      query: [],
      stability: 'experimental',
      title: 'Change Task Priority',
    },
    {
      type: 'function',
      name: 'changeTaskGroupPriority',
      method: 'post',
      route: '/task-group/<taskGroupId>/priority',
      args: ['taskGroupId'],
      query: [],
      stability: 'experimental',
      title: 'Change Task Group Priority',
    },
  ],
  auth: [
    {
      type: 'function',
      name: 'githubRepoToken',
      method: 'post',
      route: '/github/<appName>/<owner>/repo-token',
      args: ['appName', 'owner'],
      query: [],
      stability: 'experimental',
      title: 'Get a GitHub repository token',
    },
  ],
};

/** Parameters that may span several raw path segments when they come last (`{*name}` upstream). */
const GREEDY_PARAMS = new Set(['name', 'taskQueueId', 'workerPoolId']);

type Segment = { literal: string } | { param: string };

interface Route {
  service: string;
  entry: ApiEntry;
  /** The scope template is checked with the URL parameters before the handler runs. */
  authorizeFromUrl: boolean;
  method: string;
  segments: Segment[];
  greedy: boolean;
  literals: number;
}

function compile(service: string, entry: ApiEntry): Route {
  const segments: Segment[] = entry.route
    .slice(1)
    .split('/')
    .map((s) => {
      const m = /^<([^<>]+)>$/.exec(s);
      return m ? { param: m[1]! } : { literal: s };
    });
  const last = segments[segments.length - 1];
  const routeParams = segments.flatMap((s) => ('param' in s ? [s.param] : []));
  const template = entry.scopes as ScopeTemplate | null | undefined;
  return {
    service,
    entry,
    authorizeFromUrl: !!template && authorizedFromUrl(template, routeParams),
    method: entry.method.toUpperCase(),
    segments,
    greedy: !!last && 'param' in last && GREEDY_PARAMS.has(last.param),
    literals: segments.filter((s) => 'literal' in s).length,
  };
}

/** Match raw (still encoded) path segments; returns decoded params or undefined. */
function match(route: Route, raw: string[]): Record<string, string> | undefined {
  const segs = route.segments;
  if (raw.length !== segs.length && !(route.greedy && raw.length > segs.length)) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const isLast = i === segs.length - 1;
    const value = isLast && route.greedy ? raw.slice(i).join('/') : raw[i]!;
    let decoded: string;
    try {
      decoded = decodeURIComponent(value);
    } catch {
      return undefined;
    }
    if ('literal' in seg) {
      if (decoded !== seg.literal) return undefined;
    } else {
      params[seg.param] = decoded;
    }
  }
  return params;
}

const BUILTIN: Record<string, (uptimeSec: number) => unknown> = {
  ping: (uptime) => ({ alive: true, uptime }),
  lbheartbeat: () => ({}),
  heartbeat: () => ({}),
  version: () => ({
    source: 'https://github.com/taskcluster/taskcluster',
    version: '87.1.3',
    commit: 'embedded',
    build: 'mozharness-archive embedded services',
  }),
};

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const h: Record<string, string> = { 'access-control-allow-origin': '*', ...headers };
  if (body === undefined) {
    res.writeHead(status, h);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  h['content-type'] = 'application/json; charset=utf-8';
  h['content-length'] = String(Buffer.byteLength(text));
  res.writeHead(status, h);
  res.end(text);
}

/** One HTTP server hosting every registered service under `<rootUrl>/api/<service>/v1`. */
export class ApiServer {
  private readonly routes = new Map<string, Route[]>();
  private readonly registered = new Map<string, Service>();
  private readonly server: http.Server;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly host: string;
  private readonly port: number | undefined;
  private readonly rememberedPort: number | undefined;
  private readonly bodyLimit: number;
  private readonly startedAt = Date.now();
  private url: string | undefined;

  constructor(
    private readonly auth: AuthProvider,
    opts: ServerOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLogger;
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port;
    this.rememberedPort = opts.rememberedPort;
    this.bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
    for (const service of EMBEDDED_SERVICES) {
      const entries = apiEntries(service);
      for (const extra of UPSTREAM_ADDITIONS[service] ?? []) {
        if (!entries.some((e) => e.name === extra.name)) entries.push(extra);
      }
      const routes = entries.map((e) => compile(service, e));
      // literal segments win over parameters (e.g. `/tasks/indexes` over `/tasks/<namespace>`)
      routes.sort((a, b) => b.literals - a.literals || Number(a.greedy) - Number(b.greedy));
      this.routes.set(service, routes);
    }
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        this.log.error('embedded-request-crashed', { error: e });
        if (!res.headersSent) sendJson(res, 500, { code: 'InternalServerError', message: 'crash' });
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5000;
  }

  /** Host a service; its handlers are keyed by upstream method name. */
  register(service: Service): void {
    if (!this.routes.has(service.name)) {
      throw new Error(`the embedded server has no API reference for service '${service.name}'`);
    }
    this.registered.set(service.name, service);
  }

  /** The registered services (the sweeper calls their `sweep()`). */
  get services(): Service[] {
    return [...this.registered.values()];
  }

  /** The route table of a service (upstream method name, verb, route). */
  routeTable(service: string): Array<{ name: string; method: string; route: string }> {
    return (this.routes.get(service) ?? []).map((r) => ({
      name: r.entry.name,
      method: r.entry.method,
      route: r.entry.route,
    }));
  }

  async listen(): Promise<string> {
    const port = await listenWithFallback(this.server, {
      host: this.host,
      what: 'the embedded Taskcluster services',
      ...(this.port !== undefined ? { requested: this.port } : {}),
      ...(this.rememberedPort ? { remembered: this.rememberedPort } : {}),
      log: this.log,
    });
    this.url = `http://${this.host}:${port}`;
    this.log.info('embedded-services-listening', { rootUrl: this.url });
    return this.url;
  }

  get rootUrl(): string {
    if (!this.url) throw new Error('the embedded server is not listening yet');
    return this.url;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = Date.now();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const search = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
    const time = () => this.clock.now().toISOString();
    let entry: ApiEntry | undefined = undefined;
    let params: Record<string, string> = {};
    let body: unknown;
    const fail = (e: ApiError) => {
      const headers: Record<string, string> = {};
      if (e.status === 401) headers['www-authenticate'] = 'hawk';
      const { payload = body ?? {}, ...details } = e.details;
      sendJson(
        res,
        e.status,
        {
          code: e.code,
          message: e.message,
          requestInfo: { method: entry?.name, params, payload, time: time() },
          ...(Object.keys(details).length ? { details } : {}),
        },
        headers,
      );
    };
    const done = (status: number, clientId: string | null) =>
      this.log.debug('embedded-request', {
        method: req.method,
        path: rawPath,
        api: entry?.name,
        status,
        clientId,
        ms: Date.now() - started,
      });

    if (req.method === 'OPTIONS') {
      sendJson(res, 200, undefined, {
        'access-control-allow-methods': 'GET,POST,PUT,DELETE,PATCH,OPTIONS',
        'access-control-allow-headers': 'authorization,content-type,x-taskcluster-trace-id',
        'access-control-max-age': '900',
      });
      return;
    }

    const m = /^\/api\/([a-z-]+)\/v1(\/.*)?$/.exec(rawPath);
    const routes = m ? this.routes.get(m[1]!) : undefined;
    if (!m || !routes) {
      req.resume();
      fail(new ApiError('ResourceNotFound', `no such API endpoint: ${req.method} ${rawPath}`));
      done(404, null);
      return;
    }
    const service = m[1]!;
    const raw = (m[2] ?? '/').slice(1).split('/');
    let route: Route | undefined;
    for (const r of routes) {
      if (r.method !== req.method) continue;
      const p = match(r, raw);
      if (p) {
        route = r;
        params = p;
        break;
      }
    }
    if (!route) {
      req.resume();
      fail(
        new ApiError(
          'ResourceNotFound',
          `no such ${service} API endpoint: ${req.method} ${m[2] ?? '/'}`,
        ),
      );
      done(404, null);
      return;
    }
    entry = route.entry;

    let status = 500;
    let clientId: string | null = null;
    try {
      for (const [k, v] of Object.entries(params)) {
        const pattern = PARAM_PATTERNS[k];
        if (pattern && !pattern.test(v)) {
          throw new ApiError(
            'InvalidRequestArguments',
            `URL parameter ${k} '${v}' does not match ${pattern.source}`,
          );
        }
      }
      let buf: Buffer;
      try {
        buf = await readBody(req, this.bodyLimit);
      } catch (e) {
        if (e instanceof BodyTooLarge) {
          throw new ApiError(
            'InputTooLarge',
            `request body exceeds the limit of ${this.bodyLimit} bytes`,
          );
        }
        throw e;
      }
      body = parseRequestBody(buf, req.headers['content-type'], !!entry.input).body;
      const who: AuthResult = await this.auth.authenticate(req, buf);
      clientId = who.clientId;
      const query: Record<string, string> = {};
      for (const [k, v] of search) if (k !== 'bewit') query[k] = v;
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      const ctx: RequestContext = {
        signal: gone.signal,
        entry,
        params,
        query,
        body,
        clientId: who.clientId,
        scopes: who.scopes,
        rootUrl: this.rootUrl,
        satisfies: (expr: ScopeExpression) => satisfiesExpression(who.scopes, expr),
        requireScopes: (expr: ScopeExpression) => requireScopes(who, expr),
        authorize: (extra: Record<string, unknown> = {}) => {
          const template = entry!.scopes as ScopeTemplate | null | undefined;
          if (template) requireScopes(who, renderScopeTemplate(template, { ...params, ...extra }));
        },
      };
      const handler: Handler | undefined = this.registered.get(service)?.handlers[entry.name];
      let result: HandlerResult;
      if (handler && route.authorizeFromUrl) ctx.authorize();
      if (handler) {
        result = await handler(ctx);
      } else if (BUILTIN[entry.name]) {
        result = { body: BUILTIN[entry.name]!(Math.round((Date.now() - this.startedAt) / 1000)) };
      } else {
        throw new ApiError(
          'NotImplemented',
          `${service}.${entry.name} is not implemented by the embedded services`,
        );
      }
      status = result.status ?? 200;
      if (res.destroyed) return;
      sendJson(res, status, result.body, result.headers);
    } catch (e) {
      if (e instanceof ApiError) {
        status = e.status;
        if (!res.destroyed) fail(e);
      } else {
        status = 500;
        this.log.error('embedded-handler-failed', {
          service,
          api: entry.name,
          error: e,
          stack: e instanceof Error ? e.stack : undefined,
        });
        if (!res.destroyed) {
          fail(new ApiError('InternalServerError', `internal error in ${service}.${entry.name}`));
        }
      }
    } finally {
      done(status, clientId);
    }
  }
}

/**
 * The scope check behind `ctx.requireScopes` and `ctx.authorize`: 403 InsufficientScopes naming
 * what is missing. As upstream, an unauthenticated request (anonymous scopes only) gets the same
 * 403, worded "This request requires Taskcluster credentials that satisfy …"; 401 is only for
 * credentials that fail to authenticate.
 */
export function requireScopes(who: AuthResult, expr: ScopeExpression): void {
  if (satisfiesExpression(who.scopes, expr)) return;
  const missing = removeGivenScopes(who.scopes, expr);
  const shown = typeof expr === 'string' ? expr : JSON.stringify(expr, null, 2);
  if (who.clientId === null) {
    throw new ApiError(
      'InsufficientScopes',
      'This request requires Taskcluster credentials that satisfy the following scope ' +
        `expression:\n\n\`\`\`\n${shown}\n\`\`\`\n`,
      { required: expr, missing },
    );
  }
  throw new ApiError(
    'InsufficientScopes',
    `Client ID ${who.clientId} does not have sufficient scopes and is missing the following ` +
      `scopes: ${JSON.stringify(missing)}. This request requires the client to satisfy the ` +
      `scope expression ${JSON.stringify(expr)}`,
    { required: expr, missing },
  );
}
