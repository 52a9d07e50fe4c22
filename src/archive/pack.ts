// Streaming packer: tree entries → tar blocks → gzip (level 6, no name, mtime 0, fixed OS byte)
// → sink, with the archive sha256/size and the tree digest computed on the way.
import crypto from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { ArchiveError } from '../util/errors.js';
import { END_OF_ARCHIVE, entryHeader, padding } from './tar.js';
import { checkEntryPath, linkStaysInside, type TreeEntry } from './tree.js';

export interface PackLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

export const TREE_DIGEST_SALT = (version: number) => `mozharness-archive tree v${version}\n`;
/** Gzip OS byte: 255 ("unknown") on every platform. */
export const GZIP_OS_BYTE = 0xff;
export const GZIP_LEVEL = 6;

export interface TreeSummary {
  treeDigest: string;
  files: number;
  bytes: number;
}

/** Walk entries once: validate, enforce limits, hash contents and feed the tree digest. */
export class TreeDigester {
  private readonly hash = crypto.createHash('sha256');
  files = 0;
  bytes = 0;
  private last: Buffer | null = null;
  constructor(
    version: number,
    private readonly limits: PackLimits,
  ) {
    this.hash.update(TREE_DIGEST_SALT(version));
  }

  /** Checks an entry before its content is read. */
  check(e: TreeEntry): void {
    checkEntryPath(e.path);
    const key = Buffer.from(e.path, 'utf8');
    if (this.last && Buffer.compare(this.last, key) >= 0) {
      throw new ArchiveError('internal', `entries out of order at ${JSON.stringify(e.path)}`);
    }
    this.last = key;
    if (e.type === 'symlink' && !linkStaysInside(e.path, e.linkTarget ?? '')) {
      throw new ArchiveError(
        'unsafe-path',
        `symlink ${JSON.stringify(e.path)} -> ${JSON.stringify(e.linkTarget)} points outside the archived tree`,
      );
    }
    if (e.type === 'dir') return;
    if (++this.files > this.limits.maxFiles) {
      throw new ArchiveError(
        'limit-exceeded',
        `more than ${this.limits.maxFiles} files in the tree`,
      );
    }
    if (e.size > this.limits.maxFileBytes) {
      throw new ArchiveError(
        'limit-exceeded',
        `${e.path} is ${e.size} bytes, over the limit of ${this.limits.maxFileBytes}`,
      );
    }
    this.bytes += e.size;
    if (this.bytes > this.limits.maxTotalBytes) {
      throw new ArchiveError(
        'limit-exceeded',
        `tree is over the limit of ${this.limits.maxTotalBytes} bytes (at ${e.path})`,
      );
    }
  }

  /** Records an entry after its content hash is known. */
  add(e: TreeEntry, contentSha256: string): void {
    this.hash.update(`${e.type} ${e.mode.toString(8)} ${contentSha256} ${e.path}\n`, 'utf8');
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

const EMPTY_SHA256 = crypto.createHash('sha256').digest('hex');

async function* entryBlocks(
  entries: AsyncIterable<TreeEntry>,
  digester: TreeDigester,
  withContent: boolean,
): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    digester.check(e);
    if (e.type === 'file') {
      if (withContent) yield entryHeader(e);
      const h = crypto.createHash('sha256');
      let n = 0;
      if (e.size > 0 || e.read) {
        for await (const chunk of e.read!()) {
          n += chunk.length;
          if (n > e.size) break;
          h.update(chunk);
          if (withContent) yield chunk;
        }
      }
      if (n !== e.size) {
        throw new ArchiveError(
          'corrupt',
          `${e.path}: expected ${e.size} bytes of content, source gave ${n}`,
        );
      }
      if (withContent) yield padding(e.size);
      digester.add(e, h.digest('hex'));
    } else if (e.type === 'symlink') {
      if (withContent) yield entryHeader(e);
      digester.add(
        e,
        crypto
          .createHash('sha256')
          .update(e.linkTarget ?? '', 'utf8')
          .digest('hex'),
      );
    } else {
      if (withContent) yield entryHeader(e);
      digester.add(e, EMPTY_SHA256);
    }
  }
  if (withContent) yield END_OF_ARCHIVE;
}

/** Hashes and counts what passes, and pins the gzip header's OS byte. */
class GzipTap extends Transform {
  readonly hash = crypto.createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.size <= 9 && this.size + chunk.length > 9) {
      chunk = Buffer.from(chunk);
      chunk[9 - this.size] = GZIP_OS_BYTE;
    }
    this.size += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

export interface PackOutcome extends TreeSummary {
  sha256: string;
  size: number;
}

/** Pack `entries` into `sink` (ended when done). */
export async function packEntries(
  entries: AsyncIterable<TreeEntry>,
  sink: NodeJS.WritableStream,
  version: number,
  limits: PackLimits,
  signal?: AbortSignal,
): Promise<PackOutcome> {
  const digester = new TreeDigester(version, limits);
  const tap = new GzipTap();
  await pipeline(
    Readable.from(entryBlocks(entries, digester, true), { objectMode: false }),
    zlib.createGzip({ level: GZIP_LEVEL, memLevel: 8, windowBits: 15, strategy: 0 }),
    tap,
    sink,
    { signal },
  );
  return {
    sha256: tap.hash.digest('hex'),
    size: tap.size,
    treeDigest: digester.digest(),
    files: digester.files,
    bytes: digester.bytes,
  };
}

/** The tree digest alone: contents are hashed, nothing is packed. */
export async function digestEntries(
  entries: AsyncIterable<TreeEntry>,
  version: number,
  limits: PackLimits,
): Promise<TreeSummary> {
  const digester = new TreeDigester(version, limits);
  for await (const _ of entryBlocks(entries, digester, false)) {
    // nothing to write
  }
  return { treeDigest: digester.digest(), files: digester.files, bytes: digester.bytes };
}
