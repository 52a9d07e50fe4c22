// The HTTP framework of the embedded Taskcluster services: one node:http server on one loopback
// port serving `<rootUrl>/api/<service>/v1/<route>` for queue, index, hooks, auth and
// worker-manager. The route table (routes.ts) is built from the API references
// taskcluster-client ships, so paths and verbs match upstream by construction; a method no
// service implements answers 501 naming it. Errors are upstream's JSON `{code, message,
// requestInfo}` with upstream statuses.
import http from 'node:http';
import { removeGivenScopes, satisfiesExpression } from 'taskcluster-lib-scopes';
import type { ApiEntry } from '../taskcluster/references.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { AuthProvider, AuthResult } from './auth.js';
import { renderScopeTemplate, type ScopeTemplate } from './authorize.js';
import { listenWithFallback } from './listen.js';
import { BodyTooLarge, parseRequestBody, readBody } from './request-body.js';
import { checkUrlParams, RouteTable, type RouteMatch } from './routes.js';
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
  private readonly routes = new RouteTable();
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
    return this.routes.table(service);
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
    const x = new Exchange(req, res, this.clock, this.log);
    if (req.method === 'OPTIONS') {
      sendJson(res, 200, undefined, {
        'access-control-allow-methods': 'GET,POST,PUT,DELETE,PATCH,OPTIONS',
        'access-control-allow-headers': 'authorization,content-type,x-taskcluster-trace-id',
        'access-control-max-age': '900',
      });
      return;
    }
    const found = this.routes.find(req.method, x.rawPath);
    if (found instanceof ApiError) {
      req.resume();
      x.fail(found);
      x.done(404, null);
      return;
    }
    x.entry = found.route.entry;
    x.params = found.params;
    let status = 500;
    let clientId: string | null = null;
    try {
      checkUrlParams(found.params);
      const buf = await this.readBody(req);
      x.body = parseRequestBody(buf, req.headers['content-type'], !!x.entry.input).body;
      const who: AuthResult = await this.auth.authenticate(req, buf);
      clientId = who.clientId;
      const result = await this.dispatch(found, this.context(x, who));
      status = result.status ?? 200;
      if (res.destroyed) return;
      sendJson(res, status, result.body, result.headers);
    } catch (e) {
      status = this.answerError(x, found, e);
    } finally {
      x.done(status, clientId);
    }
  }

  private async readBody(req: http.IncomingMessage): Promise<Buffer> {
    try {
      return await readBody(req, this.bodyLimit);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        throw new ApiError(
          'InputTooLarge',
          `request body exceeds the limit of ${this.bodyLimit} bytes`,
        );
      }
      throw e;
    }
  }

  /** What a handler sees of an authenticated request. */
  private context(x: Exchange, who: AuthResult): RequestContext {
    const entry = x.entry!;
    const params = x.params;
    const query: Record<string, string> = {};
    for (const [k, v] of x.search) if (k !== 'bewit') query[k] = v;
    const gone = new AbortController();
    x.res.once('close', () => {
      if (!x.res.writableFinished) gone.abort();
    });
    return {
      signal: gone.signal,
      entry,
      params,
      query,
      body: x.body,
      clientId: who.clientId,
      scopes: who.scopes,
      rootUrl: this.rootUrl,
      satisfies: (expr: ScopeExpression) => satisfiesExpression(who.scopes, expr),
      requireScopes: (expr: ScopeExpression) => requireScopes(who, expr),
      authorize: (extra: Record<string, unknown> = {}) => {
        const template = entry.scopes as ScopeTemplate | null | undefined;
        if (template) requireScopes(who, renderScopeTemplate(template, { ...params, ...extra }));
      },
    };
  }

  /** The registered handler's answer (authorized from the URL first when it can be), a built-in
   * answer (ping, version…), or 501 naming the method. */
  private async dispatch(
    { service, route }: RouteMatch,
    ctx: RequestContext,
  ): Promise<HandlerResult> {
    const name = route.entry.name;
    const handler: Handler | undefined = this.registered.get(service)?.handlers[name];
    if (handler) {
      if (route.authorizeFromUrl) ctx.authorize();
      return await handler(ctx);
    }
    const builtin = BUILTIN[name];
    if (builtin) return { body: builtin(Math.round((Date.now() - this.startedAt) / 1000)) };
    throw new ApiError(
      'NotImplemented',
      `${service}.${name} is not implemented by the embedded services`,
    );
  }

  /** Answer a handler's failure (an ApiError as itself, anything else as a logged 500). */
  private answerError(x: Exchange, { service, route }: RouteMatch, e: unknown): number {
    if (e instanceof ApiError) {
      if (!x.res.destroyed) x.fail(e);
      return e.status;
    }
    const api = route.entry.name;
    this.log.error('embedded-handler-failed', {
      service,
      api,
      error: e,
      stack: e instanceof Error ? e.stack : undefined,
    });
    if (!x.res.destroyed) {
      x.fail(new ApiError('InternalServerError', `internal error in ${service}.${api}`));
    }
    return 500;
  }
}

/** One request and its answer: what the error body and the request log line need. */
class Exchange {
  readonly started = Date.now();
  readonly rawPath: string;
  readonly search: URLSearchParams;
  entry: ApiEntry | undefined;
  params: Record<string, string> = {};
  body: unknown;

  constructor(
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    this.rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    this.search = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
  }

  /** Upstream's error body: `{code, message, requestInfo}` (and details, if any). */
  fail(e: ApiError): void {
    const headers: Record<string, string> = {};
    if (e.status === 401) headers['www-authenticate'] = 'hawk';
    const { payload = this.body ?? {}, ...details } = e.details;
    const requestInfo = {
      method: this.entry?.name,
      params: this.params,
      payload,
      time: this.clock.now().toISOString(),
    };
    sendJson(
      this.res,
      e.status,
      {
        code: e.code,
        message: e.message,
        requestInfo,
        ...(Object.keys(details).length ? { details } : {}),
      },
      headers,
    );
  }

  done(status: number, clientId: string | null): void {
    this.log.debug('embedded-request', {
      method: this.req.method,
      path: this.rawPath,
      api: this.entry?.name,
      status,
      clientId,
      ms: Date.now() - this.started,
    });
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
