// Strict reading of a zip file with yauzl, reported as the same entries the tar reader gives, so
// both formats go through one safe-extraction core. Unix modes come from the external attributes
// of entries made on Unix (Info-ZIP): exec bits, S_IFDIR, and S_IFLNK symlinks whose content is
// the link target. Encrypted entries, compression methods other than stored and deflate, and
// devices or FIFOs are reported for refusal; sizes are checked against the data by yauzl.
import type yauzl from 'yauzl';
import { ArchiveError, errorMessage } from '../util/errors.js';
import type { ArchiveEntry, ArchiveEntryType } from './extract.js';
import { MAX_PATH_BYTES } from './tree-model.js';

const S_IFMT = 0o170000;
const UNIX_TYPES: Record<number, ArchiveEntryType> = {
  0o100000: 'file',
  0o040000: 'dir',
  0o120000: 'symlink',
  0o020000: 'char',
  0o060000: 'block',
  0o010000: 'fifo',
};
/** Info-ZIP "version made by" host systems whose external attributes carry a Unix mode. */
const UNIX_HOSTS = new Set([3, 19 /* macOS */]);

const corrupt = (what: string, message: string) =>
  new ArchiveError('corrupt', `${what} is not a readable zip file: ${message}`);

function describe(e: yauzl.Entry, name: string): Omit<ArchiveEntry, 'content'> {
  const host = e.versionMadeBy >> 8;
  const unixMode = UNIX_HOSTS.has(host) ? (e.externalFileAttributes >>> 16) & 0xffff : 0;
  const isDirName = name.endsWith('/');
  let type: ArchiveEntryType;
  let typeName: string;
  if (unixMode & S_IFMT) {
    type = UNIX_TYPES[unixMode & S_IFMT] ?? 'other';
    typeName = `unix mode ${(unixMode & S_IFMT).toString(8)}`;
  } else {
    // MS-DOS attributes: 0x10 is a directory
    type = isDirName || (e.externalFileAttributes & 0x10) !== 0 ? 'dir' : 'file';
    typeName = type;
  }
  if (type === 'dir' && !isDirName && e.uncompressedSize > 0) type = 'other';
  const mode = unixMode & 0o7777 || (type === 'dir' ? 0o755 : 0o644);
  return {
    path: name,
    type,
    typeName,
    mode,
    size: type === 'file' ? e.uncompressedSize : 0,
    linkpath: '',
  };
}

async function readAll(stream: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += c.length;
    if (n > max) break;
    parts.push(c);
  }
  return Buffer.concat(parts);
}

const empty = () => (async function* (): AsyncGenerator<Buffer> {})();

/** Why an entry's content cannot be read (encrypted, an unsupported method), or null. */
function unreadable(e: yauzl.Entry): string | null {
  if (e.isEncrypted()) return 'encrypted';
  if (e.compressionMethod !== 0 && e.compressionMethod !== 8) {
    return `compression method ${e.compressionMethod}`;
  }
  return null;
}

/**
 * Yield the entry `e` of `zip` (its content streamed when it is a file, its target read when a
 * symlink), then close what the consumer left open of its content.
 */
async function* zipEntry(
  lib: typeof yauzl,
  zip: yauzl.ZipFile,
  e: yauzl.Entry,
  what: string,
): AsyncGenerator<ArchiveEntry> {
  const name = lib.getFileNameLowLevel(
    e.generalPurposeBitFlag,
    e.fileNameRaw,
    e.extraFields,
    false,
  );
  const d = describe(e, name);
  const refused = unreadable(e);
  if (refused) {
    yield { ...d, type: 'other', typeName: refused, content: empty() };
    return;
  }
  const open = async () => {
    try {
      return await zip.openReadStreamPromise(e);
    } catch (err) {
      throw corrupt(`${what} (entry ${JSON.stringify(name)})`, errorMessage(err));
    }
  };
  if (d.type === 'symlink') {
    if (e.uncompressedSize > MAX_PATH_BYTES) {
      // over-long target: refused by the model on its length, without reading it all
      d.linkpath = 'x'.repeat(MAX_PATH_BYTES + 1);
    } else {
      d.linkpath = (await readAll(await open(), MAX_PATH_BYTES + 1)).toString('utf8');
    }
    yield { ...d, content: empty() };
    return;
  }
  if (d.type !== 'file') {
    yield { ...d, content: empty() };
    return;
  }
  let started = false;
  const content = (async function* () {
    started = true;
    const stream = await open();
    try {
      for await (const c of stream as AsyncIterable<Buffer>) yield c;
    } catch (err) {
      throw corrupt(`${what} (entry ${JSON.stringify(name)})`, errorMessage(err));
    } finally {
      stream.destroy();
    }
  })();
  yield { ...d, content };
  if (started) await content.return(undefined);
}

async function openZip(lib: typeof yauzl, file: string, what: string): Promise<yauzl.ZipFile> {
  try {
    return await lib.openPromise(file, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
      strictFileNames: false,
    });
  } catch (e) {
    throw corrupt(what, errorMessage(e));
  }
}

/**
 * Entries of the zip file `file`. Consume or ignore each entry's content before asking for the
 * next. `what` names the file in errors; with `maxEntries`, a zip declaring more is refused before
 * any entry is read.
 */
export async function* readZip(
  file: string,
  what = `archive ${file}`,
  opts: { maxEntries?: number } = {},
): AsyncGenerator<ArchiveEntry> {
  // loaded when a zip is read: it is the archive engine's costliest module to load, and most
  // commands (digest, build) never read one
  const { default: lib } = await import('yauzl');
  const zip = await openZip(lib, file, what);
  try {
    // the central directory declares how many entries there are: a bomb is refused up front
    if (opts.maxEntries !== undefined && zip.entryCount > opts.maxEntries) {
      throw new ArchiveError(
        'limit-exceeded',
        `${what} has more than ${opts.maxEntries} entries (${zip.entryCount})`,
      );
    }
    const it = zip.eachEntry();
    while (true) {
      let r: IteratorResult<yauzl.Entry>;
      try {
        r = await it.next();
      } catch (e) {
        throw corrupt(what, errorMessage(e));
      }
      if (r.done) break;
      yield* zipEntry(lib, zip, r.value, what);
    }
  } finally {
    zip.close();
  }
}
