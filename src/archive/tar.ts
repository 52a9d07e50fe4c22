// Deterministic tar headers, encoded by tar@7's Header and Pax: ustar blocks with mtime 0,
// uid/gid 0, empty uname/gname, and a PAX extended header (path, linkpath, size records) when a
// path or link target does not fit the ustar fields as printable ASCII, or a size does not fit
// the octal field. Which records are written, and the ASCII fallback names the ustar fields hold
// then, are decided here, so the bytes depend on nothing but the entry. The common header (one
// that needs no PAX) is written here directly, byte for byte as tar@7's Header writes it (a test
// compares the two), at a fraction of the cost. tar@7's Header and Pax are loaded the first time
// an entry needs them (from their own entry points, not tar@7's 84 KB index): most trees have no
// such entry, and a build should not pay for loading them at every start.
import { createRequire } from 'node:module';
import type { Header as TarHeader, HeaderData } from 'tar/header';
import type { Pax as TarPax } from 'tar/pax';
import { ArchiveError } from '../util/errors.js';

interface TarCodec {
  Header: typeof TarHeader;
  Pax: typeof TarPax;
}
let tarCodec: TarCodec | undefined;
/** tar@7's Header and Pax, required (synchronously) on first use. */
function codec(): TarCodec {
  if (!tarCodec) {
    const require = createRequire(import.meta.url);
    const { Header } = require('tar/header') as { Header: typeof TarHeader };
    const { Pax } = require('tar/pax') as { Pax: typeof TarPax };
    tarCodec = { Header, Pax };
  }
  return tarCodec;
}

export const BLOCK = 512;
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

export type EntryType = 'file' | 'dir' | 'symlink';

export interface HeaderFields {
  /** Path relative to the archive root, without a trailing slash. */
  path: string;
  type: EntryType;
  mode: number;
  size: number;
  linkTarget?: string;
}

const EPOCH = new Date(0);
/** Largest size the 12-byte octal field holds. */
const MAX_OCTAL_SIZE = 0o77777777777;
/** Largest mode the 8-byte octal field holds. */
const MAX_OCTAL_MODE = 0o7777777;
const TYPE_NAMES = { file: 'File', dir: 'Directory', symlink: 'SymbolicLink' } as const;

const isPortable = (s: string) => /^[\x20-\x7e]*$/.test(s);

const ZEROS = Buffer.alloc(BLOCK);

/** The zero bytes after `size` bytes of content up to the next block (a shared, read-only view). */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return ZEROS.subarray(0, rest === 0 ? 0 : BLOCK - rest);
}

/** At most `max` characters of printable ASCII: the name a reader that ignores PAX falls back to. */
function fallback(s: string, max: number): string {
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, max);
}

/** One 512-byte header with the fixed ownership and time fields. */
function encodeHeader(
  fields: Required<Pick<HeaderData, 'path' | 'mode' | 'size' | 'type' | 'linkpath'>>,
): Buffer {
  const h = new (codec().Header)({
    ...fields,
    uid: 0,
    gid: 0,
    mtime: EPOCH,
    uname: '',
    gname: '',
    devmaj: 0,
    devmin: 0,
  });
  h.encode();
  return h.block!;
}

/** tar@7's octal field: digits padded to `size` - 2, then space and NUL (no space at full width). */
function octal(block: Buffer, off: number, size: number, n: number): void {
  const digits = n.toString(8);
  const field = digits.length === size - 1 ? digits : digits.padStart(size - 2, '0') + ' ';
  block.write(field, off, 'latin1');
}

const TYPE_FLAGS = { file: 0x30, dir: 0x35, symlink: 0x32 } as const;
/** The fixed fields of every header: zero uid, gid, mtime and device numbers, the ustar magic. */
const TEMPLATE = (() => {
  const b = Buffer.alloc(BLOCK);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 136, 12, 0);
  b.write('ustar\u000000', 257, 'latin1');
  octal(b, 329, 8, 0);
  octal(b, 337, 8, 0);
  return b;
})();

/**
 * The ustar header tar@7's Header writes for a name under 100 bytes and a link target of at
 * most 100, both printable ASCII, and a size that fits the octal field.
 */
export function plainHeader(
  name: string,
  mode: number,
  size: number,
  type: EntryType,
  link: string,
): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  TEMPLATE.copy(b);
  b.write(name, 0, 'latin1');
  octal(b, 100, 8, mode);
  octal(b, 124, 12, size);
  b[156] = TYPE_FLAGS[type];
  if (link) b.write(link, 157, 'latin1');
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += b[i];
  for (let i = 156; i < BLOCK; i++) sum += b[i];
  octal(b, 148, 8, sum);
  return b;
}

/** The header block(s) of one entry: an optional PAX 'x' header, then the ustar header. */
export function entryHeader(e: HeaderFields): Buffer {
  const name = e.type === 'dir' ? e.path + '/' : e.path;
  const link = e.type === 'symlink' ? (e.linkTarget ?? '') : '';
  const size = e.type === 'file' ? e.size : 0;
  if (/[\n\r\0]/.test(name) || /[\n\r\0]/.test(link)) {
    // tar readers (tar@7 among them) cannot read a PAX record with a line break back
    throw new ArchiveError(
      'unsafe-path',
      `entry ${JSON.stringify(e.path)} has a line break or NUL in its path or link target`,
    );
  }
  // under 100 bytes, so the ustar name field never needs its prefix field
  const nameFits = Buffer.byteLength(name) < 100 && isPortable(name);
  const linkFits = Buffer.byteLength(link) <= 100 && isPortable(link);
  const sizeFits = size <= MAX_OCTAL_SIZE;
  if (nameFits && linkFits && sizeFits && e.mode <= MAX_OCTAL_MODE) {
    return plainHeader(name, e.mode, size, e.type, link);
  }
  const main = encodeHeader({
    path: nameFits ? name : fallback(name, 99),
    mode: e.mode,
    size,
    type: TYPE_NAMES[e.type],
    linkpath: linkFits ? link : fallback(link, 99),
  });
  if (nameFits && linkFits && sizeFits) return main;
  const body = Buffer.from(
    new (codec().Pax)({
      path: nameFits ? undefined : name,
      linkpath: linkFits ? undefined : link,
      size: sizeFits ? undefined : size,
    }).encodeBody(),
    'utf8',
  );
  const paxName = fallback('PaxHeaders/' + name.replace(/\/$/, '').split('/').pop(), 99);
  return Buffer.concat([
    encodeHeader({
      path: paxName,
      mode: 0o644,
      size: body.length,
      type: 'ExtendedHeader',
      linkpath: '',
    }),
    body,
    padding(body.length),
    main,
  ]);
}
