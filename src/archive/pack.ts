// Streaming packer: one pass over the tree's entries gives the tree digest, the tar.gz and the
// zip. Tar blocks go through a block-parallel deflate (deflate.ts) into a gzip member (no name,
// mtime 0, OS byte 255); each file of the zip is deflated the same way on its own. Contents are
// read ahead (several files at once where the source allows) while earlier ones are compressed.
import crypto from 'node:crypto';
import { ArchiveError, isArchiveError } from '../util/errors.js';
import { TreeModel } from './tree-model.js';
import { DeflatePool, defaultThreads } from './deflate.js';
import { TarGzWriter, ZipWriter, type ZipFileEntry } from './pack-writers.js';
import { END_OF_ARCHIVE, entryHeader, padding } from './tar.js';
import { checkEntryPath, linkStaysInside, type TreeEntry } from './tree.js';

export interface PackLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

export const TREE_DIGEST_SALT = (version: number) => `mozharness-archive tree v${version}\n`;

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
const EMPTY = Buffer.alloc(0);

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

/** The buffer files are read into synchronously, reused from one file and chunk to the next. */
const READ_BUFFER = 1024 * 1024;

interface Writers {
  tar: TarGzWriter | null;
  zip: ZipWriter | null;
  scratch: Buffer;
}

/** One file's content on its way into both archives and its content hash. */
class FileContent {
  readonly hash = crypto.createHash('sha256');
  bytes = 0;
  constructor(
    private readonly e: TreeEntry,
    private readonly tar: TarGzWriter | null,
    private readonly zf: ZipFileEntry | null,
  ) {}

  /** Take one chunk; a promise only when a writer asks to wait. False past the stated size. */
  add(chunk: Buffer): Promise<void> | undefined | false {
    this.bytes += chunk.length;
    if (this.bytes > this.e.size) return false;
    this.hash.update(chunk);
    const t = this.tar?.write(chunk);
    if (!this.zf) return t;
    if (t) return t.then(() => this.zf!.write(chunk));
    return this.zf.write(chunk);
  }
}

/** One file into both archives; its content's sha256. */
async function packFile(e: Loaded, { tar, zip, scratch }: Writers): Promise<string> {
  await tar?.write(entryHeader(e));
  const zf = zip && e.size > 0 ? zip.beginFile(e) : null;
  const c = new FileContent(e, tar, zf);
  if (e.data) {
    await c.add(await e.data);
  } else if (e.readSync) {
    // each chunk is consumed before the next read reuses the buffer
    for (const chunk of e.readSync(scratch)) {
      const r = c.add(chunk);
      if (r === false) break;
      if (r) await r;
    }
  } else if (e.read) {
    for await (const chunk of e.read()) {
      const r = c.add(chunk);
      if (r === false) break;
      if (r) await r;
    }
  }
  checkSize(e, c.bytes);
  await tar?.write(padding(e.size));
  if (zf) await zip!.endFile(zf);
  else await zip?.addStored(e, EMPTY);
  return c.hash.digest('hex');
}

/** One directory or symlink into both archives; the sha256 its digest line names. */
async function packOther(e: TreeEntry, { tar, zip }: Writers): Promise<string> {
  await tar?.write(entryHeader(e));
  if (e.type === 'symlink') {
    const target = Buffer.from(e.linkTarget ?? '', 'utf8');
    await zip?.addStored(e, target);
    return crypto.createHash('sha256').update(target).digest('hex');
  }
  await zip?.addStored(e, EMPTY);
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
