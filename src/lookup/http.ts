// Small HTTP helpers for lookups: a JSON GET that follows redirects by hand so every hop can be
// checked against the hosts the caller allows (the lookup service never talks to a host that is
// not configured), with a timeout and no retries of 4xx.
import { ArchiveError, errorMessage } from '../util/errors.js';

export type HostCheck = (url: URL) => boolean;

export interface GetOptions {
  /** Called for every URL before it is requested; false → ArchiveError('not-allowed'). */
  allowUrl?: HostCheck;
  timeoutMs?: number;
  headers?: Record<string, string>;
  maxRedirects?: number;
  signal?: AbortSignal;
}

export interface GetResult {
  status: number;
  url: string;
  headers: Headers;
  body: Buffer;
}

/** GET `url`, following up to `maxRedirects` redirects, each checked with `allowUrl`. */
export async function getFollowing(url: string, opts: GetOptions = {}): Promise<GetResult> {
  let current = url;
  const max = opts.maxRedirects ?? 5;
  for (let hop = 0; ; hop++) {
    const u = new URL(current);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ArchiveError('not-allowed', `refusing to fetch ${u.protocol} URL ${current}`);
    }
    if (opts.allowUrl && !opts.allowUrl(u)) {
      throw new ArchiveError(
        'not-allowed',
        `refusing to contact ${u.host}: not a configured host`,
        {
          url: current,
        },
      );
    }
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? 30_000)];
    if (opts.signal) signals.push(opts.signal);
    let res: Response;
    try {
      res = await fetch(current, {
        redirect: 'manual',
        headers: opts.headers,
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      throw new ArchiveError(
        'unavailable',
        `GET ${u.origin}${u.pathname} failed: ${errorMessage(e)}`,
        {
          url: current,
        },
      );
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.arrayBuffer().catch(() => undefined);
      if (hop >= max) throw new ArchiveError('unavailable', `too many redirects from ${url}`);
      current = new URL(res.headers.get('location')!, current).href;
      continue;
    }
    let body: Buffer;
    try {
      body = Buffer.from(await res.arrayBuffer());
    } catch (e) {
      throw new ArchiveError('unavailable', `reading ${u.origin}${u.pathname}: ${errorMessage(e)}`);
    }
    return { status: res.status, url: current, headers: res.headers, body };
  }
}

/** GET a JSON document; 404 → ArchiveError('not-found'), other non-2xx → 'unavailable'. */
export async function getJson<T = unknown>(url: string, opts: GetOptions = {}): Promise<T> {
  const res = await getFollowing(url, {
    ...opts,
    headers: { accept: 'application/json', ...opts.headers },
  });
  if (res.status === 404) throw new ArchiveError('not-found', `not found: ${res.url}`);
  if (res.status < 200 || res.status >= 300) {
    throw new ArchiveError('unavailable', `GET ${res.url} answered ${res.status}`);
  }
  try {
    return JSON.parse(res.body.toString('utf8')) as T;
  } catch (e) {
    throw new ArchiveError('corrupt', `${res.url} is not JSON: ${errorMessage(e)}`);
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
