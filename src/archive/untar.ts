// Strict streaming reading of an (uncompressed) tar stream with tar@7's Parser: ustar, PAX 'x'/'g'
// records, GNU long names and links. tar@7 warns and carries on where this reader must refuse, so
// every warning (bad checksum, truncation, malformed header) becomes an error here, as does a
// stream without its end-of-archive marker. Entry types are reported as they are (unsupported ones
// included), so callers refuse what they do not accept. Backpressure: the stream is read no faster
// than the consumer takes entry contents.
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { ArchiveError } from '../util/errors.js';

export type RawType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface RawEntry {
  path: string;
  type: RawType;
  /** tar@7's name of the entry type ('File', 'SymbolicLink', 'Unsupported', …). */
  typeName: string;
  mode: number;
  size: number;
  linkpath: string;
  /** The content; whatever is not read is skipped. */
  content: AsyncIterable<Buffer>;
}

const TYPES: Record<string, RawType> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Link: 'hardlink',
  SymbolicLink: 'symlink',
  CharacterDevice: 'char',
  BlockDevice: 'block',
  Directory: 'dir',
  FIFO: 'fifo',
};

/** Largest PAX or GNU long-name body accepted (tar@7 ignores bigger ones; this reader refuses). */
const MAX_META = 1024 * 1024;
/** Entries parsed ahead of the consumer before feeding pauses. */
const MAX_QUEUED = 64;

const corrupt = (message: string, entry?: string) =>
  new ArchiveError(
    'corrupt',
    entry === undefined ? message : `${message} (entry ${JSON.stringify(entry)})`,
    entry === undefined ? {} : { entry },
  );

interface Queued {
  entry: ReadEntry;
  ignored: boolean;
}

type WarnData = { header?: { path?: string }; entry?: { path?: string } };

/**
 * The state shared by the side feeding tar@7's parser and the side taking its entries: the
 * parsed entries waiting, the first failure, and one waiter on each side.
 */
class TarRead {
  readonly queue: Queued[] = [];
  failure: unknown;
  sawEof = false;
  ended = false;
  stopped = false;
  // one waiter for the consumer side (next entry, more content, end of an entry) ...
  private wake: (() => void) | undefined;
  // ... and one for the feeding side (parser drained, room in the queue)
  private resumeFeed: (() => void) | undefined;
  // the entry tar@7 writes body data into (at most one is unfinished at a time)
  private latest: ReadEntry | undefined;

  constructor(private readonly what: string) {}

  notify = () => {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  };
  sleep = () => new Promise<void>((resolve) => (this.wake = resolve));
  feedOn = () => {
    const r = this.resumeFeed;
    this.resumeFeed = undefined;
    r?.();
  };
  fail = (e: unknown) => {
    this.failure ??= e;
    this.notify();
    this.feedOn();
  };

  private enqueue(entry: ReadEntry, ignored: boolean): void {
    this.queue.push({ entry, ignored });
    this.latest = entry;
    entry.on('readable', this.notify);
    entry.on('end', this.notify);
    this.notify();
  }

  /** Take the parser's entries, and turn each of its warnings into a failure. */
  listen(parser: Parser): void {
    const what = this.what;
    parser.on('entry', (entry: ReadEntry) => this.enqueue(entry, false));
    parser.on('ignoredEntry', (entry: ReadEntry) => this.enqueue(entry, true));
    parser.on('eof', () => {
      this.sawEof = true;
    });
    parser.on('warn', (code: string, message: string, data?: WarnData) => {
      // an archive of nothing but its end marker is "unrecognized" to tar@7, and fine here
      if (code === 'TAR_BAD_ARCHIVE' && this.sawEof && /unrecognized/i.test(message)) return;
      const name = data?.header?.path || data?.entry?.path || undefined;
      if (/checksum/i.test(message))
        this.fail(corrupt(`${what}: tar header checksum mismatch`, name));
      else this.fail(corrupt(`${what}: invalid tar data: ${message}`, name));
    });
    parser.on('error', (e: unknown) => this.fail(e));
    parser.on('end', () => {
      this.ended = true;
      this.notify();
    });
  }

  // Feed the parser no faster than entries are taken: not while the newest entry still holds
  // content nobody has read, or many entries wait. (tar@7's own write() result cannot be used:
  // it reports backpressure for a paused entry even when the chunk was too short to reach it.)
  // After the end-of-archive marker the rest (record padding) is read and dropped, not buffered.
  private backlog(): boolean {
    const latest = this.latest;
    return (
      this.queue.length > MAX_QUEUED ||
      (latest !== undefined && !latest.emittedEnd && latest.bufferLength > 0)
    );
  }

  /** Write `input` into the parser, with backpressure; failures are recorded, not thrown. */
  feed(input: Readable, parser: Parser): Promise<void> {
    return (async () => {
      let first = true;
      for await (const chunk of input as AsyncIterable<Buffer>) {
        if (this.stopped) return;
        if (this.failure !== undefined || this.sawEof) continue;
        if (first && chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
          throw corrupt(`${this.what}: a gzip stream inside the gzip stream, not a tar archive`);
        }
        first = false;
        parser.write(chunk);
        while (this.backlog() && !this.stopped && this.failure === undefined) {
          await new Promise<void>((resolve) => (this.resumeFeed = resolve));
        }
      }
      parser.end();
    })().catch(this.fail);
  }

  /** The next parsed entry, or null at the end. */
  async next(): Promise<Queued | null> {
    while (true) {
      if (this.failure !== undefined) throw this.failure;
      const q = this.queue.shift();
      if (q) {
        this.feedOn();
        return q;
      }
      if (this.ended) return null;
      await this.sleep();
    }
  }

  /** The content of entry `q`, which must be `size` bytes. */
  async *content(q: Queued, size: number): AsyncGenerator<Buffer> {
    // tar@7 skips the body of an ignored (unsupported) entry itself
    if (q.ignored) return;
    const { entry } = q;
    let consumed = 0;
    while (true) {
      const c = entry.read() as Buffer | null;
      this.feedOn();
      if (c !== null) {
        consumed += c.length;
        yield c;
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (entry.emittedEnd) break;
      await this.sleep();
    }
    if (this.failure !== undefined) throw this.failure;
    if (consumed !== size) {
      throw corrupt(`${this.what}: truncated entry, ${consumed} of ${size} bytes`, entry.path);
    }
  }

  /** Skip whatever of `entry`'s content is left, until its end. */
  async skipRest(entry: ReadEntry): Promise<void> {
    entry.resume();
    this.feedOn();
    while (!entry.emittedEnd) {
      if (this.failure !== undefined) throw this.failure;
      await this.sleep();
    }
  }
}

/** The entry's type, refusing a header this reader cannot trust. */
function entryType(q: Queued, what: string): RawType {
  const { entry } = q;
  if (q.ignored && entry.meta) {
    throw corrupt(`${what}: oversized ${entry.type} header (over ${MAX_META} bytes)`);
  }
  const type = q.ignored ? 'other' : (TYPES[entry.type] ?? 'other');
  if (type !== 'other') {
    if (entry.mode === undefined) throw corrupt(`${what}: bad mode in tar header`, entry.path);
    if (entry.header.size === undefined)
      throw corrupt(`${what}: bad size in tar header`, entry.path);
  }
  return type;
}

/**
 * Entries of the tar stream `input`. Consume or ignore each entry's content before asking for the
 * next. `what` names the stream in errors. Errors of `input` itself are thrown as they are.
 */
export async function* readTar(input: Readable, what = 'archive'): AsyncGenerator<RawEntry> {
  const parser = new Parser({ brotli: false, zstd: false, maxMetaEntrySize: MAX_META });
  const read = new TarRead(what);
  read.listen(parser);
  const feeding = read.feed(input, parser);
  try {
    while (true) {
      const q = await read.next();
      if (!q) break;
      const { entry } = q;
      const type = entryType(q, what);
      const size = type === 'file' ? entry.size : 0;
      const content = read.content(q, size);
      yield {
        path: entry.path,
        type,
        typeName: entry.type,
        mode: entry.mode ?? 0,
        size,
        linkpath: entry.linkpath ?? '',
        content,
      };
      // skip whatever the consumer left unread
      await content.return(undefined);
      if (!q.ignored) await read.skipRest(entry);
    }
    if (!read.sawEof) throw corrupt(`${what}: tar archive ended without its end-of-archive marker`);
    await feeding;
  } finally {
    read.stopped = true;
    read.feedOn();
    if (!read.ended) input.destroy();
  }
}
