// The lookup service's routes: which path answers what, first match wins, each named for the
// metrics. The answers come from the service (`RouteTarget`); this file only reads paths.
import { HttpError, type Answer } from './answer.js';

export interface Route {
  name: string;
  /** Path segments → the answer, or undefined when the route does not match. */
  match(seg: string[], url: URL, json: boolean): Promise<Answer> | undefined;
}

/** What the routes ask the service for. */
export interface RouteTarget {
  /** /__heartbeat__, /__lbheartbeat__, /__version__; undefined for any other name. */
  dockerflow(name: string): Promise<Answer> | undefined;
  byRevision(project: string, revision: string, json: boolean): Promise<Answer>;
  latest(project: string, json: boolean): Promise<Answer>;
  digest(digest: string, json: boolean): Promise<Answer>;
  status(taskId: string, statusPath: string, legacy: boolean): Promise<Answer>;
  legacyArchive(seg: string[], url: URL): Promise<Answer>;
}

/** The path's segments, percent-decoded (a leading empty one dropped). */
export function pathSegments(pathname: string): string[] {
  return pathname
    .split('/')
    .filter((s, i) => i > 0 || s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new HttpError(400, `malformed path segment ${JSON.stringify(s)}`);
      }
    });
}

const v1 = (seg: string[], length: number) => seg[0] === 'v1' && seg.length === length;

export function routeTable(t: RouteTarget): Route[] {
  return [
    {
      name: 'heartbeat',
      match: (seg) => (seg.length === 1 ? t.dockerflow(seg[0]!) : undefined),
    },
    {
      name: 'revision',
      match: (seg, _url, json) =>
        v1(seg, 4) && seg[2] === 'revision' ? t.byRevision(seg[1]!, seg[3]!, json) : undefined,
    },
    {
      name: 'latest',
      match: (seg, _url, json) =>
        v1(seg, 3) && seg[2] === 'latest' && seg[1] !== 'digest' && seg[1] !== 'status'
          ? t.latest(seg[1]!, json)
          : undefined,
    },
    {
      name: 'digest',
      match: (seg, _url, json) =>
        v1(seg, 3) && seg[1] === 'digest' ? t.digest(seg[2]!, json) : undefined,
    },
    {
      name: 'status',
      match: (seg) =>
        v1(seg, 3) && seg[1] === 'status' ? t.status(seg[2]!, '/v1/status/', false) : undefined,
    },
    {
      name: 'legacy-archive',
      match: (seg, url) =>
        seg[0] === 'archiver' && seg[1] === 'hgmo' && seg.length >= 4
          ? t.legacyArchive(seg, url)
          : undefined,
    },
    {
      name: 'legacy-status',
      match: (seg) =>
        seg[0] === 'archiver' && seg[1] === 'status' && seg.length === 3
          ? t.status(seg[2]!, '/archiver/status/', true)
          : undefined,
    },
  ];
}
