// The route table of the embedded Taskcluster services, built from the API references
// taskcluster-client ships (src/apis.js), so paths and verbs match upstream by construction:
// which service and method a request path names, and its URL parameters, checked against the
// patterns upstream declares.
import { apiEntries, type ApiEntry } from '../taskcluster/references.js';
import { authorizedFromUrl, type ScopeTemplate } from './authorize.js';
import { ApiError } from './framework.js';

/** The upstream services the embedded server hosts. */
export const EMBEDDED_SERVICES = ['queue', 'index', 'hooks', 'auth', 'worker-manager'] as const;

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

export interface Route {
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

/** A request's route: the service, the method's compiled route and the decoded URL parameters. */
export interface RouteMatch {
  service: string;
  route: Route;
  params: Record<string, string>;
}

/** Every hosted service's routes, literal segments first. */
export class RouteTable {
  private readonly routes = new Map<string, Route[]>();

  constructor() {
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
  }

  has(service: string): boolean {
    return this.routes.has(service);
  }

  /** The route table of a service (upstream method name, verb, route). */
  table(service: string): Array<{ name: string; method: string; route: string }> {
    return (this.routes.get(service) ?? []).map((r) => ({
      name: r.entry.name,
      method: r.entry.method,
      route: r.entry.route,
    }));
  }

  /** The route of `method` `rawPath` (still encoded); a 404 ApiError naming what is unknown. */
  find(method: string | undefined, rawPath: string): RouteMatch | ApiError {
    const m = /^\/api\/([a-z-]+)\/v1(\/.*)?$/.exec(rawPath);
    const routes = m ? this.routes.get(m[1]!) : undefined;
    if (!m || !routes) {
      return new ApiError('ResourceNotFound', `no such API endpoint: ${method} ${rawPath}`);
    }
    const service = m[1]!;
    const raw = (m[2] ?? '/').slice(1).split('/');
    for (const route of routes) {
      if (route.method !== method) continue;
      const params = match(route, raw);
      if (params) return { service, route, params };
    }
    return new ApiError(
      'ResourceNotFound',
      `no such ${service} API endpoint: ${method} ${m[2] ?? '/'}`,
    );
  }
}

/** Throws InvalidRequestArguments for a URL parameter that breaks upstream's pattern. */
export function checkUrlParams(params: Record<string, string>): void {
  for (const [k, v] of Object.entries(params)) {
    const pattern = PARAM_PATTERNS[k];
    if (pattern && !pattern.test(v)) {
      throw new ApiError(
        'InvalidRequestArguments',
        `URL parameter ${k} '${v}' does not match ${pattern.source}`,
      );
    }
  }
}
