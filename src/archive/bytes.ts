// Pull-style reading of a byte stream: lines and exact-length chunks, with backpressure (nothing
// is read ahead beyond the chunk at hand). Used for `git cat-file --batch`.
import { ArchiveError } from '../util/errors.js';

export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private ended = false;

  constructor(
    stream: AsyncIterable<Buffer | string>,
    private readonly what = 'stream',
  ) {
    this.it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  private truncated(need: string): ArchiveError {
    return new ArchiveError('corrupt', `${this.what} ended early (expected ${need})`);
  }

  /** The next line without its LF. */
  async line(): Promise<string> {
    let from = 0;
    while (true) {
      const i = this.buf.indexOf(10, from);
      if (i >= 0) {
        const s = this.buf.subarray(0, i).toString('utf8');
        this.buf = this.buf.subarray(i + 1);
        return s;
      }
      from = this.buf.length;
      if (!(await this.fill())) throw this.truncated('a line');
    }
  }

  /** Exactly n bytes in one buffer (for small reads such as headers); null at a clean end. */
  async exact(n: number): Promise<Buffer | null> {
    while (this.buf.length < n) {
      if (!(await this.fill())) {
        if (this.buf.length === 0) return null;
        throw this.truncated(`${n} bytes, got ${this.buf.length}`);
      }
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Exactly n bytes, streamed as they arrive. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) {
        throw this.truncated(`${left} more bytes`);
      }
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      left -= take;
      yield out;
    }
  }

  /** Skip exactly n bytes. */
  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) {
      // discard
    }
  }
}
