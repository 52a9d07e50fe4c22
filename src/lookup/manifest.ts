// Known-good manifests (schemas/manifest.json): which archive each channel should run. They live in
// a file, behind an http(s) URL (read only), or in S3 (`s3://bucket/key`). Reads support ETags so a
// deploy agent reacts only to a change; writes are atomic (temp + rename, or one S3 PUT, made
// conditional on the ETag that was read).
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ChannelEntry, Entry, Manifest } from '../generated/manifest.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { getBuffer, type HostCheck } from '../util/http.js';
import { describeSchemaErrors, projectValidator } from '../util/schemas.js';

/** One verified archive of a channel (schemas/manifest.json). */
export type ManifestEntry = Entry;
/** A channel's entry, with the entry it replaced (one level deep): `promote --rollback` restores it. */
export type { ChannelEntry, Manifest };

export type ManifestLocation =
  | { kind: 'file'; path: string }
  | { kind: 'http'; url: string }
  | { kind: 's3'; bucket: string; key: string };

export const CHANNEL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkChannel(channel: string): string {
  if (typeof channel !== 'string' || !CHANNEL_RE.test(channel)) {
    throw new ArchiveError(
      'usage',
      `invalid channel ${JSON.stringify(channel)}: letters, digits, '.', '-' and '_' (max 64)`,
    );
  }
  return channel;
}

/** `s3://bucket/key`, `http(s)://…`, or a file path. */
export function parseManifestLocation(where: string): ManifestLocation {
  if (!where) throw new ArchiveError('usage', 'a manifest location is required');
  if (where.startsWith('s3://')) {
    const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(where);
    if (!m)
      throw new ArchiveError('usage', `invalid S3 manifest location ${where}: s3://bucket/key`);
    return { kind: 's3', bucket: m[1]!, key: m[2]! };
  }
  if (/^https?:\/\//i.test(where)) {
    try {
      return { kind: 'http', url: new URL(where).href };
    } catch {
      throw new ArchiveError('usage', `invalid manifest URL ${where}`);
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(where)) {
    throw new ArchiveError(
      'usage',
      `unsupported manifest location ${where}: file, http(s) or s3://`,
    );
  }
  return { kind: 'file', path: path.resolve(where) };
}

export function describeLocation(loc: ManifestLocation): string {
  return loc.kind === 'file'
    ? loc.path
    : loc.kind === 'http'
      ? loc.url
      : `s3://${loc.bucket}/${loc.key}`;
}

/** The manifest, checked against schemas/manifest.json; errors name the field. */
export function validateManifest(doc: unknown, where = 'manifest'): Manifest {
  const fn = projectValidator('manifest.json');
  if (fn(doc)) return doc as Manifest;
  const errors = describeSchemaErrors(fn.errors, doc, { max: 8 });
  throw new ArchiveError('invalid-config', `${where} fails its schema: ${errors.join('; ')}`, {
    errors,
  });
}

export function emptyManifest(): Manifest {
  return { version: 1, channels: {} };
}

export interface ManifestIO {
  /** For s3:// locations. */
  s3?: Pick<S3Client, 'send'>;
  /** Host check for http(s) locations. */
  allowUrl?: HostCheck;
  timeoutMs?: number;
}

export type ReadResult =
  | { status: 'ok'; manifest: Manifest; etag: string }
  | { status: 'not-modified'; etag: string }
  | { status: 'missing' };

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ArchiveError('invalid-config', `${where} is not JSON: ${errorMessage(e)}`);
  }
}

function contentTag(text: string): string {
  return `"${createHash('sha256').update(text).digest('hex')}"`;
}

function needS3(io: ManifestIO): Pick<S3Client, 'send'> {
  if (!io.s3) throw new ArchiveError('usage', 'an S3 client is needed for s3:// manifests');
  return io.s3;
}

/**
 * Read a manifest. With `etag`, an unchanged manifest gives `not-modified` (HTTP If-None-Match,
 * S3 IfNoneMatch, or the content hash of a file). A missing manifest gives `missing`.
 */
export async function readManifest(
  loc: ManifestLocation,
  io: ManifestIO = {},
  opts: { etag?: string } = {},
): Promise<ReadResult> {
  const where = describeLocation(loc);
  if (loc.kind === 'file') {
    let text: string;
    try {
      text = await fs.promises.readFile(loc.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing' };
      throw new ArchiveError('unavailable', `cannot read ${where}: ${errorMessage(e)}`);
    }
    const etag = contentTag(text);
    if (opts.etag && opts.etag === etag) return { status: 'not-modified', etag };
    return { status: 'ok', manifest: validateManifest(parseJson(text, where), where), etag };
  }
  if (loc.kind === 'http') {
    const res = await getBuffer(loc.url, {
      allowUrl: io.allowUrl,
      timeoutMs: io.timeoutMs,
      headers: {
        accept: 'application/json',
        ...(opts.etag ? { 'if-none-match': opts.etag } : {}),
      },
    });
    if (res.status === 304) return { status: 'not-modified', etag: opts.etag! };
    if (res.status === 404) return { status: 'missing' };
    if (res.status < 200 || res.status >= 300) {
      throw new ArchiveError('unavailable', `GET ${where} answered ${res.status}`);
    }
    const text = res.body.toString('utf8');
    const header = res.headers.etag;
    const etag = typeof header === 'string' ? header : contentTag(text);
    if (opts.etag && opts.etag === etag) return { status: 'not-modified', etag };
    return { status: 'ok', manifest: validateManifest(parseJson(text, where), where), etag };
  }
  const s3 = needS3(io);
  try {
    const out = await s3.send(
      new GetObjectCommand({
        Bucket: loc.bucket,
        Key: loc.key,
        ...(opts.etag ? { IfNoneMatch: opts.etag } : {}),
      }),
    );
    const text = (await out.Body?.transformToString('utf8')) ?? '';
    const etag = out.ETag ?? contentTag(text);
    if (opts.etag && opts.etag === etag) return { status: 'not-modified', etag };
    return { status: 'ok', manifest: validateManifest(parseJson(text, where), where), etag };
  } catch (e) {
    if (e instanceof ArchiveError) throw e;
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const name = (e as { name?: string }).name;
    if (status === 304 || name === 'NotModified')
      return { status: 'not-modified', etag: opts.etag! };
    if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') return { status: 'missing' };
    throw new ArchiveError('unavailable', `cannot read ${where}: ${errorMessage(e)}`);
  }
}

/**
 * Write a manifest atomically: a file through a temp file in the same directory + fsync + rename;
 * S3 with one PUT (conditional on `ifMatch` when given). http(s) manifests are read only.
 */
export async function writeManifest(
  loc: ManifestLocation,
  manifest: Manifest,
  io: ManifestIO = {},
  opts: { ifMatch?: string } = {},
): Promise<void> {
  const where = describeLocation(loc);
  validateManifest(manifest, where);
  const text = JSON.stringify(manifest, null, 2) + '\n';
  if (loc.kind === 'http') {
    throw new ArchiveError(
      'usage',
      `cannot write ${where}: http(s) manifests are read only; promote into a file or s3://`,
    );
  }
  if (loc.kind === 'file') {
    const dir = path.dirname(loc.path);
    await fs.promises.mkdir(dir, { recursive: true });
    if (opts.ifMatch) {
      const now = await fs.promises.readFile(loc.path, 'utf8').catch(() => undefined);
      if (now !== undefined && contentTag(now) !== opts.ifMatch) {
        throw new ArchiveError(
          'conflict',
          `${where} changed while it was being updated; try again`,
        );
      }
    }
    const tmp = path.join(
      dir,
      `.${path.basename(loc.path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
    );
    try {
      const fh = await fs.promises.open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, loc.path);
    } catch (e) {
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      throw new ArchiveError('unavailable', `cannot write ${where}: ${errorMessage(e)}`);
    }
    return;
  }
  const s3 = needS3(io);
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: loc.bucket,
        Key: loc.key,
        Body: text,
        ContentType: 'application/json',
        CacheControl: 'no-cache',
        ...(opts.ifMatch ? { IfMatch: opts.ifMatch } : {}),
      }),
    );
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412) {
      throw new ArchiveError('conflict', `${where} changed while it was being updated; try again`);
    }
    throw new ArchiveError('unavailable', `cannot write ${where}: ${errorMessage(e)}`);
  }
}
