// Block-parallel, deterministic raw deflate. A stream is cut into fixed-size blocks; each block is
// compressed on its own (zlib level 6), primed with the previous 32 KiB of input as its
// dictionary, and ends with a sync flush (the last one with Z_FINISH). The concatenated outputs
// are one valid deflate stream whose bytes depend only on the input, the level and the block
// size, never on how many threads compressed it or in what order they finished (the scheme pigz
// uses). Blocks run on a small pool of worker threads; the streams over it are in
// deflate-stream.ts.
// Memory stays flat whatever the stream's length: a block's buffers, and the buffer its result is
// copied into, are moved to its thread and back (never copied) and reused for later blocks, so the
// main thread makes no garbage of them. What zlib allocates inside a thread for each block is
// collected by that thread every few MB (V8 would otherwise let tens of MB of it pile up per
// thread, since a thread's own heap barely grows).
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
  /** Where a thread copies the result (from the pool's `outputs`), moved there and back. */
  output?: Uint8Array;
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

/**
 * Sizes of the block buffers the pool reuses, smallest first, each with room for its result
 * (deflate's worst case, stored blocks, with margin). A stream known to be short (most files of a
 * harness, each deflated on its own for the zip) takes the small one, so dozens of them in flight
 * hold little memory. Not part of the format.
 */
const SIZE_CLASSES = [
  { block: 16 * 1024, output: 16 * 1024 + 1024 },
  { block: DEFLATE_BLOCK_SIZE, output: DEFLATE_BLOCK_SIZE + 4096 },
];

/** Input bytes a thread compresses between collections of what zlib allocated for them. */
const COLLECT_EVERY = 8 * 1024 * 1024;

// The worker's whole program (CommonJS, evaluated: no file to resolve, no loader to inherit).
// It must compress exactly as deflateBlock does. The input's buffers go back with the result,
// which is copied into the job's output buffer (or, when there is none or it is too small, moved
// or copied out in a buffer of its own). Collection: Node lets a program expose V8's gc() at run
// time (v8.setFlagsFromString, then a new context); a young-generation collection is enough, as
// zlib's buffers die young, and costs about a millisecond. Where gc() is refused the thread just
// goes without, and the bytes are the same either way.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const c = zlib.constants;
let collect = null;
try {
  require('node:v8').setFlagsFromString('--expose-gc');
  collect = require('node:vm').runInNewContext('gc');
} catch {}
if (typeof collect !== 'function') collect = null;
let sinceCollect = 0;
let canMove = true;
function spare(m, reply, transfer) {
  if (!m.output) return;
  reply.spare = m.output;
  transfer.push(m.output.buffer);
}
function give(m, reply, transfer) {
  if (!m.owned) return;
  reply.data = m.data;
  transfer.push(m.data.buffer);
  if (m.dictionary) {
    reply.dictionary = m.dictionary;
    transfer.push(m.dictionary.buffer);
  }
}
function place(m, out, reply, transfer) {
  if (m.output && out.length <= m.output.length) {
    m.output.set(out);
    reply.out = m.output.subarray(0, out.length);
    reply.pooled = true;
    transfer.push(m.output.buffer);
    return;
  }
  spare(m, reply, transfer);
  if (out.buffer.byteLength <= Buffer.poolSize || !canMove) out = new Uint8Array(out);
  reply.out = out;
  transfer.push(out.buffer);
}
function run(m, replies, transfer) {
  const reply = { id: m.id };
  try {
    const opts = { level: ${DEFLATE_LEVEL}, memLevel: 8, windowBits: 15, strategy: c.Z_DEFAULT_STRATEGY,
      chunkSize: ${ZLIB_CHUNK_SIZE}, finishFlush: m.final ? c.Z_FINISH : c.Z_SYNC_FLUSH };
    if (m.dictionary && m.dictionary.length) opts.dictionary = m.dictionary;
    place(m, zlib.deflateRawSync(m.data, opts), reply, transfer);
  } catch (e) {
    reply.error = String((e && e.message) || e);
    spare(m, reply, transfer);
  }
  give(m, reply, transfer);
  sinceCollect += m.data.length;
  replies.push(reply);
}
function send(replies, transfer) {
  try {
    parentPort.postMessage(replies, transfer);
  } catch {
    // a Node that marks zlib's output untransferable: send copies from now on
    canMove = false;
    const kept = transfer.filter((b) => !replies.some((r) => r.out && !r.pooled && r.out.buffer === b));
    for (const r of replies) if (r.out && !r.pooled) r.out = new Uint8Array(r.out);
    parentPort.postMessage(replies, kept);
  }
}
parentPort.on('message', (batch) => {
  const replies = [];
  const transfer = [];
  for (const m of batch) run(m, replies, transfer);
  send(replies, transfer);
  if (collect && sinceCollect >= ${COLLECT_EVERY}) {
    sinceCollect = 0;
    collect({ type: 'minor' });
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
  /** `out` is a view of the job's output buffer. */
  pooled?: boolean;
  /** The job's output buffer, unused (the result did not fit, or failed). */
  spare?: Uint8Array;
  error?: string;
  data?: Uint8Array;
  dictionary?: Uint8Array;
}

/** The default thread count: one per core the process may use. */
export const defaultThreads = () =>
  typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;

/** Young-generation size of a deflate thread's heap, in MB. */
const WORKER_YOUNG_MB = 2;

/** Files the zip writer keeps in flight (queued for writing, their blocks compressing). */
export const ZIP_FILES_IN_FLIGHT = 64;

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

  /** Keep `b`'s memory for reuse: only a buffer of this list's size, and never twice. */
  give(b: Uint8Array | undefined): void {
    const ab = b?.buffer as ArrayBuffer | undefined;
    if (
      ab &&
      ab.byteLength === this.size &&
      this.free.length < this.keep &&
      !this.free.includes(ab)
    ) {
      this.free.push(ab);
    }
  }
}

/**
 * A fixed set of deflate threads, started at once (they boot while the tree is listed).
 * `threads: 0` compresses on the calling thread (synchronously, same bytes). Each thread holds
 * up to JOBS_PER_THREAD jobs; more are queued here. Block and dictionary buffers for owned jobs
 * come from takeBlock() and `dictionaries` and return there when their job is done; the result
 * of such a job is a view of a pool buffer, which the consumer hands to release().
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
  readonly dictionaries: FreeList;
  /** Per size class: its block buffers, and the buffers threads copy their results into. */
  private readonly classes: Array<{ blocks: FreeList; outputs: FreeList }>;

  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 0 || threads > 256) {
      throw new ArchiveError('usage', `threads must be an integer from 0 to 256 (got ${threads})`);
    }
    this.threads = threads;
    // enough for every block in flight: the threads' jobs, and the zip's queue of small files
    const keep = (JOBS_PER_THREAD + 2) * threads + 8 + ZIP_FILES_IN_FLIGHT;
    this.dictionaries = new FreeList(DICTIONARY_SIZE, keep);
    this.classes = SIZE_CLASSES.map((c) => ({
      blocks: new FreeList(c.block, keep),
      outputs: new FreeList(c.output, keep),
    }));
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

  private recycle(job: { data?: Uint8Array; dictionary?: Uint8Array; spare?: Uint8Array }): void {
    this.giveBlock(job.data);
    this.dictionaries.give(job.dictionary);
    this.release(job.spare);
  }

  /**
   * A reused buffer for a block of up to `bytes` (at most DEFLATE_BLOCK_SIZE): the smallest size
   * class that holds it. It comes back to the pool with its job, or through giveBlock().
   */
  takeBlock(bytes: number): Buffer {
    const c = this.classes.find((k) => bytes <= k.blocks.size) ?? this.classes.at(-1)!;
    return c.blocks.take();
  }

  /** A block buffer no longer used: kept for reuse when it is one of the pool's. */
  giveBlock(b: Uint8Array | undefined): void {
    for (const c of this.classes) c.blocks.give(b);
  }

  /**
   * A result the caller has finished with (its bytes copied or written out): its buffer is reused
   * for a later block's result. Anything else given here is left to the garbage collector.
   */
  release(result: Uint8Array | undefined): void {
    for (const c of this.classes) c.outputs.give(result);
  }

  /** The reused buffer a job's result is copied into, for a block of one of the pool's sizes. */
  private outputFor(data: Uint8Array): Buffer | undefined {
    const n = data.buffer.byteLength;
    return this.classes.find((c) => c.blocks.size === n)?.outputs.take();
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
        // a pooled block's result is copied into a reused buffer; any other moves out in its own
        const output = owned ? this.outputFor(data) : undefined;
        batch.push({ id, data, dictionary, final, owned, output });
        if (owned) transfer.push(data.buffer as ArrayBuffer);
        if (owned && dictionary) transfer.push(dictionary.buffer as ArrayBuffer);
        if (output) transfer.push(output.buffer as ArrayBuffer);
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
