// The content-addressed archive store: `<prefix>/sha256/<hex>.tar.gz` plus `<hex>.json` (the
// archive's metadata document). An object is uploaded once: a HEAD finds an identical one (same
// size, same x-amz-meta-sha256) and the upload is skipped. Multipart uploads that fail are aborted,
// so a partial object never becomes visible; the file is re-hashed on its way out and an upload
// whose bytes do not match the expected sha256 is refused before it completes.
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import type { ArchiveMetadata } from '../archive/index.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { normalizePrefix, publicBaseUrl, type S3Settings } from './settings.js';

/** What the store needs to know about an archive; a full ArchiveMetadata fits. */
export type StoredMetadata = Pick<ArchiveMetadata, 'sha256' | 'size' | 'format'> &
  Partial<Omit<ArchiveMetadata, 'sha256' | 'size' | 'format'>> &
  Record<string, unknown>;

export interface PutResult {
  key: string;
  url: string;
  metadataKey: string;
  metadataUrl: string;
  /** True when an identical object was already stored (nothing uploaded). */
  reused: boolean;
  /** The zip beside the tar.gz (`<prefix>/sha256/<zip sha256>.zip`), when one was given. */
  zipKey?: string;
  zipUrl?: string;
  zipReused?: boolean;
}

export interface PutOptions {
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
  /** Multipart part size (default 8 MiB, at least 5 MiB). */
  partSize?: number;
  /** Parts uploaded concurrently (default 4). */
  queueSize?: number;
  /** The zip of the same tree (its sha256 and size are meta.zip): stored before the metadata. */
  zipFile?: string;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
const SHA256_RE = /^[0-9a-f]{64}$/;
export const ARCHIVE_CONTENT_TYPE = 'application/gzip';
export const ZIP_CONTENT_TYPE = 'application/zip';
export const METADATA_CONTENT_TYPE = 'application/json';
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';

export function checkSha256(sha256: string): string {
  if (typeof sha256 !== 'string' || !SHA256_RE.test(sha256)) {
    throw new ArchiveError(
      'usage',
      `not a sha256 digest (64 lowercase hex digits): ${JSON.stringify(sha256)}`,
    );
  }
  return sha256;
}

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const name = (e as { name?: string })?.name;
  return statusOf(e) === 404 || name === 'NotFound' || name === 'NoSuchKey';
}

/** An S3 failure (after the SDK's own retries) as an ArchiveError naming bucket and key. */
export function s3Error(e: unknown, action: string, bucket: string, key: string): ArchiveError {
  if (e instanceof ArchiveError) return e;
  const status = statusOf(e);
  const name = (e as { name?: string })?.name ?? 'Error';
  const where = `s3://${bucket}/${key}`;
  const detail = `${name}${status ? ` (HTTP ${status})` : ''}: ${errorMessage(e)}`;
  const details = { bucket, key, status, name };
  if (name === 'AbortError') {
    return new ArchiveError('unavailable', `${action} ${where} was cancelled`, details, {
      cause: e,
    });
  }
  if (status === 403 || name === 'AccessDenied' || name === 'InvalidAccessKeyId') {
    return new ArchiveError('not-allowed', `${action} ${where} refused: ${detail}`, details, {
      cause: e,
    });
  }
  if (name === 'NoSuchBucket') {
    return new ArchiveError('not-found', `${action} ${where}: bucket does not exist`, details, {
      cause: e,
    });
  }
  if (e instanceof S3ServiceException && status !== undefined && status < 500 && status !== 429) {
    return new ArchiveError('invalid-config', `${action} ${where} failed: ${detail}`, details, {
      cause: e,
    });
  }
  return new ArchiveError('unavailable', `${action} ${where} failed: ${detail}`, details, {
    cause: e,
  });
}

/** Hashes what passes through; fails at the end (before the last byte is released) on mismatch. */
class VerifyingHash extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  constructor(
    private readonly expected: string,
    private readonly expectedSize: number,
    private readonly file: string,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.bytes > this.expectedSize) {
      cb(
        new ArchiveError(
          'checksum-mismatch',
          `${this.file} grew while uploading: more than ${this.expectedSize} bytes`,
        ),
      );
      return;
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const actual = this.hash.digest('hex');
    if (this.bytes !== this.expectedSize) {
      cb(
        new ArchiveError(
          'checksum-mismatch',
          `${this.file} has ${this.bytes} bytes, expected ${this.expectedSize}; not uploaded`,
          { expected: this.expectedSize, actual: this.bytes },
        ),
      );
    } else if (actual !== this.expected) {
      cb(
        new ArchiveError(
          'checksum-mismatch',
          `${this.file} has sha256 ${actual}, expected ${this.expected}; not uploaded`,
          { expected: this.expected, actual },
        ),
      );
    } else cb();
  }
}

/** Metadata as stored: stable key order, so the same archive gives the same document. */
export function metadataDocument(meta: StoredMetadata): string {
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(meta).sort()) sorted[k] = meta[k];
  return JSON.stringify(sorted, null, 2) + '\n';
}

export class ArchiveStore {
  readonly bucket: string;
  readonly prefix: string;
  readonly baseUrl: string;
  private readonly log: Logger;

  constructor(
    private readonly client: S3Client,
    settings: S3Settings,
    log: Logger = silentLogger,
  ) {
    this.bucket = settings.bucket;
    this.prefix = normalizePrefix(settings.prefix);
    this.baseUrl = publicBaseUrl(settings);
    this.log = log.child({ component: 'archive-store', bucket: this.bucket });
  }

  private key(sha256: string, ext: string): string {
    checkSha256(sha256);
    return `${this.prefix ? this.prefix + '/' : ''}sha256/${sha256}.${ext}`;
  }

  archiveKey(sha256: string): string {
    return this.key(sha256, 'tar.gz');
  }
  metadataKey(sha256: string): string {
    return this.key(sha256, 'json');
  }
  /** The zip is addressed by its own sha256. */
  zipKey(zipSha256: string): string {
    return this.key(zipSha256, 'zip');
  }
  /** Public URL for a key (each path segment URL-encoded). */
  urlFor(key: string): string {
    return `${this.baseUrl}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }
  archiveUrl(sha256: string): string {
    return this.urlFor(this.archiveKey(sha256));
  }
  metadataUrl(sha256: string): string {
    return this.urlFor(this.metadataKey(sha256));
  }

  private checkCancelled(key: string, signal?: AbortSignal): void {
    if (signal?.aborted) {
      throw new ArchiveError('unavailable', `upload of s3://${this.bucket}/${key} was cancelled`);
    }
  }

  private async head(
    key: string,
  ): Promise<{ size?: number; metadata: Record<string, string> } | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: r.ContentLength, metadata: r.Metadata ?? {} };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      // Without s3:ListBucket, S3 answers 403 (not 404) for a missing key: treat it as absent.
      // Wrong credentials then fail clearly on the PUT that follows.
      if (statusOf(e) === 403) {
        this.log.warn('head-refused', {
          key,
          hint: 'grant s3:ListBucket so that missing objects are reported as such',
        });
        return undefined;
      }
      throw s3Error(e, 'HEAD', this.bucket, key);
    }
  }

  /** HEAD: is the archive present with the same size and x-amz-meta-sha256? */
  async has(sha256: string, size: number): Promise<boolean> {
    return this.hasObject(this.archiveKey(sha256), sha256, size);
  }

  /** HEAD: is the zip present with the same size and x-amz-meta-sha256? */
  async hasZip(zipSha256: string, size: number): Promise<boolean> {
    return this.hasObject(this.zipKey(zipSha256), zipSha256, size);
  }

  private async hasObject(key: string, sha256: string, size: number): Promise<boolean> {
    const h = await this.head(key);
    if (!h) return false;
    if (h.size === size && h.metadata.sha256 === sha256) return true;
    this.log.warn('archive-object-differs', {
      key,
      expectedSize: size,
      storedSize: h.size,
      storedSha256: h.metadata.sha256 ?? null,
    });
    return false;
  }

  /**
   * Verify, before indexing or promoting, that the stored archive has the expected size and sha256
   * metadata and that its metadata document exists.
   */
  async verify(
    sha256: string,
    size: number,
    zip?: { sha256: string; size: number },
  ): Promise<boolean> {
    if (!(await this.has(sha256, size))) return false;
    if (zip && !(await this.hasZip(zip.sha256, zip.size))) return false;
    return (await this.head(this.metadataKey(sha256))) !== undefined;
  }

  /** The stored metadata document, or undefined when there is none. */
  async readMetadata(sha256: string): Promise<StoredMetadata | undefined> {
    const key = this.metadataKey(sha256);
    let text: string;
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      text = (await r.Body?.transformToString('utf8')) ?? '';
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw s3Error(e, 'GET', this.bucket, key);
    }
    try {
      const doc = JSON.parse(text) as StoredMetadata;
      if (doc.sha256 !== sha256) throw new Error(`it names sha256 ${String(doc.sha256)}`);
      return doc;
    } catch (e) {
      throw new ArchiveError('corrupt', `metadata document ${key} is invalid: ${errorMessage(e)}`, {
        key,
      });
    }
  }

  /**
   * Upload the archive file and its metadata document unless an identical archive is stored.
   * The metadata document is written after the archive object is complete.
   */
  async put(file: string, meta: StoredMetadata, opts: PutOptions = {}): Promise<PutResult> {
    checkSha256(meta.sha256);
    if (!Number.isSafeInteger(meta.size) || meta.size < 0) {
      throw new ArchiveError('usage', `invalid archive size ${JSON.stringify(meta.size)}`);
    }
    const key = this.archiveKey(meta.sha256);
    this.checkCancelled(key, opts.signal);
    const metadataKey = this.metadataKey(meta.sha256);
    await checkArchiveFile(file, meta.size);

    // The zip first: once the metadata document (which names it) exists, both objects do.
    const zip = opts.zipFile ? await this.putZip(opts.zipFile, meta, opts) : {};

    const reused = await this.has(meta.sha256, meta.size);
    if (reused) {
      this.log.info('archive-reused', { key, sha256: meta.sha256, size: meta.size });
      opts.onProgress?.(meta.size, meta.size);
    } else {
      await this.upload(file, key, meta, opts);
      this.log.info('archive-uploaded', { key, sha256: meta.sha256, size: meta.size });
    }

    // The metadata document comes after the archive is complete: a reader that finds it can
    // rely on the archive being there.
    if (!reused || !(await this.head(metadataKey))) {
      await this.putMetadata(key, meta, opts.signal);
      if (reused) this.log.info('metadata-restored', { key: metadataKey });
    }
    return {
      key,
      url: this.urlFor(key),
      metadataKey,
      metadataUrl: this.urlFor(metadataKey),
      reused,
      ...zip,
    };
  }

  /** The zip of `meta.zip`, uploaded unless an identical one is stored. */
  private async putZip(
    zipFile: string,
    meta: StoredMetadata,
    opts: PutOptions,
  ): Promise<Pick<PutResult, 'zipKey' | 'zipUrl' | 'zipReused'>> {
    const z = meta.zip as { sha256: string; size: number } | undefined;
    if (!z) throw new ArchiveError('usage', 'a zip file was given without meta.zip {sha256, size}');
    const zipKey = this.zipKey(z.sha256);
    const zipReused = await this.hasZip(z.sha256, z.size);
    if (!zipReused) {
      this.checkCancelled(zipKey, opts.signal);
      await this.upload(
        zipFile,
        zipKey,
        { ...meta, ...z },
        { ...opts, onProgress: undefined },
        ZIP_CONTENT_TYPE,
      );
      this.log.info('zip-uploaded', { key: zipKey, sha256: z.sha256, size: z.size });
    }
    return { zipKey, zipUrl: this.urlFor(zipKey), zipReused };
  }

  /** Write the metadata document of the archive at `key`. */
  private async putMetadata(key: string, meta: StoredMetadata, signal?: AbortSignal) {
    const metadataKey = this.metadataKey(meta.sha256);
    this.checkCancelled(key, signal);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: metadataKey,
          Body: metadataDocument(meta),
          ContentType: METADATA_CONTENT_TYPE,
          CacheControl: IMMUTABLE_CACHE_CONTROL,
          Metadata: { sha256: meta.sha256 },
        }),
        { abortSignal: signal },
      );
    } catch (e) {
      throw s3Error(e, 'PUT', this.bucket, metadataKey);
    }
  }

  private async upload(
    file: string,
    key: string,
    meta: StoredMetadata,
    opts: PutOptions,
    contentType = ARCHIVE_CONTENT_TYPE,
  ): Promise<void> {
    const source = fs.createReadStream(file, { highWaterMark: 1024 * 1024 });
    const hashing = new VerifyingHash(meta.sha256, meta.size, file);
    source.on('error', (e) => hashing.destroy(e));
    source.pipe(hashing);
    const metadata: Record<string, string> = { sha256: meta.sha256 };
    if (typeof meta.treeDigest === 'string') metadata['tree-digest'] = meta.treeDigest;
    if (typeof meta.revision === 'string') metadata.revision = meta.revision;
    if (typeof meta.formatVersion === 'number')
      metadata['format-version'] = String(meta.formatVersion);

    const upload = new Upload({
      client: this.client,
      partSize: Math.max(opts.partSize ?? 8 * 1024 * 1024, MIN_PART_SIZE),
      queueSize: opts.queueSize ?? 4,
      leavePartsOnError: false,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: hashing,
        ContentLength: meta.size,
        ContentType: contentType,
        CacheControl: IMMUTABLE_CACHE_CONTROL,
        Metadata: metadata,
      },
    });
    if (opts.onProgress) {
      upload.on('httpUploadProgress', (p) => opts.onProgress?.(p.loaded ?? 0, meta.size));
    }
    // Cancelling fails the body stream: lib-storage then waits for its in-flight parts and
    // aborts the multipart upload before done() rejects, so nothing is left behind.
    const onAbort = () =>
      hashing.destroy(
        Object.assign(new Error(`upload of ${key} cancelled`), { name: 'AbortError' }),
      );
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (e) {
      this.log.warn('archive-upload-failed', { key, error: errorMessage(e) });
      throw s3Error(e, 'upload', this.bucket, key);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      source.destroy();
    }
  }
}

/** `file` must be a regular file of `size` bytes, as its metadata says. */
async function checkArchiveFile(file: string, size: number): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch (e) {
    throw new ArchiveError('usage', `cannot read archive ${file}: ${errorMessage(e)}`, { file });
  }
  if (!stat.isFile()) throw new ArchiveError('usage', `${file} is not a regular file`);
  if (stat.size !== size) {
    throw new ArchiveError(
      'checksum-mismatch',
      `${file} has ${stat.size} bytes, the metadata says ${size}; not uploaded`,
      { expected: size, actual: stat.size },
    );
  }
}
