// Deterministic tar headers, encoded by tar@7's Header and Pax: ustar blocks with mtime 0,
// uid/gid 0, empty uname/gname, and a PAX extended header (path, linkpath, size records) when a
// path or link target does not fit the ustar fields as printable ASCII, or a size does not fit
// the octal field. Which records are written, and the ASCII fallback names the ustar fields hold
// then, are decided here, so the bytes depend on nothing but the entry.
import { Header, Pax, type HeaderData } from 'tar';
import { ArchiveError } from '../util/errors.js';

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
const TYPE_NAMES = { file: 'File', dir: 'Directory', symlink: 'SymbolicLink' } as const;

const isPortable = (s: string) => /^[\x20-\x7e]*$/.test(s);

export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** At most `max` characters of printable ASCII: the name a reader that ignores PAX falls back to. */
function fallback(s: string, max: number): string {
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, max);
}

/** One 512-byte header with the fixed ownership and time fields. */
function encodeHeader(
  fields: Required<Pick<HeaderData, 'path' | 'mode' | 'size' | 'type' | 'linkpath'>>,
): Buffer {
  const h = new Header({
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
  const main = encodeHeader({
    path: nameFits ? name : fallback(name, 99),
    mode: e.mode,
    size,
    type: TYPE_NAMES[e.type],
    linkpath: linkFits ? link : fallback(link, 99),
  });
  if (nameFits && linkFits && sizeFits) return main;
  const body = Buffer.from(
    new Pax({
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
