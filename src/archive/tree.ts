// The tree model every source produces: entries relative to the subdir, directories included,
// sorted by the bytes of their UTF-8 path, with normalised modes. Plus the path rules shared by
// packing and unpacking.
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveError } from '../util/errors.js';
import type { EntryType } from './tar.js';

export interface TreeEntry {
  /** Relative to the subdir, '/'-separated, no trailing slash. */
  path: string;
  type: EntryType;
  /** Normalised: 0644/0755 for files, 0755 for dirs, 0777 for symlinks. */
  mode: number;
  /** Content size for files, 0 otherwise. */
  size: number;
  linkTarget?: string;
  /** Content of a file, streamed. */
  read?: () => AsyncIterable<Buffer>;
  /**
   * True when `read` may be called at any time, several at once and before earlier entries'
   * contents are consumed (files on disk). Otherwise an entry's content can only be read before
   * the next entry is asked for.
   */
  detached?: boolean;
  /**
   * The content read synchronously into `buf`, as many times as it takes (files on disk: cheaper
   * than `read` when the data is in the page cache). Each chunk is a view of `buf`, valid until
   * the next one is asked for.
   */
  readSync?: (buf: Buffer) => Iterable<Buffer>;
}

export interface TreeSource {
  /** Human name of where the tree comes from (URL or path). */
  repository: string;
  /** Full 40-hex revision. */
  revision: string;
  entries(): AsyncIterable<TreeEntry>;
  close(): Promise<void>;
}

export const FILE_MODE = 0o644;
export const EXEC_MODE = 0o755;
export const DIR_MODE = 0o755;
export const LINK_MODE = 0o777;

export const fileMode = (executable: boolean) => (executable ? EXEC_MODE : FILE_MODE);

/** Why a relative entry path is unsafe, or null when it is fine. */
export function unsafeReason(rel: string): string | null {
  if (rel === '') return 'empty path';
  if (rel.includes('\0')) return 'NUL byte in path';
  if (/[\n\r]/.test(rel)) return 'line break in path';
  if (rel.startsWith('/') || /^[A-Za-z]:[\\/]/.test(rel)) return 'absolute path';
  for (const seg of rel.split('/')) {
    if (seg === '..') return "'..' component";
    if (seg === '' || seg === '.') return 'empty or . component';
  }
  return null;
}

export function checkEntryPath(rel: string): void {
  const why = unsafeReason(rel);
  if (why) throw new ArchiveError('unsafe-path', `unsafe entry ${JSON.stringify(rel)}: ${why}`);
}

/** True when a symlink at `rel` pointing to `target` resolves inside the tree. */
export function linkStaysInside(rel: string, target: string): boolean {
  if (target === '' || target.startsWith('/') || target.includes('\0')) return false;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
  return resolved !== '..' && !resolved.startsWith('../') && !path.posix.isAbsolute(resolved);
}

/**
 * `items` sorted by the bytes of their UTF-8 path. Paths of ASCII alone compare as strings (the
 * same order); any other path is encoded once, not at every comparison.
 */
export function sortByPathBytes<T extends { path: string }>(items: T[]): T[] {
  // eslint-disable-next-line no-control-regex
  if (items.every((e) => /^[\x00-\x7f]*$/.test(e.path))) {
    return items.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
  const keyed = items.map((e) => ({ e, key: Buffer.from(e.path, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  for (let i = 0; i < keyed.length; i++) items[i] = keyed[i].e;
  return items;
}

/** Add the directory entries implied by the files and symlinks, then sort by path bytes. */
export function completeTree(items: TreeEntry[]): TreeEntry[] {
  const dirs = new Set<string>();
  const out: TreeEntry[] = [];
  for (const item of items) {
    if (item.type === 'dir') continue;
    out.push(item);
    let d = path.posix.dirname(item.path);
    while (d !== '.' && !dirs.has(d)) {
      dirs.add(d);
      d = path.posix.dirname(d);
    }
  }
  for (const d of dirs) out.push({ path: d, type: 'dir', mode: DIR_MODE, size: 0 });
  sortByPathBytes(out);
  for (let i = 1; i < out.length; i++) {
    if (out[i].path === out[i - 1].path) {
      throw new ArchiveError('corrupt', `duplicate entry ${JSON.stringify(out[i].path)} in tree`);
    }
  }
  return out;
}

/** Files up to this size are read with one read call into a buffer of their size. */
const WHOLE_READ = 1024 * 1024;

function changedSize(rel: string, size: number, n: number): ArchiveError {
  return new ArchiveError(
    'corrupt',
    `${rel} changed size while being archived (${size} → ${n > size ? `over ${size}` : n})`,
  );
}

/**
 * `size` bytes of `fd` read into `buf` (views of it, one after the other), checking the file
 * still has exactly that many: the last read asks for one byte more.
 */
function* readChunks(fd: number, size: number, rel: string, buf: Buffer): Generator<Buffer> {
  let n = 0;
  while (true) {
    const want = Math.min(buf.length, size - n + 1);
    let fill = 0;
    while (fill < want) {
      const got = fs.readSync(fd, buf, fill, want - fill, n + fill);
      if (got === 0) break;
      fill += got;
    }
    if (n + fill > size) throw changedSize(rel, size, n + fill);
    n += fill;
    if (fill < want && n !== size) throw changedSize(rel, size, n);
    if (fill > 0) yield buf.subarray(0, fill);
    if (fill < want) return;
  }
}

function* readFileSync(abs: string, size: number, rel: string, buf: Buffer): Generator<Buffer> {
  const fd = fs.openSync(abs, 'r');
  try {
    yield* readChunks(fd, size, rel, buf);
  } finally {
    fs.closeSync(fd);
  }
}

async function readWhole(abs: string, size: number, rel: string): Promise<Buffer> {
  const fh = await fs.promises.open(abs, 'r');
  try {
    // one byte more than expected tells a file that grew from one that did not
    const buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n !== size) throw changedSize(rel, size, n);
    return buf.subarray(0, size);
  } finally {
    await fh.close();
  }
}

async function* readFile(abs: string, size: number, rel: string): AsyncIterable<Buffer> {
  if (size <= WHOLE_READ) {
    yield await readWhole(abs, size, rel);
    return;
  }
  let n = 0;
  for await (const chunk of fs.createReadStream(abs, { highWaterMark: 256 * 1024 })) {
    n += (chunk as Buffer).length;
    if (n > size) break;
    yield chunk as Buffer;
  }
  if (n !== size) throw changedSize(rel, size, n);
}

/** The entry for one path of a directory on disk (lstat: symlinks are not followed). */
export function diskEntry(root: string, rel: string): TreeEntry | null {
  const abs = path.join(root, ...rel.split('/'));
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch {
    return null;
  }
  if (st.isSymbolicLink()) {
    return {
      path: rel,
      type: 'symlink',
      mode: LINK_MODE,
      size: 0,
      linkTarget: fs.readlinkSync(abs),
    };
  }
  if (st.isDirectory()) return { path: rel, type: 'dir', mode: DIR_MODE, size: 0 };
  if (st.isFile()) {
    const size = st.size;
    return {
      path: rel,
      type: 'file',
      mode: fileMode((st.mode & 0o100) !== 0),
      size,
      read: () => readFile(abs, size, rel),
      readSync: (buf: Buffer) => readFileSync(abs, size, rel, buf),
      detached: true,
    };
  }
  throw new ArchiveError('unsafe-path', `${rel} is not a regular file, directory or symlink`);
}

/** Every file and symlink under `root` (recursively, not following symlinks). */
export function walkDisk(root: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  const visit = (relDir: string) => {
    const abs = relDir ? path.join(root, ...relDir.split('/')) : root;
    for (const name of fs.readdirSync(abs)) {
      const rel = relDir ? `${relDir}/${name}` : name;
      const e = diskEntry(root, rel);
      if (!e) continue;
      if (e.type === 'dir') visit(rel);
      else out.push(e);
    }
  };
  visit('');
  return out;
}

/** True when `s` has a control character (C0 or DEL). */
export function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
