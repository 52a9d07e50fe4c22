// Verified download: stream a URL into a temp file beside the destination, hashing on the way;
// retry 5xx, network errors, stalls and short bodies with the one retry policy (util/retry);
// refuse a wrong sha256 or size; rename into place only when verified. Nothing half-written ever
// appears at `dest`. The requests themselves are util/http's (keep-alive pools, the allow-list
// at the first URL and every redirect hop).
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveError, errorMessage } from '../util/errors.js';
import {
  checkRequestUrl,
  describeUrl,
  isIdleTimeout,
  isTransientStatus,
  networkReason,
  openUrl,
  type HttpOptions,
  type HttpResponse,
} from '../util/http.js';
import { silentLogger, type Logger } from '../util/log.js';
import { createProgress } from '../util/progress.js';
import { TransientError, retrying, type RetryPolicy } from '../util/retry.js';

export interface DownloadOptions extends RetryPolicy {
  /** Expected sha256 (hex); the download is refused when the bytes differ. */
  sha256?: string;
  /** Expected size in bytes. */
  size?: number;
  /** true: a progress bar on stderr when it is a terminal; or a callback. */
  progress?: boolean | ((done: number, total?: number) => void);
  log?: Logger;
  connectTimeoutMs?: number;
  /** No byte for this long (before or during the body) fails the attempt (default 60 s). */
  idleTimeoutMs?: number;
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

/** A download's own defaults: archives are large, so it waits and retries longer than a GET. */
const DOWNLOAD_DEFAULTS = {
  retries: 5,
  maxRetryTimeMs: 5 * 60_000,
  baseDelayMs: 500,
  maxDelayMs: 15_000,
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  maxRedirects: 10,
};

type OnBytes = (done: number, total?: number) => void;

/** A truncated body: once the retries are spent, the download is 'corrupt', not 'unavailable'. */
class ShortBody extends TransientError {}

function checkSha256(sha256: string | undefined): string | undefined {
  const expected = sha256?.toLowerCase();
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new ArchiveError('usage', `not a sha256 digest: ${JSON.stringify(sha256)}`);
  }
  return expected;
}

function contentLength(res: HttpResponse): number | undefined {
  const header = res.headers['content-length'];
  return typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : undefined;
}

/** A final answer other than 200: transient (retried) or a permanent ArchiveError. */
function refuseStatus(res: HttpResponse): Error {
  const status = res.status;
  const where = describeUrl(res.url);
  if (isTransientStatus(status)) return new TransientError(`HTTP ${status} from ${where}`);
  const code =
    status === 404 || status === 410
      ? 'not-found'
      : status === 401 || status === 403
        ? 'not-allowed'
        : 'unavailable';
  return new ArchiveError(code, `HTTP ${status} from ${where}`, { status, url: where });
}

/** Copy a 200 response's body into `tmp`, hashing and counting; refuse more than `size` bytes. */
async function saveBody(
  res: HttpResponse,
  tmp: string,
  size: number | undefined,
  onBytes: OnBytes,
): Promise<DownloadResult> {
  const where = describeUrl(res.url);
  const announced = contentLength(res);
  if (size !== undefined && announced !== undefined && announced !== size) {
    res.body.destroy();
    throw new ArchiveError(
      'checksum-mismatch',
      `${where} is ${announced} bytes, expected ${size}`,
      {
        expected: size,
        actual: announced,
      },
    );
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      if (size !== undefined && bytes > size) {
        cb(
          new ArchiveError(
            'checksum-mismatch',
            `${where} sent more than the expected ${size} bytes`,
          ),
        );
        return;
      }
      onBytes(bytes, announced ?? size);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(res.body, counter, fs.createWriteStream(tmp, { flags: 'w', mode: 0o644 }));
  } catch (e) {
    if (isIdleTimeout(e)) throw new TransientError(errorMessage(e));
    if (e instanceof ArchiveError) throw e;
    throw new ShortBody(`download of ${where} broke off after ${bytes} bytes: ${networkReason(e)}`);
  }
  if (announced !== undefined && bytes !== announced) {
    throw new ShortBody(`short body from ${where}: ${bytes} of ${announced} bytes`);
  }
  return { sha256: hash.digest('hex'), size: bytes };
}

/** One attempt: GET `url` (following vetted redirects) into `tmp`. */
async function attemptOnce(
  url: string,
  tmp: string,
  opts: DownloadOptions,
  onBytes: OnBytes,
): Promise<DownloadResult> {
  const http: HttpOptions = {
    connectTimeoutMs: opts.connectTimeoutMs ?? DOWNLOAD_DEFAULTS.connectTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs ?? DOWNLOAD_DEFAULTS.idleTimeoutMs,
    maxRedirects: opts.maxRedirects ?? DOWNLOAD_DEFAULTS.maxRedirects,
    headers: opts.headers,
    log: opts.log,
    signal: opts.signal,
    allowUrl: opts.allowUrl,
  };
  const res = await openUrl(url, http);
  if (res.status !== 200) {
    res.body.destroy();
    throw refuseStatus(res);
  }
  return saveBody(res, tmp, opts.size, onBytes);
}

function progressSink(opts: DownloadOptions, label: string): { onBytes: OnBytes; finish(): void } {
  const report = opts.progress;
  if (typeof report === 'function') return { onBytes: report, finish: () => {} };
  const bar = report ? createProgress({ label, total: opts.size }) : undefined;
  return { onBytes: (done, total) => bar?.update(done, total), finish: () => bar?.finish() };
}

function verify(got: DownloadResult, url: string, size?: number, sha256?: string): void {
  if (size !== undefined && got.size !== size) {
    throw new ArchiveError(
      'checksum-mismatch',
      `${describeUrl(url)} gave ${got.size} bytes, expected ${size}`,
      { expected: size, actual: got.size },
    );
  }
  if (sha256 !== undefined && got.sha256 !== sha256) {
    throw new ArchiveError(
      'checksum-mismatch',
      `sha256 mismatch for ${describeUrl(url)}: expected ${sha256}, got ${got.sha256}`,
      { expected: sha256, actual: got.sha256 },
    );
  }
}

/** fsync `tmp`, then rename it over `target`. */
async function commit(tmp: string, target: string): Promise<void> {
  const fd = await fs.promises.open(tmp, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
  await fs.promises.rename(tmp, target);
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
  checkRequestUrl(url, opts.allowUrl);
  const expected = checkSha256(opts.sha256);
  const log = (opts.log ?? silentLogger).child({ url: describeUrl(url) });
  const target = path.resolve(dest);
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(6).toString('hex')}.partial`,
  );
  const progress = progressSink(opts, path.basename(target));
  const cancelled = () =>
    new ArchiveError('unavailable', `download of ${describeUrl(url)} was cancelled`);
  const policy = {
    retries: opts.retries ?? DOWNLOAD_DEFAULTS.retries,
    maxRetryTimeMs: opts.maxRetryTimeMs ?? DOWNLOAD_DEFAULTS.maxRetryTimeMs,
    baseDelayMs: opts.baseDelayMs ?? DOWNLOAD_DEFAULTS.baseDelayMs,
    maxDelayMs: opts.maxDelayMs ?? DOWNLOAD_DEFAULTS.maxDelayMs,
    signal: opts.signal,
  };
  try {
    const got = await retrying(
      () =>
        attemptOnce(url, tmp, opts, progress.onBytes).catch((e: unknown) => {
          throw opts.signal?.aborted ? cancelled() : e;
        }),
      policy,
      {
        onRetry: (attempt, e, delayMs) => {
          log.warn('download-retry', { attempt, error: e.message, delayMs });
          opts.onRetry?.(attempt, e, delayMs);
        },
        exhausted: (e, attempts) =>
          new ArchiveError(
            e instanceof ShortBody ? 'corrupt' : 'unavailable',
            `${e.message} (gave up after ${attempts} attempt${attempts > 1 ? 's' : ''})`,
            { url: describeUrl(url), attempts },
          ),
        aborted: cancelled,
      },
    );
    progress.finish();
    verify(got, url, opts.size, expected);
    await commit(tmp, target);
    log.info('download-verified', { dest: target, sha256: got.sha256, size: got.size });
    return got;
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}
