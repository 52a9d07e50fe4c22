// The two archives' writers: the tar stream block-deflated into one gzip member, and the zip
// (each file deflated on its own, entries in tree order, the central directory at the end). Both
// hash and count what they write, and compress on a shared DeflatePool.
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import { finished } from 'node:stream/promises';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { ZIP_FILES_IN_FLIGHT, type DeflatePool } from './deflate.js';
import { BlockDeflater, OrderedOutput } from './deflate-stream.js';
import type { TreeEntry } from './tree.js';
import {
  METHOD_DEFLATE,
  METHOD_STORED,
  centralHeader,
  endRecords,
  localHeader,
  zipName,
  type ZipRecord,
} from './zip.js';

/** Gzip member header: deflate, no flags, mtime 0, XFL 0 (level 6), OS 255 ("unknown"). */
export const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/** Bytes gathered before the sink is given them, in one buffer. */
const SINK_WRITE = 256 * 1024;
/** Gathering buffers kept for reuse by a file sink (one being filled, the rest being written). */
const SINK_BUFFERS = 4;

/**
 * A sink that counts and hashes what is written, with backpressure. Writes are copied into a
 * buffer of SINK_WRITE bytes, handed to the sink when full: one system call for many small chunks,
 * and the caller may reuse a chunk's memory as soon as write() has returned or settled. A file
 * sink's buffers are reused once written; any other sink keeps each buffer it is given.
 */
class HashedSink {
  readonly hash = crypto.createHash('sha256');
  size = 0;
  private error: unknown = null;
  private buf: Buffer | null = null;
  private fill = 0;
  private readonly spare: Buffer[] = [];
  private readonly reuse: boolean;
  constructor(private readonly sink: NodeJS.WritableStream) {
    sink.on('error', (e: unknown) => (this.error ??= e));
    this.reuse = sink instanceof fs.WriteStream;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.error !== null) throw this.error;
    if (chunk.length === 0) return;
    this.hash.update(chunk);
    this.size += chunk.length;
    let off = 0;
    let drained: Promise<unknown> | null = null;
    while (off < chunk.length) {
      this.buf ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(SINK_WRITE);
      const n = Math.min(SINK_WRITE - this.fill, chunk.length - off);
      this.buf.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === SINK_WRITE && !this.flush()) drained ??= once(this.sink, 'drain');
    }
    if (drained) await drained;
  }

  /** Hand the gathered bytes to the sink; false when it asks to wait for 'drain'. */
  private flush(): boolean {
    const b = this.buf;
    if (!b || this.fill === 0) return true;
    const data = this.fill === b.length ? b : b.subarray(0, this.fill);
    this.buf = null;
    this.fill = 0;
    if (!this.reuse) return this.sink.write(data);
    return this.sink.write(data, (e?: Error | null) => {
      if (!e && this.spare.length < SINK_BUFFERS) this.spare.push(b);
    });
  }

  async end(): Promise<{ sha256: string; size: number }> {
    if (this.error !== null) throw this.error;
    this.flush();
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
export class TarGzWriter {
  private readonly out: HashedSink;
  private readonly ordered: OrderedOutput<Buffer>;
  private readonly deflater: BlockDeflater;
  private readonly started: Promise<void>;

  constructor(pool: DeflatePool, sink: NodeJS.WritableStream) {
    this.out = new HashedSink(sink);
    this.ordered = new OrderedOutput<Buffer>(
      async (b) => {
        await this.out.write(b);
        pool.release(b);
      },
      2 * pool.threads + 4,
    );
    this.deflater = new BlockDeflater(pool, (p) => this.ordered.push(p));
    this.started = this.ordered.push(GZIP_HEADER);
  }

  /** Add tar bytes; a promise only when the caller must wait (see BlockDeflater.write). */
  write(chunk: Buffer): Promise<void> | undefined {
    // the gzip header is queued first, synchronously, by the constructor
    return chunk.length ? this.deflater.write(chunk) : undefined;
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
export class ZipFileEntry {
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

  write(chunk: Buffer): Promise<void> | undefined {
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
export class ZipWriter {
  private readonly out: HashedSink;
  private readonly ordered: OrderedOutput<ZipItem>;
  private readonly central: Buffer[] = [];
  private entries = 0;

  constructor(
    private readonly pool: DeflatePool,
    sink: NodeJS.WritableStream,
  ) {
    this.out = new HashedSink(sink);
    this.ordered = new OrderedOutput<ZipItem>((item) => this.writeItem(item), ZIP_FILES_IN_FLIGHT);
  }

  private async writeItem(item: ZipItem): Promise<void> {
    const compressedSize = item.data.reduce((n, b) => n + b.length, 0);
    const record: ZipRecord = { ...item.record, compressedSize, offset: this.out.size };
    await this.out.write(localHeader(record));
    for (const b of item.data) {
      await this.out.write(b);
      this.pool.release(b);
    }
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
