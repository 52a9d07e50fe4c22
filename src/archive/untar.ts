// A strict streaming tar reader (ustar, PAX 'x' records for path/linkpath/size, GNU long names).
// It reports entry types as they are, so callers can refuse what they do not accept, and treats
// a bad checksum or a missing end-of-archive marker as corruption.
import { ArchiveError } from '../util/errors.js';
import { ByteReader } from './bytes.js';
import { BLOCK } from './tar.js';

export type RawType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface RawEntry {
  path: string;
  type: RawType;
  /** Type flag as found in the header. */
  flag: string;
  mode: number;
  size: number;
  linkpath: string;
  /** The content; whatever is not read is skipped. */
  content: AsyncIterable<Buffer>;
}

function cstring(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
}

function number(b: Buffer, off: number, len: number, field: string): number {
  const s = b.subarray(off, off + len);
  if (s[0] & 0x80) {
    // base-256 (GNU): big-endian, positive only
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + s[i];
    if (s[0] !== 0x80) throw new ArchiveError('corrupt', `unsupported ${field} in tar header`);
    return v;
  }
  const t = cstring(b, off, len).trim();
  if (t === '') return 0;
  if (!/^[0-7]+$/.test(t))
    throw new ArchiveError('corrupt', `bad ${field} ${JSON.stringify(t)} in tar header`);
  return parseInt(t, 8);
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(body.subarray(i, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0 || i + len > body.length) {
      throw new ArchiveError('corrupt', 'malformed PAX extended header');
    }
    const rec = body.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

const TYPES: Record<string, RawType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

const MAX_META = 1024 * 1024;

/** Entries of an (uncompressed) tar stream. Consume or ignore each entry's content before the next. */
export async function* readTar(reader: ByteReader): AsyncGenerator<RawEntry> {
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  while (true) {
    const h = await reader.exact(BLOCK);
    if (!h)
      throw new ArchiveError('corrupt', 'tar archive ended without its end-of-archive marker');
    if (h.every((x) => x === 0)) {
      await reader.drain(); // second zero block and record padding
      return;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    const recorded = number(h, 148, 8, 'checksum');
    if (sum !== recorded) throw new ArchiveError('corrupt', 'tar header checksum mismatch');
    const flag = String.fromCharCode(h[156]);
    const headerSize = number(h, 124, 12, 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (headerSize > MAX_META) throw new ArchiveError('corrupt', 'oversized extended header');
      const body = (await reader.exact(headerSize)) ?? Buffer.alloc(0);
      if (body.length !== headerSize)
        throw new ArchiveError('corrupt', 'truncated extended header');
      await reader.skip((BLOCK - (headerSize % BLOCK)) % BLOCK);
      if (flag === 'x') pax = { ...pax, ...parsePax(body) };
      else if (flag === 'L') longName = cstring(body, 0, body.length);
      else if (flag === 'K') longLink = cstring(body, 0, body.length);
      continue; // global headers ('g') are ignored
    }
    const magic = h.subarray(257, 262).toString('ascii');
    const prefix = magic === 'ustar' ? cstring(h, 345, 155) : '';
    let path = cstring(h, 0, 100);
    if (prefix) path = `${prefix}/${path}`;
    if (longName !== undefined) path = longName;
    if (pax.path !== undefined) path = pax.path;
    let linkpath = cstring(h, 157, 100);
    if (longLink !== undefined) linkpath = longLink;
    if (pax.linkpath !== undefined) linkpath = pax.linkpath;
    let size = headerSize;
    if (pax.size !== undefined) {
      if (!/^\d+$/.test(pax.size)) throw new ArchiveError('corrupt', 'bad PAX size');
      size = Number(pax.size);
    }
    pax = {};
    longName = longLink = undefined;
    const type = TYPES[flag] ?? 'other';
    const dataSize = type === 'file' || type === 'other' ? size : 0;
    let consumed = 0;
    const content = (async function* () {
      for await (const c of reader.chunks(dataSize)) {
        consumed += c.length;
        yield c;
      }
    })();
    yield {
      path,
      type,
      flag,
      mode: number(h, 100, 8, 'mode'),
      size: dataSize,
      linkpath,
      content,
    };
    // skip what the consumer left, then the block padding
    if (consumed < dataSize) {
      await content.return(undefined);
      await reader.skip(dataSize - consumed);
    }
    await reader.skip((BLOCK - (dataSize % BLOCK)) % BLOCK);
  }
}
