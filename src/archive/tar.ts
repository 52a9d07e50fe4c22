// Deterministic tar headers, written by hand: ustar blocks with mtime 0, uid/gid 0, empty
// uname/gname, and a PAX extended header when a path or link target is longer than 100 bytes or
// not ASCII (or a size does not fit the octal field). Nothing here depends on the platform.

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

function octal(value: number, width: number): string {
  // width - 1 digits then a NUL terminator
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

const isPortable = (s: string) => /^[\x20-\x7e]*$/.test(s);

function rawHeader(
  name: string,
  mode: number,
  size: number,
  typeflag: string,
  linkname: string,
): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(mode, 8), 100, 8, 'ascii');
  b.write(octal(0, 8), 108, 8, 'ascii');
  b.write(octal(0, 8), 116, 8, 'ascii');
  b.write(octal(size, 12), 124, 12, 'ascii');
  b.write(octal(0, 12), 136, 12, 'ascii');
  b.write('        ', 148, 8, 'ascii');
  b.write(typeflag, 156, 1, 'ascii');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  // uname/gname (265, 297) stay empty; devmajor/devminor
  b.write(octal(0, 8), 329, 8, 'ascii');
  b.write(octal(0, 8), 337, 8, 'ascii');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`, 'utf8');
}

export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** Truncate to at most `max` bytes of ASCII-safe text (the fallback name a PAX reader ignores). */
function fallback(s: string, max: number): string {
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, max);
}

/** The header block(s) of one entry: an optional PAX 'x' header, then the ustar header. */
export function entryHeader(e: HeaderFields): Buffer {
  const name = e.type === 'dir' ? e.path + '/' : e.path;
  const link = e.linkTarget ?? '';
  const size = e.type === 'file' ? e.size : 0;
  const pax: Buffer[] = [];
  const nameFits = Buffer.byteLength(name) <= 100 && isPortable(name);
  const linkFits = Buffer.byteLength(link) <= 100 && isPortable(link);
  const sizeFits = size < 8 ** 11;
  if (!nameFits) pax.push(paxRecord('path', name));
  if (!linkFits) pax.push(paxRecord('linkpath', link));
  if (!sizeFits) pax.push(paxRecord('size', String(size)));
  const typeflag = e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2';
  const main = rawHeader(
    nameFits ? name : fallback(name, 99),
    e.mode,
    sizeFits ? size : 0,
    typeflag,
    linkFits ? link : fallback(link, 99),
  );
  if (pax.length === 0) return main;
  const body = Buffer.concat(pax);
  const paxName = fallback('PaxHeaders/' + name.replace(/\/$/, '').split('/').pop(), 99);
  return Buffer.concat([
    rawHeader(paxName, 0o644, body.length, 'x', ''),
    body,
    padding(body.length),
    main,
  ]);
}
