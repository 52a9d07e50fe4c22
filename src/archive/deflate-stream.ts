// Streams over the deflate pool: one raw deflate stream cut into blocks (BlockDeflater), and the
// in-order hand-off of compressed results to a writer (OrderedOutput).
import zlib from 'node:zlib';
import { ArchiveError } from '../util/errors.js';
import { DEFLATE_BLOCK_SIZE, DICTIONARY_SIZE, type DeflatePool } from './deflate.js';

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

  /**
   * A buffer of its own memory for the next block: one of the pool's (reused, even for a short
   * stream: a small file's block would otherwise be garbage the moment it is compressed), or for
   * another block size a whole block, or what the hint says is left.
   */
  private newBlock(): Buffer {
    const left = this.sizeHint === undefined ? this.blockSize : this.sizeHint - this.emitted;
    if (this.blockSize === DEFLATE_BLOCK_SIZE) return this.pool.takeBlock(left);
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
      this.blockSize === DEFLATE_BLOCK_SIZE
        ? this.pool.takeBlock(this.blockSize)
        : Buffer.allocUnsafeSlow(this.blockSize);
    this.block.copy(bigger, 0, 0, this.fill);
    this.pool.giveBlock(this.block);
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
