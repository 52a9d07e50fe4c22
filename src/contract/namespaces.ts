// The Taskcluster Index namespaces of the archive: one builder and one parser for each.
//
//   <prefix>.v1.<project>.revision.<40hex>.mozharness               per push
//   <prefix>.v1.<project>.pushlog-id.<id>.mozharness                per push (hg pushes only)
//   <prefix>.v1.<project>.pushdate.<Y>.<M>.<D>.<YMDhms>.mozharness  per push
//   <prefix>.v1.<project>.latest.mozharness                         per push
//   <prefix>.cache.level-<L>.mozharness.hash.<treeDigest>           content-digest cache
//
// The per-push namespaces come from PUSH_ROUTES: the archive task's routes, the entries the
// decision task inserts when it reuses an archive, the action that re-targets a reused archive,
// and the parser all read that one list. Adding a route is adding an entry there.
import { readableLevels, trustLevel, type TrustLevel } from './levels.js';

/** Default index prefix (the trust domain of taskcluster/config.yml). */
export const DEFAULT_INDEX_PREFIX = 'mozharness';

/** The push facts a per-push namespace may carry (the decision parameters' names). */
export interface PushFacts {
  project: string;
  revision: string;
  /** '0' when the producer has no pushlog. */
  pushlog_id: string;
  /** Unix seconds. */
  pushdate: number;
}

/** One per-push index route. */
export interface PushRoute {
  name: string;
  /** The path between `<prefix>.v1.<project>.` and `.mozharness`, or undefined when this push has none. */
  path(push: PushFacts): string | undefined;
  /** The push facts a path of this route carries, or undefined when the path is not this route's. */
  parse(path: string): Partial<PushFacts> | undefined;
}

/** YYYY, MM, DD, YYYYMMDDhhmmss of a unix time, UTC. */
export function pushdateParts(pushdate: number): [string, string, string, string] {
  const iso = new Date(pushdate * 1000).toISOString(); // 2026-11-28T01:15:43.000Z
  const [y, m, d] = [iso.slice(0, 4), iso.slice(5, 7), iso.slice(8, 10)];
  return [y, m, d, `${y}${m}${d}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`];
}

const PUSHDATE_PATH = /^pushdate\.(\d{4})\.(\d{2})\.(\d{2})\.(\d{14})$/;

export const REVISION_ROUTE: PushRoute = {
  name: 'revision',
  path: (p) => `revision.${p.revision}`,
  parse: (path) => {
    const m = /^revision\.([0-9a-f]{12,40})$/.exec(path);
    return m ? { revision: m[1]! } : undefined;
  },
};

export const PUSHLOG_ID_ROUTE: PushRoute = {
  name: 'pushlog-id',
  path: (p) => (p.pushlog_id !== '0' ? `pushlog-id.${p.pushlog_id}` : undefined),
  parse: (path) => {
    const m = /^pushlog-id\.([1-9][0-9]*)$/.exec(path);
    return m ? { pushlog_id: m[1]! } : undefined;
  },
};

export const PUSHDATE_ROUTE: PushRoute = {
  name: 'pushdate',
  path: (p) => {
    const [y, m, d, full] = pushdateParts(p.pushdate);
    return `pushdate.${y}.${m}.${d}.${full}`;
  },
  parse: (path) => {
    const m = PUSHDATE_PATH.exec(path);
    if (!m) return undefined;
    const f = m[4]!;
    const iso = `${f.slice(0, 4)}-${f.slice(4, 6)}-${f.slice(6, 8)}T${f.slice(8, 10)}:${f.slice(10, 12)}:${f.slice(12, 14)}Z`;
    const t = Date.parse(iso);
    if (Number.isNaN(t) || `${m[1]}${m[2]}${m[3]}` !== f.slice(0, 8)) return undefined;
    return { pushdate: t / 1000 };
  },
};

export const LATEST_ROUTE: PushRoute = {
  name: 'latest',
  path: () => 'latest',
  parse: (path) => (path === 'latest' ? {} : undefined),
};

/** Every per-push route of the archive, in the order the archive task lists them. */
export const PUSH_ROUTES: PushRoute[] = [
  REVISION_ROUTE,
  PUSHLOG_ID_ROUTE,
  PUSHDATE_ROUTE,
  LATEST_ROUTE,
];

const ARCHIVE_LEAF = 'mozharness';

/** `<prefix>.v1.<project>`: the parent of every per-push namespace of a project. */
export function projectNamespace(prefix: string, project: string): string {
  return `${prefix}.v1.${project}`;
}

function pushNamespace(route: PushRoute, prefix: string, push: PushFacts): string | undefined {
  const p = route.path(push);
  return p === undefined
    ? undefined
    : `${projectNamespace(prefix, push.project)}.${p}.${ARCHIVE_LEAF}`;
}

/** The per-push namespaces of a push's archive, in PUSH_ROUTES order. */
export function pushIndexNamespaces(
  prefix: string,
  push: PushFacts,
  routes: readonly PushRoute[] = PUSH_ROUTES,
): string[] {
  const out: string[] = [];
  for (const r of routes) {
    const ns = pushNamespace(r, prefix, push);
    if (ns !== undefined) out.push(ns);
  }
  return out;
}

/** `<prefix>.v1.<project>.revision.<revision>.mozharness` */
export function revisionNamespace(prefix: string, project: string, revision: string): string {
  return pushNamespace(REVISION_ROUTE, prefix, {
    project,
    revision,
    pushlog_id: '0',
    pushdate: 0,
  })!;
}

/** `<prefix>.v1.<project>.revision`: listNamespaces of it gives the indexed revisions. */
export function revisionParentNamespace(prefix: string, project: string): string {
  return `${projectNamespace(prefix, project)}.revision`;
}

/** `<prefix>.v1.<project>.pushlog-id.<id>.mozharness` (undefined for pushlog id '0'). */
export function pushlogIdNamespace(
  prefix: string,
  project: string,
  pushlogId: string,
): string | undefined {
  return pushNamespace(PUSHLOG_ID_ROUTE, prefix, {
    project,
    revision: '',
    pushlog_id: pushlogId,
    pushdate: 0,
  });
}

/** `<prefix>.v1.<project>.pushdate.<Y>.<M>.<D>.<YMDhms>.mozharness` */
export function pushdateNamespace(prefix: string, project: string, pushdate: number): string {
  return pushNamespace(PUSHDATE_ROUTE, prefix, {
    project,
    revision: '',
    pushlog_id: '0',
    pushdate,
  })!;
}

/** `<prefix>.v1.<project>.latest.mozharness` */
export function latestNamespace(prefix: string, project: string): string {
  return pushNamespace(LATEST_ROUTE, prefix, {
    project,
    revision: '',
    pushlog_id: '0',
    pushdate: 0,
  })!;
}

/** `<prefix>.cache.level-<L>`: the parent of every cache entry a task of level L writes. */
export function cacheLevelNamespace(prefix: string, level: string | number): string {
  return `${prefix}.cache.level-${trustLevel(level)}`;
}

/** `<prefix>.cache.level-<L>.mozharness.hash.<treeDigest>` */
export function cacheNamespace(prefix: string, level: string | number, treeDigest: string): string {
  return `${cacheLevelNamespace(prefix, level)}.${ARCHIVE_LEAF}.hash.${treeDigest}`;
}

/** The cache namespaces a reader of `level` may read, in readableLevels() order. */
export function readableCacheNamespaces(
  prefix: string,
  level: string | number,
  treeDigest: string,
): string[] {
  return readableLevels(level).map((l) => cacheNamespace(prefix, l, treeDigest));
}

/** A parsed archive namespace. */
export type ParsedNamespace =
  | { route: 'cache'; prefix: string; level: TrustLevel; treeDigest: string }
  | ({ route: string; prefix: string; project: string } & Partial<PushFacts>);

const CACHE_RE = /^(.+)\.cache\.level-([1-3])\.mozharness\.hash\.([0-9a-f]{64})$/;
const PUSH_RE = /^(.+)\.v1\.([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.(.+)\.mozharness$/;

/** The parts of an archive namespace, or undefined when it is none of the archive's. */
export function parseNamespace(
  namespace: string,
  routes: readonly PushRoute[] = PUSH_ROUTES,
): ParsedNamespace | undefined {
  const c = CACHE_RE.exec(namespace);
  if (c) return { route: 'cache', prefix: c[1]!, level: trustLevel(c[2]!), treeDigest: c[3]! };
  const m = PUSH_RE.exec(namespace);
  if (!m) return undefined;
  for (const r of routes) {
    const facts = r.parse(m[3]!);
    if (facts) return { route: r.name, prefix: m[1]!, project: m[2]!, ...facts };
  }
  return undefined;
}

/** The parsed cache namespace, or undefined when `namespace` is not a content-digest cache entry. */
export function parseCacheNamespace(
  namespace: string,
): { prefix: string; level: TrustLevel; treeDigest: string } | undefined {
  const p = parseNamespace(namespace);
  return p && p.route === 'cache'
    ? {
        prefix: p.prefix,
        level: (p as { level: TrustLevel }).level,
        treeDigest: (p as { treeDigest: string }).treeDigest,
      }
    : undefined;
}

/** An index route (`index.<namespace>`) for a namespace, and back. */
export function indexRoute(namespace: string): string {
  return `index.${namespace}`;
}
export function routeNamespace(route: string): string | undefined {
  return route.startsWith('index.') ? route.slice('index.'.length) : undefined;
}

/** The content-digest cache route among a task's routes, parsed. */
export function cacheRouteOf(
  routes: readonly string[] | undefined,
): { prefix: string; level: TrustLevel; treeDigest: string; route: string } | undefined {
  for (const r of routes ?? []) {
    const ns = routeNamespace(r);
    const c = ns === undefined ? undefined : parseCacheNamespace(ns);
    if (c) return { ...c, route: r };
  }
  return undefined;
}

/** True when `route` is one of the archive's `latest` routes. */
export function isLatestRoute(route: string): boolean {
  const ns = routeNamespace(route);
  const p = ns === undefined ? undefined : parseNamespace(ns);
  return p?.route === LATEST_ROUTE.name;
}
