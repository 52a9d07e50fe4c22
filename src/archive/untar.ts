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

/**
 * Entries of the tar stream `input`. Consume or ignore each entry's content before asking for the
 * next. `what` names the stream in errors. Errors of `input` itself are thrown as they are.
 */
export async function* readTar(input: Readable, what = 'archive'): AsyncGenerator<RawEntry> {
  const parser = new Parser({ brotli: false, zstd: false, maxMetaEntrySize: MAX_META });
  const queue: Queued[] = [];
  let failure: unknown;
  let sawEof = false;
  let ended = false;
  let stopped = false;
  // one waiter for the consumer side (next entry, more content, end of an entry) ...
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const sleep = () => new Promise<void>((resolve) => (wake = resolve));
  // ... and one for the feeding side (parser drained, room in the queue)
  let resumeFeed: (() => void) | undefined;
  const feedOn = () => {
    const r = resumeFeed;
    resumeFeed = undefined;
    r?.();
  };
  const fail = (e: unknown) => {
    failure ??= e;
    notify();
    feedOn();
  };
  // the entry tar@7 writes body data into (at most one is unfinished at a time)
  let latest: ReadEntry | undefined;
  const enqueue = (entry: ReadEntry, ignored: boolean) => {
    queue.push({ entry, ignored });
    latest = entry;
    entry.on('readable', notify);
    entry.on('end', notify);
    notify();
  };
  parser.on('entry', (entry: ReadEntry) => enqueue(entry, false));
  parser.on('ignoredEntry', (entry: ReadEntry) => enqueue(entry, true));
  parser.on('eof', () => {
    sawEof = true;
  });
  type WarnData = { header?: { path?: string }; entry?: { path?: string } };
  parser.on('warn', (code: string, message: string, data?: WarnData) => {
    // an archive of nothing but its end marker is "unrecognized" to tar@7, and fine here
    if (code === 'TAR_BAD_ARCHIVE' && sawEof && /unrecognized/i.test(message)) return;
    const name = data?.header?.path || data?.entry?.path || undefined;
    if (/checksum/i.test(message)) fail(corrupt(`${what}: tar header checksum mismatch`, name));
    else fail(corrupt(`${what}: invalid tar data: ${message}`, name));
  });
  parser.on('error', (e: unknown) => fail(e));

  parser.on('end', () => {
    ended = true;
    notify();
  });

  // Feed the parser no faster than entries are taken: not while the newest entry still holds
  // content nobody has read, or many entries wait. (tar@7's own write() result cannot be used:
  // it reports backpressure for a paused entry even when the chunk was too short to reach it.)
  // After the end-of-archive marker the rest (record padding) is read and dropped, not buffered.
  const backlog = () =>
    queue.length > MAX_QUEUED ||
    (latest !== undefined && !latest.emittedEnd && latest.bufferLength > 0);
  const feeding = (async () => {
    let first = true;
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (stopped) return;
      if (failure !== undefined || sawEof) continue;
      if (first && chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
        throw corrupt(`${what}: a gzip stream inside the gzip stream, not a tar archive`);
      }
      first = false;
      parser.write(chunk);
      while (backlog() && !stopped && failure === undefined) {
        await new Promise<void>((resolve) => (resumeFeed = resolve));
      }
    }
    parser.end();
  })().catch(fail);

  const next = async (): Promise<Queued | null> => {
    while (true) {
      if (failure !== undefined) throw failure;
      const q = queue.shift();
      if (q) {
        feedOn();
        return q;
      }
      if (ended) return null;
      await sleep();
    }
  };

  try {
    while (true) {
      const q = await next();
      if (!q) break;
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
      const size = type === 'file' ? entry.size : 0;
      // tar@7 skips the body of an ignored (unsupported) entry itself
      const content = (async function* () {
        if (q.ignored) return;
        let consumed = 0;
        while (true) {
          const c = entry.read() as Buffer | null;
          feedOn();
          if (c !== null) {
            consumed += c.length;
            yield c;
            continue;
          }
          if (failure !== undefined) throw failure;
          if (entry.emittedEnd) break;
          await sleep();
        }
        if (failure !== undefined) throw failure;
        if (consumed !== size) {
          throw corrupt(`${what}: truncated entry, ${consumed} of ${size} bytes`, entry.path);
        }
      })();
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
      if (q.ignored) continue;
      entry.resume();
      feedOn();
      while (!entry.emittedEnd) {
        if (failure !== undefined) throw failure;
        await sleep();
      }
    }
    if (!sawEof) throw corrupt(`${what}: tar archive ended without its end-of-archive marker`);
    await feeding;
  } finally {
    stopped = true;
    feedOn();
    if (!ended) input.destroy();
  }
}
