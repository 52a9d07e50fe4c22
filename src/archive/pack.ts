// Streaming packer: one pass over the tree's entries gives the tree digest, the tar.gz and the
// zip. Tar blocks go through a block-parallel deflate (deflate.ts) into a gzip member (no name,
// mtime 0, OS byte 255); each file of the zip is deflated the same way on its own. Contents are
// read ahead (several files at once where the source allows) while earlier ones are compressed.
import crypto from 'node:crypto';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { ArchiveError, isArchiveError } from '../util/errors.js';
import { TreeModel } from './tree-model.js';
import { BlockDeflater, DeflatePool, OrderedOutput, defaultThreads } from './deflate.js';
import { END_OF_ARCHIVE, entryHeader, padding } from './tar.js';
import { checkEntryPath, linkStaysInside, type TreeEntry } from './tree.js';
import {
  METHOD_DEFLATE,
  METHOD_STORED,
  centralHeader,
  endRecords,
  localHeader,
  zipName,
  type ZipRecord,
} from './zip.js';

export interface PackLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

export const TREE_DIGEST_SALT = (version: number) => `mozharness-archive tree v${version}\n`;
/** Gzip member header: deflate, no flags, mtime 0, XFL 0 (level 6), OS 255 ("unknown"). */
export const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

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
  private readonly tree = new TreeModel();
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
    this.model(e);
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

  /**
   * Record the entry in the tree model, which resolves every symlink through the links before
   * and after it (a link made to escape by a later one is refused when that one comes).
   */
  private model(e: TreeEntry): void {
    try {
      this.tree.add(e.path, e.type, e.linkTarget ?? '');
    } catch (err) {
      if (!isArchiveError(err)) throw err;
      throw new ArchiveError(err.code, `the tree cannot be archived: ${err.message}`, err.details);
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

/** Files up to this size are read whole, ahead of their turn. */
const READ_AHEAD_FILE = 1024 * 1024;
/** Bytes and entries read ahead at most. */
const READ_AHEAD_BYTES = 16 * 1024 * 1024;
const READ_AHEAD_ENTRIES = 256;

type Loaded = TreeEntry & { data?: Promise<Buffer> };

async function collect(e: TreeEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of e.read!()) {
    n += chunk.length;
    if (n > e.size) break;
    parts.push(chunk);
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * Entries in order, small files' contents already being read: several at once when the source
 * says its reads are independent (`detached`), otherwise one after the other, each read before
 * the next entry is asked for (the source's contents may share one pipe).
 */
async function* readAhead(entries: AsyncIterable<TreeEntry>): AsyncGenerator<Loaded> {
  const queue: Loaded[] = [];
  let bytes = 0;
  const take = (): Loaded => {
    const e = queue.shift()!;
    if (e.data) bytes -= e.size;
    return e;
  };
  for await (const e of entries) {
    if (e.type === 'file' && e.readSync) {
      // read when its turn comes, synchronously: cheaper than any read ahead
      queue.push(e);
    } else if (e.type === 'file' && e.size <= READ_AHEAD_FILE && (e.size > 0 || e.read)) {
      const data = collect(e);
      data.catch(() => {}); // surfaced when the entry is packed
      if (!e.detached) await data.catch(() => {});
      queue.push({ ...e, data });
      bytes += e.size;
    } else if (e.type === 'file' && !e.detached) {
      // streamed, and only while the source waits: everything before it goes first
      while (queue.length) yield take();
      yield e;
      continue;
    } else queue.push(e);
    while (queue.length > READ_AHEAD_ENTRIES || bytes > READ_AHEAD_BYTES) yield take();
  }
  while (queue.length) yield take();
}

/** Bytes gathered (corked) before the sink writes them at once. */
const SINK_WRITE = 256 * 1024;

type Corkable = NodeJS.WritableStream & { cork?: () => void; uncork?: () => void };

/**
 * A sink that counts and hashes what is written, with backpressure. Writes are corked until
 * SINK_WRITE bytes are held, so a file sink makes one system call for many small chunks.
 */
class HashedSink {
  readonly hash = crypto.createHash('sha256');
  size = 0;
  private error: unknown = null;
  private held = 0;
  constructor(private readonly sink: Corkable) {
    sink.on('error', (e: unknown) => (this.error ??= e));
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.error !== null) throw this.error;
    if (chunk.length === 0) return;
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.held === 0) this.sink.cork?.();
    this.held += chunk.length;
    const ok = this.sink.write(chunk);
    if (this.held >= SINK_WRITE || (!ok && !this.sink.cork)) {
      this.uncork();
      if (!ok) await once(this.sink as NodeJS.EventEmitter, 'drain');
    }
  }

  private uncork(): void {
    if (this.held > 0) this.sink.uncork?.();
    this.held = 0;
  }

  async end(): Promise<{ sha256: string; size: number }> {
    this.uncork();
    this.sink.end();
    await finished(
      this.sink as NodeJS.WritableStream & NodeJS.ReadableStream,
      {
        readable: false,
      } as never,
    );
    return { sha256: this.hash.digest('hex'), size: this.size };
  }
}

/** The tar stream, block-deflated into one gzip member. */
class TarGzWriter {
  private readonly out: HashedSink;
  private readonly ordered: OrderedOutput<Buffer>;
  private readonly deflater: BlockDeflater;
  private readonly started: Promise<void>;

  constructor(pool: DeflatePool, sink: NodeJS.WritableStream) {
    this.out = new HashedSink(sink);
    this.ordered = new OrderedOutput<Buffer>((b) => this.out.write(b), 2 * pool.threads + 4);
    this.deflater = new BlockDeflater(pool, (p) => this.ordered.push(p));
    this.started = this.ordered.push(GZIP_HEADER);
  }

  async write(chunk: Buffer): Promise<void> {
    await this.started;
    if (chunk.length) await this.deflater.write(chunk);
  }

  async end(): Promise<{ sha256: string; size: number }> {
    await this.started;
    await this.deflater.end();
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.deflater.crc >>> 0, 0);
    trailer.writeUInt32LE(this.deflater.size % 2 ** 32, 4);
    await this.ordered.push(trailer);
    await this.ordered.flush();
    return this.out.end();
  }
}

interface ZipItem {
  record: Omit<ZipRecord, 'offset' | 'compressedSize'>;
  data: Buffer[];
}

/** One file's content being deflated for the zip. */
class ZipFileEntry {
  private readonly parts: Array<Promise<Buffer>> = [];
  private readonly deflater: BlockDeflater;
  constructor(
    pool: DeflatePool,
    private readonly name: Buffer,
    private readonly e: TreeEntry,
    private readonly depth: number,
  ) {
    this.deflater = new BlockDeflater(
      pool,
      async (p) => {
        p.catch(() => {});
        this.parts.push(p);
        // bound the blocks of one large file in flight
        if (this.parts.length > this.depth) await this.parts[this.parts.length - this.depth - 1];
      },
      e.size,
    );
  }

  write(chunk: Buffer): Promise<void> {
    return this.deflater.write(chunk);
  }

  async end(): Promise<ZipItem> {
    await this.deflater.end();
    return {
      record: {
        name: this.name,
        type: 'file',
        mode: this.e.mode,
        method: METHOD_DEFLATE,
        crc: this.deflater.crc,
        size: this.deflater.size,
      },
      data: await Promise.all(this.parts),
    };
  }
}

/** The zip: entries in tree order, the central directory kept until the end. */
class ZipWriter {
  private readonly out: HashedSink;
  private readonly ordered: OrderedOutput<ZipItem>;
  private readonly central: Buffer[] = [];
  private entries = 0;

  constructor(
    private readonly pool: DeflatePool,
    sink: NodeJS.WritableStream,
  ) {
    this.out = new HashedSink(sink);
    this.ordered = new OrderedOutput<ZipItem>((item) => this.writeItem(item), 64);
  }

  private async writeItem(item: ZipItem): Promise<void> {
    const compressedSize = item.data.reduce((n, b) => n + b.length, 0);
    const record: ZipRecord = { ...item.record, compressedSize, offset: this.out.size };
    await this.out.write(localHeader(record));
    for (const b of item.data) await this.out.write(b);
    this.central.push(centralHeader(record));
    this.entries++;
  }

  /** A directory, a symlink or an empty file: stored, known at once. */
  addStored(e: TreeEntry, content: Buffer): Promise<void> {
    return this.ordered.push({
      record: {
        name: zipName(e.path, e.type),
        type: e.type,
        mode: e.mode,
        method: METHOD_STORED,
        crc: crc32(content),
        size: content.length,
      },
      data: [content],
    });
  }

  beginFile(e: TreeEntry): ZipFileEntry {
    return new ZipFileEntry(this.pool, zipName(e.path, e.type), e, 2 * this.pool.threads + 2);
  }

  /** Queue a file whose content has all been written (its blocks may still be compressing). */
  endFile(f: ZipFileEntry): Promise<void> {
    return this.ordered.push(f.end());
  }

  async end(): Promise<{ sha256: string; size: number }> {
    await this.ordered.flush();
    const cdOffset = this.out.size;
    for (const c of this.central) await this.out.write(c);
    await this.out.write(endRecords(this.entries, cdOffset, this.out.size - cdOffset));
    return this.out.end();
  }
}

function crc32(b: Buffer): number {
  return b.length ? zlibCrc32(b) : 0;
}

export interface StreamOutcome {
  sha256: string;
  size: number;
}

export interface PackSinks {
  tarGz?: NodeJS.WritableStream;
  zip?: NodeJS.WritableStream;
}

export interface PackOutcome extends TreeSummary {
  tarGz?: StreamOutcome;
  zip?: StreamOutcome;
}

export interface PackOptions {
  signal?: AbortSignal;
  /** Deflate threads (default: one per core; 0 = on the calling thread). Same bytes whatever. */
  threads?: number;
}

function checkSize(e: TreeEntry, n: number): void {
  if (n !== e.size) {
    throw new ArchiveError(
      'corrupt',
      `${e.path}: expected ${e.size} bytes of content, source gave ${n}`,
    );
  }
}

/** A file's content, from the quickest way its source offers (`scratch` for synchronous reads). */
async function* contentOf(e: Loaded, scratch: Buffer): AsyncGenerator<Buffer> {
  if (e.data) yield await e.data;
  else if (e.readSync) yield* e.readSync(scratch);
  else if (e.read) yield* e.read();
}

/** The buffer files are read into synchronously, reused from one file and chunk to the next. */
const READ_BUFFER = 1024 * 1024;

interface Writers {
  tar: TarGzWriter | null;
  zip: ZipWriter | null;
  scratch: Buffer;
}

/** One file into both archives; its content's sha256. */
async function packFile(e: Loaded, { tar, zip, scratch }: Writers): Promise<string> {
  await tar?.write(entryHeader(e));
  const h = crypto.createHash('sha256');
  const zf = zip && e.size > 0 ? zip.beginFile(e) : null;
  let n = 0;
  if (e.size > 0 || e.read || e.readSync) {
    for await (const chunk of contentOf(e, scratch)) {
      n += chunk.length;
      if (n > e.size) break;
      h.update(chunk);
      await tar?.write(chunk);
      await zf?.write(chunk);
    }
  }
  checkSize(e, n);
  await tar?.write(padding(e.size));
  if (zf) await zip!.endFile(zf);
  else await zip?.addStored(e, Buffer.alloc(0));
  return h.digest('hex');
}

/** One directory or symlink into both archives; the sha256 its digest line names. */
async function packOther(e: TreeEntry, { tar, zip }: Writers): Promise<string> {
  await tar?.write(entryHeader(e));
  if (e.type === 'symlink') {
    const target = Buffer.from(e.linkTarget ?? '', 'utf8');
    await zip?.addStored(e, target);
    return crypto.createHash('sha256').update(target).digest('hex');
  }
  await zip?.addStored(e, Buffer.alloc(0));
  return EMPTY_SHA256;
}

/**
 * One pass over `entries`: check and digest them, and write each sink given (each is ended when
 * done). With no sinks only the tree digest is computed.
 */
export async function packEntries(
  entries: AsyncIterable<TreeEntry>,
  sinks: PackSinks,
  version: number,
  limits: PackLimits,
  opts: PackOptions = {},
): Promise<PackOutcome> {
  const digester = new TreeDigester(version, limits);
  const packing = Boolean(sinks.tarGz || sinks.zip);
  const pool = new DeflatePool(packing ? (opts.threads ?? defaultThreads()) : 0);
  const writers: Writers = {
    tar: sinks.tarGz ? new TarGzWriter(pool, sinks.tarGz) : null,
    zip: sinks.zip ? new ZipWriter(pool, sinks.zip) : null,
    scratch: Buffer.allocUnsafeSlow(READ_BUFFER),
  };
  try {
    for await (const e of packing ? readAhead(entries) : entries) {
      opts.signal?.throwIfAborted();
      digester.check(e);
      const sha = e.type === 'file' ? await packFile(e, writers) : await packOther(e, writers);
      digester.add(e, sha);
    }
    opts.signal?.throwIfAborted();
    await writers.tar?.write(END_OF_ARCHIVE);
    const [tarGz, zipped] = await Promise.all([writers.tar?.end(), writers.zip?.end()]);
    return {
      tarGz,
      zip: zipped,
      treeDigest: digester.digest(),
      files: digester.files,
      bytes: digester.bytes,
    };
  } finally {
    await pool.close();
  }
}

/** The tree digest alone: contents are hashed, nothing is packed. */
export async function digestEntries(
  entries: AsyncIterable<TreeEntry>,
  version: number,
  limits: PackLimits,
): Promise<TreeSummary> {
  const d = await packEntries(entries, {}, version, limits);
  return { treeDigest: d.treeDigest, files: d.files, bytes: d.bytes };
}
