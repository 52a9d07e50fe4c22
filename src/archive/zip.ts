// Deterministic zip records (PKWARE APPNOTE 6.3): local headers, central directory, end records.
// Every entry has the fixed DOS time 1980-01-01 00:00 (the earliest a zip can say), no extra
// timestamp fields, no data descriptor, "made by" Unix with the Unix mode and file type in the
// high 16 bits of the external attributes (Info-ZIP's unzip restores exec bits and symlinks
// from them), the UTF-8 flag when a name is not ASCII, and zip64 fields only where a size or
// offset needs them. Directories end with '/', symlinks store their target as content.
import type { EntryType } from './tar.js';

const LOCAL_SIG = 0x04034b50;
const CENTRAL_SIG = 0x02014b50;
const END_SIG = 0x06054b50;
const ZIP64_END_SIG = 0x06064b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EXTRA = 0x0001;

export const METHOD_STORED = 0;
export const METHOD_DEFLATE = 8;

const FLAG_UTF8 = 0x0800;
/** 1980-01-01 00:00:00 in DOS date and time fields. */
export const DOS_DATE = (0 << 9) | (1 << 5) | 1;
export const DOS_TIME = 0;
const MADE_BY_UNIX = 3 << 8;
const MAX32 = 0xffffffff;
const MAX16 = 0xffff;

const S_IF = { file: 0o100000, dir: 0o040000, symlink: 0o120000 } as const;
const MSDOS_DIRECTORY = 0x10;

export interface ZipRecord {
  name: Buffer;
  type: EntryType;
  mode: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
}

/** The zip name of an entry: its path, with '/' after a directory. */
export const zipName = (path: string, type: EntryType) =>
  Buffer.from(type === 'dir' ? path + '/' : path, 'utf8');

const isAscii = (b: Buffer) => b.every((c) => c < 0x80);

function needsZip64Sizes(r: ZipRecord): boolean {
  return r.size >= MAX32 || r.compressedSize >= MAX32;
}

function zip64Extra(values: number[]): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(ZIP64_EXTRA, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return b;
}

const versionNeeded = (r: ZipRecord, zip64: boolean) =>
  zip64 ? 45 : r.method === METHOD_DEFLATE || r.type === 'dir' ? 20 : 10;

/** The local file header that precedes an entry's data. */
export function localHeader(r: ZipRecord): Buffer {
  const zip64 = needsZip64Sizes(r);
  const extra = zip64 ? zip64Extra([r.size, r.compressedSize]) : Buffer.alloc(0);
  const h = Buffer.alloc(30);
  h.writeUInt32LE(LOCAL_SIG, 0);
  h.writeUInt16LE(versionNeeded(r, zip64), 4);
  h.writeUInt16LE(isAscii(r.name) ? 0 : FLAG_UTF8, 6);
  h.writeUInt16LE(r.method, 8);
  h.writeUInt16LE(DOS_TIME, 10);
  h.writeUInt16LE(DOS_DATE, 12);
  h.writeUInt32LE(r.crc >>> 0, 14);
  h.writeUInt32LE(zip64 ? MAX32 : r.compressedSize, 18);
  h.writeUInt32LE(zip64 ? MAX32 : r.size, 22);
  h.writeUInt16LE(r.name.length, 26);
  h.writeUInt16LE(extra.length, 28);
  return Buffer.concat([h, r.name, extra]);
}

/** The central directory record of an entry. */
export function centralHeader(r: ZipRecord): Buffer {
  const big: number[] = [];
  if (r.size >= MAX32) big.push(r.size);
  if (r.compressedSize >= MAX32) big.push(r.compressedSize);
  if (r.offset >= MAX32) big.push(r.offset);
  const zip64 = big.length > 0;
  const extra = zip64 ? zip64Extra(big) : Buffer.alloc(0);
  const version = versionNeeded(r, zip64 || needsZip64Sizes(r));
  const h = Buffer.alloc(46);
  h.writeUInt32LE(CENTRAL_SIG, 0);
  h.writeUInt16LE(MADE_BY_UNIX | Math.max(version, 30), 4);
  h.writeUInt16LE(version, 6);
  h.writeUInt16LE(isAscii(r.name) ? 0 : FLAG_UTF8, 8);
  h.writeUInt16LE(r.method, 10);
  h.writeUInt16LE(DOS_TIME, 12);
  h.writeUInt16LE(DOS_DATE, 14);
  h.writeUInt32LE(r.crc >>> 0, 16);
  h.writeUInt32LE(r.compressedSize >= MAX32 ? MAX32 : r.compressedSize, 20);
  h.writeUInt32LE(r.size >= MAX32 ? MAX32 : r.size, 24);
  h.writeUInt16LE(r.name.length, 28);
  h.writeUInt16LE(extra.length, 30);
  h.writeUInt16LE(0, 32); // comment length
  h.writeUInt16LE(0, 34); // disk number start
  h.writeUInt16LE(0, 36); // internal attributes
  const unixMode = (S_IF[r.type] | (r.mode & 0o7777)) >>> 0;
  h.writeUInt32LE(((unixMode << 16) | (r.type === 'dir' ? MSDOS_DIRECTORY : 0)) >>> 0, 38);
  h.writeUInt32LE(r.offset >= MAX32 ? MAX32 : r.offset, 42);
  return Buffer.concat([h, r.name, extra]);
}

/** The records after the central directory: zip64 end record and locator when needed, then EOCD. */
export function endRecords(entries: number, cdOffset: number, cdSize: number): Buffer {
  const zip64 = entries >= MAX16 || cdOffset >= MAX32 || cdSize >= MAX32;
  const parts: Buffer[] = [];
  if (zip64) {
    const z = Buffer.alloc(56);
    z.writeUInt32LE(ZIP64_END_SIG, 0);
    z.writeBigUInt64LE(44n, 4); // size of the rest of this record
    z.writeUInt16LE(MADE_BY_UNIX | 45, 12);
    z.writeUInt16LE(45, 14);
    z.writeUInt32LE(0, 16);
    z.writeUInt32LE(0, 20);
    z.writeBigUInt64LE(BigInt(entries), 24);
    z.writeBigUInt64LE(BigInt(entries), 32);
    z.writeBigUInt64LE(BigInt(cdSize), 40);
    z.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(ZIP64_LOCATOR_SIG, 0);
    loc.writeUInt32LE(0, 4);
    loc.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
    loc.writeUInt32LE(1, 16);
    parts.push(z, loc);
  }
  const e = Buffer.alloc(22);
  e.writeUInt32LE(END_SIG, 0);
  e.writeUInt16LE(0, 4);
  e.writeUInt16LE(0, 6);
  e.writeUInt16LE(Math.min(entries, MAX16), 8);
  e.writeUInt16LE(Math.min(entries, MAX16), 10);
  e.writeUInt32LE(Math.min(cdSize, MAX32), 12);
  e.writeUInt32LE(Math.min(cdOffset, MAX32), 16);
  e.writeUInt16LE(0, 20);
  parts.push(e);
  return Buffer.concat(parts);
}
