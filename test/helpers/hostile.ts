// Hostile archives, written byte by byte in both formats (tar.gz and zip) from one description, so
// every consumer can be shown to refuse the same trees. Big content is described, not held: a
// run of zero bytes is compressed once (1 MiB) and repeated, as gzip members for tar.gz and as
// full-flushed deflate blocks for zip, so a 1 GiB bomb is about a megabyte on disk and takes
// milliseconds to make.
import zlib from 'node:zlib';

export type Kind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'char';

export interface Item {
  name: string;
  kind?: Kind;
  /** Content of a file, or the target of a link. */
  data?: string;
  /** A file of this many zero bytes (a multiple of 1 MiB), instead of `data`. */
  zeros?: number;
  mode?: number;
}

export interface HostileCase {
  name: string;
  items: Item[];
  /** The ArchiveError code the core reports. */
  code: 'unsafe-path' | 'limit-exceeded' | 'corrupt';
  /** Text every consumer's message must contain. */
  names?: string;
}

const MiB = 1024 * 1024;
const ZERO_MIB = Buffer.alloc(MiB);

// ---- tar.gz ---------------------------------------------------------------------------------

const TAR_FLAG: Record<Kind, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  dir: '5',
  fifo: '6',
};

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function tarHeader(name: string, flag: string, mode: number, size: number, link = ''): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(mode, 8), 100, 8, 'ascii');
  b.write(octal(0, 8), 108, 8, 'ascii');
  b.write(octal(0, 8), 116, 8, 'ascii');
  b.write(octal(size, 12), 124, 12, 'ascii');
  b.write(octal(0, 12), 136, 12, 'ascii');
  b.write('        ', 148, 8, 'ascii');
  b.write(flag, 156, 1, 'ascii');
  b.write(link, 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7) + ' ', 148, 8, 'ascii');
  return b;
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) {
    len = String(len).length + Buffer.byteLength(body);
  }
  return Buffer.from(`${len}${body}`);
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
let zeroMember: Buffer | undefined;

/** tar.gz bytes of `items` (PAX headers for long names and targets; gzip members for zeros). */
export function tarGz(items: Item[]): Buffer {
  zeroMember ??= zlib.gzipSync(ZERO_MIB, { level: 9 });
  const members: Buffer[] = [];
  let pending: Buffer[] = [];
  const flush = () => {
    if (pending.length) members.push(zlib.gzipSync(Buffer.concat(pending), { level: 1 }));
    pending = [];
  };
  for (const it of items) {
    const kind = it.kind ?? 'file';
    const isLink = kind === 'symlink' || kind === 'hardlink';
    const content = isLink ? Buffer.alloc(0) : Buffer.from(it.data ?? '');
    const size = it.zeros ?? content.length;
    const name = kind === 'dir' && !it.name.endsWith('/') ? `${it.name}/` : it.name;
    const link = isLink ? (it.data ?? '') : '';
    if (Buffer.byteLength(name) >= 100 || Buffer.byteLength(link) >= 100) {
      const pax = Buffer.concat([
        paxRecord('path', name),
        ...(link ? [paxRecord('linkpath', link)] : []),
      ]);
      pending.push(tarHeader('PaxHeader', 'x', 0o644, pax.length), pax, pad(pax.length));
    }
    pending.push(
      tarHeader(
        name.slice(0, 99),
        TAR_FLAG[kind],
        it.mode ?? (kind === 'dir' ? 0o755 : 0o644),
        size,
        link.slice(0, 99),
      ),
    );
    if (it.zeros) {
      flush();
      for (let i = 0; i < it.zeros / MiB; i++) members.push(zeroMember);
    } else {
      pending.push(content, pad(content.length));
    }
  }
  pending.push(Buffer.alloc(1024));
  flush();
  return Buffer.concat(members);
}

// ---- zip --------------------------------------------------------------------------------------

const S_IF: Record<Kind, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  hardlink: 0o100000,
  fifo: 0o010000,
  char: 0o020000,
};
let zeroBlocks: { data: Buffer; end: Buffer } | undefined;

/** zip bytes of `items`, as Info-ZIP on Unix writes them (modes in the external attributes). */
export function zip(items: Item[]): Buffer {
  zeroBlocks ??= {
    // a full flush leaves a byte-aligned, self-contained run of non-final blocks
    data: zlib.deflateRawSync(ZERO_MIB, { finishFlush: zlib.constants.Z_FULL_FLUSH }),
    end: zlib.deflateRawSync(Buffer.alloc(0)),
  };
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const it of items) {
    const kind = it.kind ?? 'file';
    const name = Buffer.from(kind === 'dir' && !it.name.endsWith('/') ? `${it.name}/` : it.name);
    let data: Buffer;
    let method: number;
    let crc: number;
    let size: number;
    if (it.zeros) {
      const reps = it.zeros / MiB;
      data = Buffer.concat([...Array<Buffer>(reps).fill(zeroBlocks.data), zeroBlocks.end]);
      method = 8;
      crc = 0;
      for (let i = 0; i < reps; i++) crc = zlib.crc32(ZERO_MIB, crc);
      size = it.zeros;
    } else {
      data = kind === 'dir' ? Buffer.alloc(0) : Buffer.from(it.data ?? '');
      method = 0;
      crc = zlib.crc32(data);
      size = data.length;
    }
    const mode =
      S_IF[kind] | (it.mode ?? (kind === 'dir' ? 0o755 : kind === 'symlink' ? 0o777 : 0o644));
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(0, 10);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 30, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt32LE(0, 12);
    cd.writeUInt32LE(crc >>> 0, 16);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(((mode << 16) | (kind === 'dir' ? 0x10 : 0)) >>> 0, 38);
    cd.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    central.push(cd, name);
    offset += local.length + name.length + data.length;
  }
  const cdBytes = Buffer.concat(central);
  const count = items.length;
  // over 65,535 entries: the zip64 end records carry the count
  const zip64: Buffer[] = [];
  if (count > 0xffff) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(count), 24);
    rec.writeBigUInt64LE(BigInt(count), 32);
    rec.writeBigUInt64LE(BigInt(cdBytes.length), 40);
    rec.writeBigUInt64LE(BigInt(offset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset + cdBytes.length), 8);
    loc.writeUInt32LE(1, 16);
    zip64.push(rec, loc);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(count, 0xffff), 8);
  end.writeUInt16LE(Math.min(count, 0xffff), 10);
  end.writeUInt32LE(cdBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cdBytes, ...zip64, end]);
}

export const FORMATS = { 'tar.gz': tarGz, zip } as const;
export type Format = keyof typeof FORMATS;

// ---- the cases ----------------------------------------------------------------------------------

const ok: Item = { name: 'scripts/run.py', data: 'print("hi")\n' };
const long = (n: number) => 'a'.repeat(n);

/** Hostile trees every consumer must refuse, with default limits. */
export const HOSTILE: HostileCase[] = [
  {
    name: 'absolute path',
    items: [ok, { name: '/tmp/evil', data: 'x' }],
    code: 'unsafe-path',
    names: '/tmp/evil',
  },
  {
    name: '.. component',
    items: [{ name: '../evil', data: 'x' }],
    code: 'unsafe-path',
    names: '../evil',
  },
  {
    name: 'nested .. escaping',
    items: [{ name: 'a/../../evil', data: 'x' }],
    code: 'unsafe-path',
    names: 'a/../../evil',
  },
  {
    name: 'symlink to an absolute path',
    items: [{ name: 'etc', kind: 'symlink', data: '/etc' }],
    code: 'unsafe-path',
    names: 'etc',
  },
  {
    name: 'symlink escaping with ..',
    items: [{ name: 'sub/up', kind: 'symlink', data: '../../outside' }],
    code: 'unsafe-path',
    names: 'sub/up',
  },
  {
    name: 'chained links: s -> . then etc -> s/s/s/../../../etc',
    items: [
      { name: 's', kind: 'symlink', data: '.' },
      { name: 'etc', kind: 'symlink', data: 's/s/s/../../../etc' },
    ],
    code: 'unsafe-path',
    names: 'etc',
  },
  {
    name: 'link through a link: d -> a/b, up -> d/../../..',
    items: [
      { name: 'a/b/c', data: 'x' },
      { name: 'd', kind: 'symlink', data: 'a/b' },
      { name: 'up', kind: 'symlink', data: 'd/../../..' },
    ],
    code: 'unsafe-path',
    names: 'up',
  },
  {
    name: 'deep chain of links climbing one level each',
    items: [
      { name: 'x/y/z/w', data: 'x' },
      { name: 'x/y/z/l1', kind: 'symlink', data: '..' },
      { name: 'x/y/l2', kind: 'symlink', data: 'z/l1/..' },
      { name: 'x/l3', kind: 'symlink', data: 'y/l2/..' },
      { name: 'l4', kind: 'symlink', data: 'x/l3/../..' },
    ],
    code: 'unsafe-path',
    names: 'l4',
  },
  {
    name: 'a later link makes an earlier one escape',
    items: [
      { name: 'a', kind: 'symlink', data: 'd/d/n/../../../etc' },
      { name: 'd/d/n', kind: 'symlink', data: '../..' },
    ],
    code: 'unsafe-path',
    names: 'd/d/n',
  },
  {
    name: 'symlink loop',
    items: [
      { name: 'a', kind: 'symlink', data: 'b' },
      { name: 'b', kind: 'symlink', data: 'a' },
    ],
    code: 'unsafe-path',
    names: 'loop',
  },
  {
    name: 'file written through an in-tree symlink',
    items: [
      { name: 'sub/here', kind: 'symlink', data: '..' },
      { name: 'sub/here/x', data: 'x' },
    ],
    code: 'unsafe-path',
    names: 'sub/here/x',
  },
  {
    name: 'file written through a chain of links',
    items: [
      { name: 'd/real/f', data: 'x' },
      { name: 'l1', kind: 'symlink', data: 'd' },
      { name: 'l2', kind: 'symlink', data: 'l1/real' },
      { name: 'l2/evil', data: 'x' },
    ],
    code: 'unsafe-path',
    names: 'l2/evil',
  },
  {
    name: 'directory written through a link',
    items: [
      { name: 'l', kind: 'symlink', data: 'target' },
      { name: 'l/sub', kind: 'dir' },
    ],
    code: 'unsafe-path',
    names: 'l/sub',
  },
  {
    name: 'hard link escaping',
    items: [{ name: 'h', kind: 'hardlink', data: '../../sentinel' }],
    code: 'unsafe-path',
    names: 'h',
  },
  {
    name: 'hard link through a symlink',
    items: [
      { name: 'f', data: 'x' },
      { name: 'l', kind: 'symlink', data: '.' },
      { name: 'h', kind: 'hardlink', data: 'l/f' },
    ],
    code: 'unsafe-path',
    names: 'h',
  },
  { name: 'FIFO', items: [{ name: 'pipe', kind: 'fifo' }], code: 'unsafe-path', names: 'pipe' },
  {
    name: 'character device',
    items: [{ name: 'null', kind: 'char' }],
    code: 'unsafe-path',
    names: 'null',
  },
  {
    name: 'setuid file',
    items: [{ name: 'suid', data: '#!/bin/sh\n', mode: 0o4755 }],
    code: 'unsafe-path',
    names: 'suid',
  },
  {
    name: 'name over 4096 bytes',
    items: [{ name: Array(20).fill(long(250)).join('/'), data: 'x' }],
    code: 'unsafe-path',
    names: 'over the limit of 4096',
  },
  {
    name: 'name component over 255 bytes',
    items: [{ name: `d/${long(300)}`, data: 'x' }],
    code: 'unsafe-path',
    names: 'over the limit of 255',
  },
  {
    name: 'link target over 4096 bytes',
    items: [{ name: 'l', kind: 'symlink', data: Array(20).fill(long(250)).join('/') }],
    code: 'unsafe-path',
    names: 'over the limit of 4096',
  },
  {
    name: 'directory bomb: 100,001 directories',
    items: Array.from({ length: 100_001 }, (_, i) => ({ name: `d${i}`, kind: 'dir' as const })),
    code: 'limit-exceeded',
    names: 'more than 100000 entries',
  },
  {
    name: 'split bomb: four entries of 256 MiB of zeros',
    items: [1, 2, 3, 4].map((i) => ({ name: `bomb${i}`, zeros: 256 * MiB })),
    code: 'limit-exceeded',
    names: 'compression bomb',
  },
  {
    name: 'single entry over 512 MiB',
    items: [{ name: 'big', zeros: 600 * MiB }],
    code: 'limit-exceeded',
    names: 'big',
  },
  {
    name: 'duplicate entry',
    items: [
      { name: 'dup', data: 'a' },
      { name: 'dup', data: 'b' },
    ],
    code: 'corrupt',
    names: 'dup',
  },
  {
    name: 'symlink replaced by a file of the same name',
    items: [
      { name: 'l', kind: 'symlink', data: 'x' },
      { name: 'l', data: 'b' },
    ],
    code: 'corrupt',
    names: 'l',
  },
];

/** A harmless tree every consumer must accept: exec bits, in-tree links (chained), a hard link. */
export const BENIGN: Item[] = [
  { name: 'configs', kind: 'dir' },
  { name: 'configs/a.py', data: 'A = 1\n' },
  { name: 'scripts', kind: 'dir' },
  { name: 'scripts/run.py', data: 'print("hello from the archive")\n', mode: 0o755 },
  { name: 'scripts/run.sh', data: '#!/bin/sh\necho hello from the archive\n', mode: 0o755 },
  { name: 'link-to-scripts', kind: 'symlink', data: 'scripts' },
  { name: 'run', kind: 'symlink', data: 'link-to-scripts/run.py' },
  { name: 'later', kind: 'symlink', data: 'zz/../configs/a.py' },
  // resolves through a path that a later, harmless link then fills
  { name: 'via', kind: 'symlink', data: 'yy/a.py' },
  { name: 'yy', kind: 'symlink', data: 'configs' },
  { name: 'zz', kind: 'dir' },
];
