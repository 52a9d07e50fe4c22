// Verified download: stream a URL into a temp file beside the destination, hashing on the way;
// retry 5xx, network errors, stalls and short bodies with jittered exponential backoff; refuse a
// wrong sha256 or size; rename into place only when verified. Nothing half-written ever appears
// at `dest`.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { backoffDelay, sleep } from '../util/retry.js';
import { createProgress } from '../util/progress.js';

export interface DownloadOptions {
  /** Expected sha256 (hex); the download is refused when the bytes differ. */
  sha256?: string;
  /** Expected size in bytes. */
  size?: number;
  /** true: a progress bar on stderr when it is a terminal; or a callback. */
  progress?: boolean | ((done: number, total?: number) => void);
  log?: Logger;
  signal?: AbortSignal;
  /** Retries after the first attempt (default 5). */
  retries?: number;
  connectTimeoutMs?: number;
  /** No byte for this long (before or during the body) fails the attempt (default 60 s). */
  idleTimeoutMs?: number;
  /** Stop retrying once this much time has passed (default 5 min). */
  maxRetryTimeMs?: number;
  /** First backoff delay (default 500 ms; doubles, with jitter, up to 15 s). */
  retryBaseMs?: number;
  maxRedirects?: number;
  headers?: Record<string, string>;
  onRetry?: (attempt: number, error: Error, delayMs: number) => void;
  /** Vets the URL and every redirect target; false refuses it (ArchiveError 'not-allowed'). */
  allowUrl?: (url: URL) => boolean;
}

export interface DownloadResult {
  sha256: string;
  size: number;
}

/** A failure that another attempt may cure. */
class Transient extends Error {}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function describeUrl(url: string): string {
  // Never print query strings: signed URLs carry credentials there.
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<invalid URL>';
  }
}

function checkUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ArchiveError('usage', `not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ArchiveError('usage', `only http and https downloads are supported: ${u.protocol}`);
  }
  return u;
}

interface Attempt {
  sha256: string;
  size: number;
}

/** GET `url` (following redirects) into `tmp`, hashing on the way. */
function attemptOnce(
  url: string,
  tmp: string,
  opts: DownloadOptions,
  onBytes: (done: number, total?: number) => void,
): Promise<Attempt> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  const maxRedirects = opts.maxRedirects ?? 10;

  const get = (current: URL, redirectsLeft: number): Promise<Attempt> =>
    new Promise<Attempt>((resolve, reject) => {
      const lib = current.protocol === 'https:' ? https : http;
      let connectTimer: NodeJS.Timeout | undefined;
      const req = lib.get(
        current,
        { headers: { 'user-agent': 'mozharness-archive', ...opts.headers }, signal: opts.signal },
        (res) => {
          const status = res.statusCode ?? 0;
          if (REDIRECTS.has(status) && res.headers.location) {
            res.resume();
            if (redirectsLeft <= 0) {
              reject(
                new ArchiveError('unavailable', `too many redirects from ${describeUrl(url)}`),
              );
              return;
            }
            let next: URL;
            try {
              next = checkUrl(new URL(res.headers.location, current).href);
              checkAllowed(next, opts);
            } catch (e) {
              reject(e);
              return;
            }
            get(next, redirectsLeft - 1).then(resolve, reject);
            return;
          }
          if (status >= 500 || status === 408 || status === 429) {
            res.resume();
            reject(new Transient(`HTTP ${status} from ${describeUrl(current.href)}`));
            return;
          }
          if (status !== 200) {
            res.resume();
            const code =
              status === 404 || status === 410
                ? 'not-found'
                : status === 401 || status === 403
                  ? 'not-allowed'
                  : 'unavailable';
            reject(
              new ArchiveError(code, `HTTP ${status} from ${describeUrl(current.href)}`, {
                status,
                url: describeUrl(current.href),
              }),
            );
            return;
          }
          const lengthHeader = res.headers['content-length'];
          const expectedLength =
            lengthHeader !== undefined && /^\d+$/.test(lengthHeader)
              ? Number(lengthHeader)
              : undefined;
          if (
            opts.size !== undefined &&
            expectedLength !== undefined &&
            expectedLength !== opts.size
          ) {
            res.resume();
            reject(
              new ArchiveError(
                'checksum-mismatch',
                `${describeUrl(current.href)} is ${expectedLength} bytes, expected ${opts.size}`,
                { expected: opts.size, actual: expectedLength },
              ),
            );
            return;
          }
          const hash = createHash('sha256');
          let bytes = 0;
          const counter = new Transform({
            transform(chunk: Buffer, _enc, cb) {
              hash.update(chunk);
              bytes += chunk.length;
              if (opts.size !== undefined && bytes > opts.size) {
                cb(
                  new ArchiveError(
                    'checksum-mismatch',
                    `${describeUrl(current.href)} sent more than the expected ${opts.size} bytes`,
                  ),
                );
                return;
              }
              onBytes(bytes, expectedLength ?? opts.size);
              cb(null, chunk);
            },
          });
          pipeline(res, counter, fs.createWriteStream(tmp, { flags: 'w', mode: 0o644 })).then(
            () => {
              if (!res.complete || (expectedLength !== undefined && bytes !== expectedLength)) {
                reject(
                  new Transient(
                    `short body from ${describeUrl(current.href)}: ${bytes} of ${expectedLength ?? '?'} bytes`,
                  ),
                );
                return;
              }
              resolve({ sha256: hash.digest('hex'), size: bytes });
            },
            (e: unknown) => {
              if (e instanceof ArchiveError) reject(e);
              else if ((e as { name?: string })?.name === 'AbortError') reject(e);
              else
                reject(
                  new Transient(
                    `download of ${describeUrl(current.href)} broke off after ${bytes} bytes: ${errorMessage(e)}`,
                  ),
                );
            },
          );
        },
      );
      req.on('socket', (socket) => {
        if (socket.connecting) {
          connectTimer = setTimeout(
            () =>
              req.destroy(
                new Transient(`connect timeout after ${connectTimeoutMs} ms to ${current.host}`),
              ),
            connectTimeoutMs,
          );
          socket.once('connect', () => clearTimeout(connectTimer));
        }
      });
      req.setTimeout(idleTimeoutMs, () =>
        req.destroy(
          new Transient(`no data for ${idleTimeoutMs} ms from ${describeUrl(current.href)}`),
        ),
      );
      req.on('error', (e) => {
        clearTimeout(connectTimer);
        if (e instanceof Transient || e instanceof ArchiveError || e.name === 'AbortError')
          reject(e);
        else reject(new Transient(`${describeUrl(current.href)}: ${errorMessage(e)}`));
      });
      req.on('close', () => clearTimeout(connectTimer));
    });

  return get(checkUrl(url), maxRedirects);
}

function checkAllowed(u: URL, opts: DownloadOptions): void {
  if (opts.allowUrl && !opts.allowUrl(u)) {
    throw new ArchiveError(
      'not-allowed',
      `refusing to download from ${describeUrl(u.href)}: not an allowed host`,
      { url: describeUrl(u.href) },
    );
  }
}

/**
 * Download `url` to `dest`, verified. Resolves with the sha256 and size of what was written;
 * rejects with ArchiveError: checksum-mismatch (both digests named), not-found (404),
 * corrupt (still truncated after the retries), unavailable (5xx / network after the retries).
 */
export async function downloadVerified(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<DownloadResult> {
  checkAllowed(checkUrl(url), opts);
  const expected = opts.sha256?.toLowerCase();
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new ArchiveError('usage', `not a sha256 digest: ${JSON.stringify(opts.sha256)}`);
  }
  const log = (opts.log ?? silentLogger).child({ url: describeUrl(url) });
  const retries = opts.retries ?? 5;
  const maxRetryTimeMs = opts.maxRetryTimeMs ?? 5 * 60_000;
  const base = opts.retryBaseMs ?? 500;

  const target = path.resolve(dest);
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(6).toString('hex')}.partial`,
  );

  const bar =
    typeof opts.progress === 'function'
      ? undefined
      : opts.progress
        ? createProgress({ label: path.basename(target), total: opts.size })
        : undefined;
  const onBytes = (done: number, total?: number) => {
    if (typeof opts.progress === 'function') opts.progress(done, total);
    bar?.update(done, total);
  };

  const started = Date.now();
  try {
    let got!: Attempt;
    for (let attempt = 0; ; attempt++) {
      try {
        got = await attemptOnce(url, tmp, opts, onBytes);
        break;
      } catch (e) {
        if ((e as { name?: string })?.name === 'AbortError' || opts.signal?.aborted) {
          throw new ArchiveError('unavailable', `download of ${describeUrl(url)} was cancelled`);
        }
        if (!(e instanceof Transient)) throw e;
        const elapsed = Date.now() - started;
        const delay = backoffDelay(attempt, base, 15_000);
        if (attempt >= retries || elapsed + delay > maxRetryTimeMs) {
          const truncated = /short body|broke off/.test(e.message);
          throw new ArchiveError(
            truncated ? 'corrupt' : 'unavailable',
            `${e.message} (gave up after ${attempt + 1} attempt${attempt ? 's' : ''})`,
            { url: describeUrl(url), attempts: attempt + 1 },
          );
        }
        log.warn('download-retry', {
          attempt: attempt + 1,
          error: e.message,
          delayMs: Math.round(delay),
        });
        opts.onRetry?.(attempt + 1, e, delay);
        await sleep(delay, opts.signal).catch(() => {
          throw new ArchiveError('unavailable', `download of ${describeUrl(url)} was cancelled`);
        });
      }
    }
    bar?.finish();
    if (opts.size !== undefined && got.size !== opts.size) {
      throw new ArchiveError(
        'checksum-mismatch',
        `${describeUrl(url)} gave ${got.size} bytes, expected ${opts.size}`,
        { expected: opts.size, actual: got.size },
      );
    }
    if (expected !== undefined && got.sha256 !== expected) {
      throw new ArchiveError(
        'checksum-mismatch',
        `sha256 mismatch for ${describeUrl(url)}: expected ${expected}, got ${got.sha256}`,
        { expected, actual: got.sha256 },
      );
    }
    const fd = await fs.promises.open(tmp, 'r');
    try {
      await fd.sync();
    } finally {
      await fd.close();
    }
    await fs.promises.rename(tmp, target);
    log.info('download-verified', { dest: target, sha256: got.sha256, size: got.size });
    return got;
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}
