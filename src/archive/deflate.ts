// Block-parallel, deterministic raw deflate. A stream is cut into fixed-size blocks; each block is
// compressed on its own (zlib level 6), primed with the previous 32 KiB of input as its
// dictionary, and ends with a sync flush (the last one with Z_FINISH). The concatenated outputs
// are one valid deflate stream whose bytes depend only on the input, the level and the block
// size, never on how many threads compressed it or in what order they finished (the scheme pigz
// uses). Blocks run on a small pool of worker threads, results are written in input order.
// Memory stays flat whatever the stream's length: a block's buffers are moved to its thread and
// back (never copied) and reused for later blocks, and each result is moved out in the buffer
// zlib wrote it to, so a thread makes no garbage of its own.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';
import { ArchiveError } from '../util/errors.js';

/** Input bytes per independently compressed block: part of the archive format. */
export const DEFLATE_BLOCK_SIZE = 128 * 1024;
/** History each block is primed with (deflate's whole window). */
export const DICTIONARY_SIZE = 32 * 1024;
export const DEFLATE_LEVEL = 6;

export interface DeflateJob {
  data: Uint8Array;
  dictionary?: Uint8Array;
  final: boolean;
  /**
   * The whole memory under `data` and `dictionary` belongs to the job (never a slice of Node's
   * shared pool): it is moved to the thread that compresses it, unreadable here until the pool
   * takes it back for a later block.
   */
  owned?: boolean;
}

/**
 * The output buffer size zlib is called with (Node's default). Part of the format: how much
 * output room each deflate() call has changes where zlib ends a flush, so the bytes.
 */
export const ZLIB_CHUNK_SIZE = 16 * 1024;

/** One block, compressed the way every thread does it. */
export function deflateBlock(job: DeflateJob): Buffer {
  return zlib.deflateRawSync(job.data, {
    level: DEFLATE_LEVEL,
    memLevel: 8,
    windowBits: 15,
    strategy: zlib.constants.Z_DEFAULT_STRATEGY,
    chunkSize: ZLIB_CHUNK_SIZE,
    finishFlush: job.final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
    ...(job.dictionary && job.dictionary.length ? { dictionary: job.dictionary } : {}),
  });
}

// The worker's whole program (CommonJS, evaluated: no file to resolve, no loader to inherit).
// It must compress exactly as deflateBlock does. The input's buffers go back with the result;
// the result goes in its own buffer when it has one and may be moved (otherwise it is copied).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const c = zlib.constants;
let canMove = true;
function run(m, replies, transfer) {
  const reply = { id: m.id };
  if (m.owned) {
    reply.data = m.data;
    transfer.push(m.data.buffer);
    if (m.dictionary) {
      reply.dictionary = m.dictionary;
      transfer.push(m.dictionary.buffer);
    }
  }
  try {
    const opts = { level: ${DEFLATE_LEVEL}, memLevel: 8, windowBits: 15, strategy: c.Z_DEFAULT_STRATEGY,
      chunkSize: ${ZLIB_CHUNK_SIZE}, finishFlush: m.final ? c.Z_FINISH : c.Z_SYNC_FLUSH };
    if (m.dictionary && m.dictionary.length) opts.dictionary = m.dictionary;
    let out = zlib.deflateRawSync(m.data, opts);
    if (out.buffer.byteLength <= Buffer.poolSize || !canMove) out = new Uint8Array(out);
    reply.out = out;
  } catch (e) {
    reply.error = String((e && e.message) || e);
  }
  replies.push(reply);
}
parentPort.on('message', (batch) => {
  const replies = [];
  const transfer = [];
  for (const m of batch) run(m, replies, transfer);
  const outs = replies.filter((r) => r.out).map((r) => r.out.buffer);
  try {
    parentPort.postMessage(replies, [...outs, ...transfer]);
  } catch {
    // a Node that marks zlib's output untransferable: send copies from now on
    canMove = false;
    for (const r of replies) if (r.out) r.out = new Uint8Array(r.out);
    parentPort.postMessage(replies, [...replies.filter((r) => r.out).map((r) => r.out.buffer), ...transfer]);
  }
});
`;

interface Pending {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

interface Reply {
  id: number;
  out?: Uint8Array;
  error?: string;
  data?: Uint8Array;
  dictionary?: Uint8Array;
}

/** The default thread count: one per core the process may use. */
export const defaultThreads = () =>
  typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;

/** Young-generation size of a deflate thread's heap, in MB. */
const WORKER_YOUNG_MB = 2;

/** Messages of jobs handed to one thread ahead of its results: it never waits for the main thread. */
const JOBS_PER_THREAD = 2;
/** At most this many jobs, or about this many input bytes, go to a thread in one message. */
const BATCH_JOBS = 64;
const BATCH_BYTES = 256 * 1024;

/** Buffers of one size kept for reuse (at most `keep`), each its own memory. */
class FreeList {
  private readonly free: ArrayBuffer[] = [];
  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    const b = this.free.pop();
    return b ? Buffer.from(b, 0, this.size) : Buffer.allocUnsafeSlow(this.size);
  }

  give(b: Uint8Array | undefined): void {
    if (b && b.buffer.byteLength === this.size && this.free.length < this.keep) {
      this.free.push(b.buffer as ArrayBuffer);
    }
  }
}

/**
 * A fixed set of deflate threads, started at once (they boot while the tree is listed).
 * `threads: 0` compresses on the calling thread (synchronously, same bytes). Each thread holds
 * up to JOBS_PER_THREAD jobs; more are queued here. Block and dictionary buffers for owned jobs
 * come from `blocks()` and `dictionaries()` and return there when their job is done.
 */
export class DeflatePool {
  private readonly workers: Worker[] = [];
  private readonly queue: Array<{ job: DeflateJob; p: Pending }> = [];
  private readonly pending = new Map<number, Pending>();
  /** Jobs each thread holds. */
  private readonly load = new Map<Worker, number>();
  private nextId = 0;
  private failure: Error | null = null;
  readonly threads: number;
  readonly blocks: FreeList;
  readonly dictionaries: FreeList;

  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 0 || threads > 256) {
      throw new ArchiveError('usage', `threads must be an integer from 0 to 256 (got ${threads})`);
    }
    this.threads = threads;
    const keep = (JOBS_PER_THREAD + 2) * threads + 8;
    this.blocks = new FreeList(DEFLATE_BLOCK_SIZE, keep);
    this.dictionaries = new FreeList(DICTIONARY_SIZE, keep);
    for (let i = 0; i < threads; i++) this.spawn();
  }

  private spawn(): void {
    const w = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      env: {},
      stdout: false,
      // a thread allocates little but buffers: a small young generation keeps its heap small
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB },
    });
    w.unref();
    this.load.set(w, 0);
    w.on('message', (replies: Reply[]) => {
      this.load.set(w, (this.load.get(w) ?? 1) - 1);
      for (const m of replies) this.recycle(m);
      this.pump();
      for (const m of replies) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (!p) continue;
        if (m.error !== undefined) p.reject(new ArchiveError('internal', `deflate: ${m.error}`));
        else {
          const out = m.out!;
          p.resolve(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
        }
      }
    });
    w.on('error', (e) => this.fail(e));
    w.on('exit', (code) => {
      if (this.load.get(w)) this.fail(new Error(`deflate thread exited (code ${code})`));
    });
    this.workers.push(w);
  }

  private recycle(job: { data?: Uint8Array; dictionary?: Uint8Array }): void {
    this.blocks.give(job.data);
    this.dictionaries.give(job.dictionary);
  }

  private fail(e: Error): void {
    this.failure ??= new ArchiveError('internal', `deflate thread failed: ${e.message}`);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    for (const q of this.queue.splice(0)) q.p.reject(this.failure);
  }

  /** The thread with the fewest jobs, if it has room for one more. */
  private leastLoaded(): Worker | undefined {
    let best: Worker | undefined;
    let min = JOBS_PER_THREAD;
    for (const w of this.workers) {
      const n = this.load.get(w)!;
      if (n < min) [best, min] = [w, n];
    }
    return best;
  }

  /**
   * Hand queued jobs to threads with room, as one message per thread holding every job queued
   * meanwhile (up to BATCH_JOBS or BATCH_BYTES): many small files cost few messages.
   */
  private pump(): void {
    while (this.queue.length && !this.failure) {
      const w = this.leastLoaded();
      if (!w) return;
      const batch: Array<DeflateJob & { id: number }> = [];
      const transfer: ArrayBuffer[] = [];
      let bytes = 0;
      while (this.queue.length && batch.length < BATCH_JOBS && bytes < BATCH_BYTES) {
        const { job, p } = this.queue.shift()!;
        const id = this.nextId++;
        this.pending.set(id, p);
        const { data, dictionary, final, owned } = job;
        batch.push({ id, data, dictionary, final, owned });
        if (owned) transfer.push(data.buffer as ArrayBuffer);
        if (owned && dictionary) transfer.push(dictionary.buffer as ArrayBuffer);
        bytes += data.length;
      }
      this.load.set(w, this.load.get(w)! + 1);
      w.postMessage(batch, transfer);
    }
  }

  /** Compress one block. `job.data` must not change until the promise settles. */
  deflate(job: DeflateJob): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.threads === 0) {
      try {
        return Promise.resolve(deflateBlock(job));
      } catch (e) {
        return Promise.reject(e as Error);
      } finally {
        if (job.owned) this.recycle(job);
      }
    }
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ job, p: { resolve, reject } });
      this.pump();
    });
  }

  async close(): Promise<void> {
    const all = this.workers.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}

/**
 * Hands promised items to a consumer in the order they were queued, keeping at most `depth`
 * outstanding (push() waits while it is full: backpressure for the producer). The first failure,
 * of an item or of the consumer, is thrown by the next push() or by flush().
 */
export class OrderedOutput<T> {
  private tail: Promise<void> = Promise.resolve();
  private outstanding = 0;
  private waiters: Array<() => void> = [];
  private error: unknown = null;

  constructor(
    private readonly consume: (item: T) => void | Promise<void>,
    private readonly depth: number,
  ) {}

  async push(item: Promise<T> | T): Promise<void> {
    this.check();
    while (this.outstanding >= this.depth) {
      await new Promise<void>((r) => this.waiters.push(r));
      this.check();
    }
    this.outstanding++;
    const p = Promise.resolve(item);
    p.catch(() => {}); // observed through the chain below
    this.tail = this.tail.then(async () => {
      try {
        if (this.error === null) await this.consume(await p);
      } catch (e) {
        this.error ??= e;
      } finally {
        this.outstanding--;
        this.waiters.shift()?.();
      }
    });
  }

  private check(): void {
    if (this.error !== null) throw this.error;
  }

  /** Wait for everything queued to be consumed. */
  async flush(): Promise<void> {
    await this.tail;
    this.check();
  }
}

/**
 * One raw deflate stream cut into DEFLATE_BLOCK_SIZE blocks, compressed on `pool`. Compressed
 * output goes to `out` in order. The CRC-32 and length of the input are kept on the way.
 */
export class BlockDeflater {
  private block: Buffer;
  private fill = 0;
  private dictionary: Buffer | undefined;
  /** Input bytes handed to blocks already emitted. */
  private emitted = 0;
  crc = 0;
  size = 0;

  /** `sizeHint`: the input's length when known, so a small stream gets a small buffer. */
  constructor(
    private readonly pool: DeflatePool,
    private readonly out: (chunk: Promise<Buffer>) => Promise<void>,
    private readonly sizeHint?: number,
    private readonly blockSize = DEFLATE_BLOCK_SIZE,
  ) {
    if (blockSize < DICTIONARY_SIZE) throw new ArchiveError('internal', 'block size under 32 KiB');
    this.block = this.newBlock();
  }

  /** A buffer of its own memory for the next block: a whole block, or what the hint says is left. */
  private newBlock(): Buffer {
    const left = this.sizeHint === undefined ? this.blockSize : this.sizeHint - this.emitted;
    if (left >= this.blockSize && this.blockSize === this.pool.blocks.size) {
      return this.pool.blocks.take();
    }
    return Buffer.allocUnsafeSlow(Math.max(1, Math.min(this.blockSize, left)));
  }

  /**
   * Add input. Returns a promise only when a block was handed on and the output must be waited
   * for (backpressure); otherwise the chunk has been copied and nothing is pending.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    this.crc = zlib.crc32(chunk, this.crc);
    this.size += chunk.length;
    return this.copyIn(chunk, 0);
  }

  private copyIn(chunk: Buffer, from: number): Promise<void> | undefined {
    let off = from;
    while (off < chunk.length) {
      if (this.fill === this.blockSize) return this.emitThenCopy(chunk, off);
      if (this.fill === this.block.length) this.grow();
      const n = Math.min(this.block.length - this.fill, chunk.length - off);
      chunk.copy(this.block, this.fill, off, off + n);
      this.fill += n;
      off += n;
    }
    return undefined;
  }

  private async emitThenCopy(chunk: Buffer, off: number): Promise<void> {
    await this.emit(false);
    await this.copyIn(chunk, off);
  }

  /** The input is longer than its hint said: make room for a whole block. */
  private grow(): void {
    const bigger =
      this.blockSize === this.pool.blocks.size
        ? this.pool.blocks.take()
        : Buffer.allocUnsafeSlow(this.blockSize);
    this.block.copy(bigger, 0, 0, this.fill);
    this.block = bigger;
  }

  private async emit(final: boolean): Promise<void> {
    const data = this.block.subarray(0, this.fill);
    const dictionary = this.dictionary;
    // only a full block is ever followed by another, so it holds the whole dictionary
    if (final) this.dictionary = undefined;
    else {
      this.dictionary = this.pool.dictionaries.take();
      data.copy(this.dictionary, 0, data.length - DICTIONARY_SIZE);
    }
    // the block's memory now belongs to the job; the next block gets another buffer
    const done = this.pool.deflate({ data, dictionary, final, owned: true });
    this.emitted += this.fill;
    this.fill = 0;
    this.block = final ? Buffer.alloc(0) : this.newBlock();
    await this.out(done);
  }

  /** Compress what is left with Z_FINISH. */
  async end(): Promise<void> {
    await this.emit(true);
  }
}
