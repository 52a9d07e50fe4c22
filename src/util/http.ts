// The project's one HTTP client, on undici. Every request goes through shared keep-alive pools;
// connect, header and body-idle timeouts are undici's own (a body whose reader is the slow side
// is paused, never timed out). On top sits the project's policy: redirects are followed by hand
// so the caller's allow-list vets the first URL and every hop; network errors, timeouts and
// 5xx/408/429 are retried with util/retry's policy; any other status (a 404 above all) is handed
// back at once for the caller to judge; URLs are described without userinfo or query strings,
// which can carry credentials.
import { PassThrough, type Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { ArchiveError, errorMessage } from './errors.js';
import { silentLogger, type Logger } from './log.js';
import { TransientError, retrying, type RetryPolicy } from './retry.js';

export type HostCheck = (url: URL) => boolean;

export interface HttpOptions extends RetryPolicy {
  /** Time to open the TCP (and TLS) connection (default 10 s). */
  connectTimeoutMs?: number;
  /** No response headers, or no body byte while the reader waits, for this long fails the attempt (default 30 s). */
  idleTimeoutMs?: number;
  /** The whole call, retries included, within this long ('unavailable' past it). */
  timeoutMs?: number;
  /** Redirects followed per attempt (default 5). */
  maxRedirects?: number;
  headers?: Record<string, string>;
  log?: Logger;
  /** Told before each retry's wait. */
  onRetry?: (attempt: number, reason: string, delayMs: number) => void;
  /** Called with every URL actually requested (first request, retries, redirects). */
  onRequest?: (url: string) => void;
  /** Vets the first URL and every redirect target; false refuses it (ArchiveError 'not-allowed'). */
  allowUrl?: HostCheck;
}

export type HttpHeaders = Record<string, string | string[] | undefined>;

export interface HttpResponse {
  status: number;
  headers: HttpHeaders;
  body: Readable;
  /** The final URL after redirects. */
  url: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_REDIRECTS = 5;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Statuses another attempt may cure: 5xx, request timeout, too many requests. */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** `url` safe for logs and errors: no userinfo, and `?…` in place of a query string. */
export function describeUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<invalid URL>';
  }
}

// undici loads with the first request: loading it costs more than the rest of a small command's
// start, and most commands (digest or build of a local tree, --help) make none.
let undici: Promise<typeof import('undici')> | undefined;
const loadUndici = () => (undici ??= import('undici'));

// One keep-alive pool set per connect timeout (undici sets it on the agent, not the request).
// Idle pooled sockets are unreferenced: a process need not close them to exit.
const agents = new Map<number, Agent>();
async function agentFor(connectTimeoutMs: number): Promise<Dispatcher> {
  const { Agent } = await loadUndici();
  let agent = agents.get(connectTimeoutMs);
  if (!agent) {
    agent = new Agent({ connect: { timeout: connectTimeoutMs }, keepAliveTimeout: 4_000 });
    agents.set(connectTimeoutMs, agent);
  }
  return agent;
}

/** A URL the client may request: http(s) and, when the caller has an allow-list, on it. */
export function checkRequestUrl(url: string | URL, allowUrl?: HostCheck): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ArchiveError('usage', `not a URL: ${JSON.stringify(String(url))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ArchiveError(
      'not-allowed',
      `refusing ${u.protocol} URL ${describeUrl(u)} (http or https only)`,
    );
  }
  if (allowUrl && !allowUrl(u)) {
    throw new ArchiveError(
      'not-allowed',
      `refusing to contact ${u.host}: not an allowed host (${describeUrl(u)})`,
      { url: describeUrl(u) },
    );
  }
  return u;
}

function abortedError(): ArchiveError {
  return new ArchiveError('unavailable', 'request aborted');
}

/** Discard a body we will not read, without holding its connection. */
function discard(body: Readable): void {
  body.resume();
}

async function requestOnce(u: URL, opts: HttpOptions): Promise<HttpResponse> {
  const idle = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  opts.onRequest?.(u.href);
  const { request } = await loadUndici();
  const dispatcher = await agentFor(opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(u, {
      method: 'GET',
      dispatcher,
      headers: { 'user-agent': 'mozharness-archive', ...opts.headers },
      headersTimeout: idle,
      bodyTimeout: idle,
      signal: opts.signal,
    });
  } catch (e) {
    if (opts.signal?.aborted) throw abortedError();
    throw new TransientError(`${describeUrl(u)}: ${networkReason(e, idle)}`);
  }
  return { status: res.statusCode, headers: res.headers, body: res.body, url: u.href };
}

/**
 * The response body as the caller reads it: undici's body piped through a PassThrough (so
 * backpressure still pauses the socket, and a paused body is never timed out) whose errors say
 * what happened: a stall is ArchiveError 'unavailable' naming the idle time and the URL.
 */
function describedBody(body: Readable, u: URL, idleMs: number): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  body.on('error', (e) => {
    const code = (e as { code?: string }).code;
    out.destroy(
      code === 'UND_ERR_BODY_TIMEOUT'
        ? new ArchiveError(
            'unavailable',
            `idle timeout: no data for ${idleMs} ms from ${describeUrl(u)}`,
            { idleTimeoutMs: idleMs },
          )
        : e,
    );
  });
  out.on('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  // An error before the caller listens must not crash the process: it stays in out.errored and
  // reaches whoever reads or pipes the body.
  out.on('error', () => {});
  body.pipe(out);
  return out;
}

/** True for the error of a body that stalled (no byte for the idle timeout while read). */
export function isIdleTimeout(e: unknown): boolean {
  return e instanceof ArchiveError && e.details.idleTimeoutMs !== undefined;
}

/** What went wrong on the wire, in words (undici's codes for its timeouts). */
export function networkReason(e: unknown, idleMs?: number): string {
  const code = (e as { code?: string })?.code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return `connect timeout (${errorMessage(e)})`;
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return `idle timeout: no response in ${idleMs} ms`;
  if (code === 'UND_ERR_BODY_TIMEOUT') return `idle timeout: no data for ${idleMs} ms`;
  const cause = (e as { cause?: unknown })?.cause;
  return cause ? `${errorMessage(e)} (${errorMessage(cause)})` : errorMessage(e);
}

/** GET `url`, following redirects (each target vetted), with undici's own body. */
async function follow(url: string, opts: HttpOptions): Promise<HttpResponse> {
  const log = opts.log ?? silentLogger;
  const max = opts.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  let current = checkRequestUrl(url, opts.allowUrl);
  for (let hop = 0; ; hop++) {
    if (opts.signal?.aborted) throw abortedError();
    const res = await requestOnce(current, opts);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.status) || typeof location !== 'string') return res;
    discard(res.body);
    if (hop >= max) {
      throw new ArchiveError('unavailable', `too many redirects from ${describeUrl(url)}`);
    }
    let next: URL;
    try {
      next = checkRequestUrl(new URL(location, current), opts.allowUrl);
    } catch (e) {
      if (!(e instanceof ArchiveError) || e.code === 'usage') throw e;
      throw new ArchiveError(
        'not-allowed',
        `redirect from ${describeUrl(current)} to ${describeUrl(location)} refused: ${e.message}`,
        e.details,
      );
    }
    log.debug('http.redirect', {
      from: describeUrl(current),
      to: describeUrl(next),
      status: res.status,
    });
    current = next;
  }
}

/**
 * One attempt: GET `url`, following redirects (each target vetted by `allowUrl`), and return
 * the final response whatever its status. Network errors and timeouts throw TransientError.
 */
export async function openUrl(url: string, opts: HttpOptions = {}): Promise<HttpResponse> {
  const res = await follow(url, opts);
  const idle = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return { ...res, body: describedBody(res.body, new URL(res.url), idle) };
}

/** Run `call` with `options.signal` joined to the whole-call deadline of `options.timeoutMs`. */
async function withDeadline<T>(
  url: string,
  options: HttpOptions,
  call: (opts: HttpOptions) => Promise<T>,
): Promise<T> {
  if (options.timeoutMs === undefined) return call(options);
  const signals = [AbortSignal.timeout(options.timeoutMs)];
  if (options.signal) signals.push(options.signal);
  const opts = { ...options, signal: AbortSignal.any(signals) };
  try {
    return await call(opts);
  } catch (e) {
    if (opts.signal.aborted && !options.signal?.aborted) {
      throw new ArchiveError(
        'unavailable',
        `GET ${describeUrl(url)} took over ${options.timeoutMs} ms`,
      );
    }
    throw e;
  }
}

/**
 * Run `attempt` under the client's retry policy, logging each retry as `http.retry`; once the
 * retries are spent, ArchiveError 'unavailable' naming `what`, the attempts and the last reason.
 */
function retryingHttp<T>(
  what: string,
  opts: HttpOptions,
  attempt: (n: number) => Promise<T>,
): Promise<T> {
  const log = opts.log ?? silentLogger;
  return retrying(attempt, opts, {
    onRetry: (n, e, delayMs) => {
      log.warn('http.retry', { url: what, attempt: n, reason: e.message, delayMs });
      opts.onRetry?.(n, e.message, delayMs);
    },
    exhausted: (e, attempts) =>
      new ArchiveError(
        'unavailable',
        `GET ${what} failed after ${attempts} attempt(s): ${e.message}`,
        {
          url: what,
          attempts,
          reason: e.message,
        },
      ),
    aborted: abortedError,
  });
}

/**
 * GET `url`: redirects followed and vetted, network errors and 5xx/408/429 retried (bounded by
 * `retries` and `maxRetryTimeMs`); any other status is returned as it is.
 */
export function httpGet(url: string, options: HttpOptions = {}): Promise<HttpResponse> {
  return withDeadline(url, options, (opts) =>
    retryingHttp(describeUrl(url), opts, async () => {
      const res = await openUrl(url, opts);
      if (!isTransientStatus(res.status)) return res;
      discard(res.body);
      throw new TransientError(`HTTP ${res.status}`);
    }),
  );
}

/** Read a whole (small) response body, still under the idle timeout. */
export async function readBody(body: Readable, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
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
  return Buffer.concat(chunks);
}

export async function readText(body: Readable, maxBytes?: number): Promise<string> {
  return (await readBody(body, maxBytes)).toString('utf8');
}

export interface BufferedResponse {
  status: number;
  url: string;
  headers: HttpHeaders;
  body: Buffer;
}

/**
 * GET `url` (as httpGet) and read its whole body, at most `maxBytes`; a body that breaks off is
 * retried like a failed request.
 */
export function getBuffer(
  url: string,
  options: HttpOptions & { maxBytes?: number } = {},
): Promise<BufferedResponse> {
  return withDeadline(url, options, (opts) =>
    retryingHttp(describeUrl(url), opts, async () => {
      const res = await follow(url, opts);
      if (isTransientStatus(res.status)) {
        discard(res.body);
        throw new TransientError(`HTTP ${res.status}`);
      }
      try {
        const body = await readBody(res.body, options.maxBytes);
        return { status: res.status, url: res.url, headers: res.headers, body };
      } catch (e) {
        if (e instanceof ArchiveError) throw e;
        if (opts.signal?.aborted) throw abortedError();
        const reason = networkReason(e, opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
        throw new TransientError(`reading ${describeUrl(res.url)}: ${reason}`);
      }
    }),
  );
}

/** GET a JSON document; 404 → ArchiveError('not-found'), other non-2xx → 'unavailable'. */
export async function getJson<T = unknown>(url: string, opts: HttpOptions = {}): Promise<T> {
  const res = await getBuffer(url, {
    ...opts,
    headers: { accept: 'application/json', ...opts.headers },
  });
  const where = describeUrl(res.url);
  if (res.status === 404) throw new ArchiveError('not-found', `not found: ${where}`);
  if (res.status < 200 || res.status >= 300) {
    throw new ArchiveError('unavailable', `GET ${where} answered ${res.status}`, {
      status: res.status,
    });
  }
  try {
    return JSON.parse(res.body.toString('utf8')) as T;
  } catch (e) {
    throw new ArchiveError('corrupt', `${where} is not JSON: ${errorMessage(e)}`);
  }
}

/** Host allow-list check from a list of origins or host names (`https://a.example`, `127.0.0.1:8080`). */
export function hostAllowList(allowed: Array<string | undefined>): HostCheck {
  const hosts = new Set<string>();
  for (const a of allowed) {
    if (!a) continue;
    try {
      hosts.add(new URL(a.includes('://') ? a : `http://${a}`).host.toLowerCase());
    } catch {
      // ignore unparsable entries; the config schema reports them
    }
  }
  return (u: URL) => hosts.has(u.host.toLowerCase());
}
