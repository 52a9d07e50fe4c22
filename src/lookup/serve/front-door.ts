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
import type { LookupMetrics } from './metrics.js';

/** A prepared answer for the cached-hit fast path: status, headers, body. */
interface Prepared {
  status: number;
  headers: Record<string, string>;
  body: string;
  log: Record<string, unknown>;
  route: string;
}

export interface FrontDoorDeps {
  config: LookupConfig;
  metrics: LookupMetrics;
  log: Logger;
  now: () => number;
  dispatch(method: string, url: URL, accept: string): Promise<Answer & { route: string }>;
}

export class FrontDoor {
  private prepared: TtlCache<Prepared>;
  private sampleCounter = 0;
  constructor(private deps: FrontDoorDeps) {
    this.prepared = new TtlCache(deps.config.cache.maxEntries, deps.now);
  }

  clear(): void {
    this.prepared.clear();
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
    started: bigint,
    fields: Record<string, unknown> | undefined,
    hit: boolean,
  ): void {
    const rate = this.deps.config.requestLogSampleRate ?? 100;
    if (hit && rate > 1 && this.sampleCounter++ % rate !== 0) return;
    this.deps.log.info('lookup.request', {
      method,
      path,
      status,
      ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
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
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    const accept = String(req.headers.accept ?? '');
    const raw = req.url ?? '/';
    const key = `${acceptsJson(accept) ? 'j' : 'r'}${raw}`;
    if (method === 'GET' || method === 'HEAD') {
      const ready = this.prepared.get(key);
      if (ready) {
        this.write(res, method, ready);
        this.observe(ready.route, 'hit', ready.status, started);
        this.logRequest(method, raw.split('?')[0]!, ready.status, started, ready.log, true);
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
        if ((outcome === 'hit' || outcome === 'miss') && a.status < 400) {
          this.prepared.set(
            key,
            { ...p, log: { ...p.log, cache: 'hit' } },
            this.deps.config.cache.hitTtlSeconds * 1000,
          );
        }
        this.observe(a.route, outcome, a.status, started);
        this.logRequest(method, url.pathname, a.status, started, a.log, outcome === 'hit');
      });
  };

  private observe(route: string, outcome: string, status: number, started: bigint): void {
    this.deps.metrics.requests.inc({ route, outcome, status: String(status) });
    this.deps.metrics.latency.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
  }
}
