// The lookup service's front door: the node:http handler. A found archive's whole answer
// (status, headers, body) is kept for the hit TTL and written without routing, so a cached hit
// costs about what a bare server's 302 does; every answer is counted in the metrics, and cached
// hits are logged one in `requestLogSampleRate`.
import type http from 'node:http';
import { errorMessage, isArchiveError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { LookupConfig } from '../config.js';
import { acceptsJson, HttpError, type Answer } from './answer.js';
import { TtlCache } from './cache.js';
import type { LatencyTally, LookupMetrics, RequestTally } from './metrics.js';

/** A prepared answer for the cached-hit fast path: status, headers, body. */
interface Prepared {
  status: number;
  headers: Record<string, string>;
  body: string;
  log: Record<string, unknown>;
  route: string;
}

/** A cached hit: its prepared answer and the tallies that count it. */
interface Ready extends Prepared {
  request: RequestTally;
  latency: LatencyTally;
}

export interface FrontDoorDeps {
  config: LookupConfig;
  metrics: LookupMetrics;
  log: Logger;
  now: () => number;
  dispatch(method: string, url: URL, accept: string): Promise<Answer & { route: string }>;
}

export class FrontDoor {
  /** Cached hits by URL, one cache for JSON answers and one for redirects. */
  private json: TtlCache<Ready>;
  private redirect: TtlCache<Ready>;
  private sampleCounter = 0;
  constructor(private deps: FrontDoorDeps) {
    this.json = new TtlCache(deps.config.cache.maxEntries, deps.now);
    this.redirect = new TtlCache(deps.config.cache.maxEntries, deps.now);
  }

  clear(): void {
    this.json.clear();
    this.redirect.clear();
  }

  private errorAnswer(e: unknown): Answer {
    if (e instanceof HttpError) {
      return {
        status: e.status,
        headers: e.headers,
        body: { error: e.message },
        log: { error: e.message },
      };
    }
    const code = isArchiveError(e) ? e.code : 'internal';
    const status =
      code === 'usage'
        ? 400
        : code === 'not-found'
          ? 404
          : code === 'unavailable'
            ? 503
            : code === 'not-allowed' || code === 'corrupt'
              ? 502
              : 500;
    return {
      status,
      headers: status === 503 ? { 'retry-after': '30' } : {},
      body: { error: errorMessage(e), code },
      log: { error: errorMessage(e), code },
    };
  }

  /** Cached hits are logged one in `requestLogSampleRate`; everything else always. */
  private logRequest(
    method: string,
    path: string,
    status: number,
    ms: number,
    fields: Record<string, unknown> | undefined,
    hit: boolean,
  ): void {
    const rate = this.deps.config.requestLogSampleRate ?? 100;
    if (hit && rate > 1 && this.sampleCounter++ % rate !== 0) return;
    this.deps.log.info('lookup.request', {
      method,
      path: path.split('?')[0],
      status,
      ms: Math.round(ms * 1000) / 1000,
      ...(hit && rate > 1 ? { sampled: `1/${rate}` } : {}),
      ...fields,
    });
  }

  private write(res: http.ServerResponse, method: string, p: Prepared): void {
    res.writeHead(p.status, p.headers);
    res.end(method === 'HEAD' ? undefined : p.body);
  }

  private prepare(a: Answer & { route: string }): Prepared {
    const body =
      a.body === undefined
        ? a.status >= 300 && a.status < 400
          ? ''
          : '{}'
        : JSON.stringify(a.body);
    const headers: Record<string, string> = { ...a.headers };
    if (body) headers['content-type'] = 'application/json; charset=utf-8';
    headers['content-length'] = String(Buffer.byteLength(body));
    return { status: a.status, headers, body, log: a.log ?? {}, route: a.route };
  }

  /** node:http request handler. */
  handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const accept = req.headers.accept ?? '';
    const raw = req.url ?? '/';
    const cache = acceptsJson(accept) ? this.json : this.redirect;
    if (method === 'GET' || method === 'HEAD') {
      const ready = cache.get(raw);
      if (ready) {
        this.write(res, method, ready);
        const ms = performance.now() - started;
        this.deps.metrics.answered(ready.request, ready.latency, ms / 1000);
        this.logRequest(method, raw, ready.status, ms, ready.log, true);
        return;
      }
    }
    let url: URL;
    try {
      url = new URL(raw, 'http://lookup.invalid');
    } catch {
      url = new URL('http://lookup.invalid/');
    }
    this.deps
      .dispatch(method, url, accept)
      .catch((e: unknown) => ({ ...this.errorAnswer(e), route: 'error' }))
      .then((a) => {
        const p = this.prepare(a);
        this.write(res, method, p);
        const outcome = a.outcome ?? 'other';
        const { metrics, config } = this.deps;
        if ((outcome === 'hit' || outcome === 'miss') && a.status < 400) {
          const ready: Ready = {
            ...p,
            log: { ...p.log, cache: 'hit' },
            request: metrics.requestTally(a.route, 'hit', a.status),
            latency: metrics.latency.tally(a.route),
          };
          cache.set(raw, ready, config.cache.hitTtlSeconds * 1000);
        }
        const ms = performance.now() - started;
        metrics.answered(
          metrics.requestTally(a.route, outcome, a.status),
          metrics.latency.tally(a.route),
          ms / 1000,
        );
        this.logRequest(method, url.pathname, a.status, ms, a.log, outcome === 'hit');
      });
  };
}
