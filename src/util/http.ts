// A small, dependable HTTP GET for downloads: connect and idle timeouts (the idle timeout also
// watches the body stream), retries of 5xx and network errors with jittered exponential backoff
// bounded in count and total time, redirects (max 5). 4xx responses are returned as they are: the
// caller decides what a 404 means.
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { ArchiveError, errorMessage } from './errors.js';
import { silentLogger, type Logger } from './log.js';
import { backoffDelay, sleep } from './retry.js';

export interface HttpOptions {
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** No retry starts once this much time has passed since the first attempt (default 60 s). */
  maxRetryTimeMs?: number;
  /** First backoff delay (default 500 ms); doubles per attempt up to maxDelayMs (default 10 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  headers?: Record<string, string>;
  log?: Logger;
  signal?: AbortSignal;
  onRetry?: (attempt: number, reason: string, delayMs: number) => void;
  /** Called with every URL actually requested (first request, retries, redirects). */
  onRequest?: (url: string) => void;
  /** Vets every redirect target; return false to refuse it (ArchiveError 'not-allowed'). */
  allowUrl?: (url: string) => boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** The final URL after redirects. */
  url: string;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_RETRIES = 4;
export const DEFAULT_MAX_RETRY_TIME_MS = 60_000;

export { backoffDelay };

/** Network failures and 5xx: worth another try. */
class Transient extends Error {}

const aborted = () => new ArchiveError('unavailable', 'request aborted');

/**
 * Idle watchdog on a response body: when no byte arrives for `idleMs` while nothing is waiting in
 * the stream's buffer (so the consumer is not the slow side), the body fails with 'unavailable'.
 */
function watchBody(body: http.IncomingMessage, url: string, idleMs: number): void {
  let last = Date.now();
  // Watch arrivals without adding a 'data' listener (which would switch the stream to flowing).
  const push = body.push.bind(body);
  body.push = (chunk: unknown, encoding?: BufferEncoding) => {
    last = Date.now();
    return push(chunk, encoding);
  };
  const tick = Math.max(10, Math.min(1000, Math.floor(idleMs / 4)));
  const timer = setInterval(() => {
    if (body.readableLength > 0) last = Date.now();
    else if (Date.now() - last >= idleMs) {
      clearInterval(timer);
      body.destroy(
        new ArchiveError('unavailable', `idle timeout: no data for ${idleMs} ms from ${url}`),
      );
    }
  }, tick);
  timer.unref();
  const stop = () => clearInterval(timer);
  body.once('end', stop);
  body.once('close', stop);
  body.once('error', stop);
}

function once(url: string, opts: HttpOptions): Promise<HttpResponse> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : null;
    if (!mod) {
      reject(new ArchiveError('usage', `unsupported URL scheme in ${url} (http or https only)`));
      return;
    }
    opts.onRequest?.(url);
    let settled = false;
    const req = mod.get(u, {
      headers: { 'user-agent': 'mozharness-archive', ...opts.headers },
      agent: false,
      signal: opts.signal,
    });
    const connectTimer = setTimeout(() => {
      req.destroy(new Transient(`connect timeout after ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    req.on('socket', (socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once('connect', () => clearTimeout(connectTimer));
    });
    // Waiting for the response headers counts as idleness too.
    const headerTimer = setTimeout(() => {
      req.destroy(new Transient(`idle timeout: no response from ${url} in ${idleTimeoutMs} ms`));
    }, idleTimeoutMs);
    req.on('response', (r) => {
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(headerTimer);
      // An error before the caller listens must not crash the process: it stays in r.errored
      // and reaches whoever reads or pipes the body.
      r.on('error', () => {});
      watchBody(r, url, idleTimeoutMs);
      resolve({ status: r.statusCode ?? 0, headers: r.headers, body: r, url });
    });
    req.on('error', (e) => {
      clearTimeout(connectTimer);
      clearTimeout(headerTimer);
      if (settled) return;
      settled = true;
      if (opts.signal?.aborted) reject(aborted());
      else reject(e instanceof Transient ? e : new Transient(errorMessage(e)));
    });
  });
}

/**
 * GET `url`. Retries 5xx and network errors (bounded by `retries` and `maxRetryTimeMs`), follows
 * up to 5 redirects, returns any other status as is. Exhausted retries: ArchiveError 'unavailable'.
 */
export async function httpGet(url: string, opts: HttpOptions = {}): Promise<HttpResponse> {
  const log = opts.log ?? silentLogger;
  const retries = opts.retries ?? DEFAULT_RETRIES;
  const maxRetryTimeMs = opts.maxRetryTimeMs ?? DEFAULT_MAX_RETRY_TIME_MS;
  const start = Date.now();
  let current = url;
  let redirects = 0;
  let attempt = 0;
  while (true) {
    if (opts.signal?.aborted) throw aborted();
    let reason: string;
    try {
      const res = await once(current, opts);
      if ([301, 302, 303, 307, 308].includes(res.status) && res.headers.location) {
        res.body.resume();
        const next = new URL(String(res.headers.location), current).toString();
        if (++redirects > 5)
          throw new ArchiveError('unavailable', `too many redirects from ${url}`);
        if (opts.allowUrl && !opts.allowUrl(next)) {
          throw new ArchiveError(
            'not-allowed',
            `redirect from ${current} to ${next} refused: not an allowed URL`,
          );
        }
        log.debug('http.redirect', { from: current, to: next, status: res.status });
        current = next;
        continue;
      }
      if (res.status < 500) return res;
      res.body.resume();
      reason = `HTTP ${res.status}`;
    } catch (e) {
      if (!(e instanceof Transient)) throw e;
      reason = e.message;
    }
    const delayMs = backoffDelay(attempt, opts.baseDelayMs, opts.maxDelayMs);
    if (attempt >= retries || Date.now() - start + delayMs > maxRetryTimeMs) {
      throw new ArchiveError(
        'unavailable',
        `GET ${current} failed after ${attempt + 1} attempt(s): ${reason}`,
        { url: current, attempts: attempt + 1, reason },
      );
    }
    attempt++;
    log.warn('http.retry', { url: current, attempt, reason, delayMs });
    opts.onRetry?.(attempt, reason, delayMs);
    await sleep(delayMs, opts.signal).catch(() => {
      throw aborted();
    });
  }
}

/** Read a whole (small) response body as a string, still under the idle timeout. */
export async function readText(body: Readable, maxBytes = 16 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += (chunk as Buffer).length;
    if (n > maxBytes) {
      body.destroy();
      throw new ArchiveError('limit-exceeded', `response body over ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
