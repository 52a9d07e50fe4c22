// Safe unpack of a tar.gz or zip archive: into a private temporary directory beside the
// destination, the archive's sha256 checked before anything becomes visible, then one rename into
// place. Both formats feed one safe-extraction core (extract.ts) that models the tree in memory;
// on any refusal the destination is left as it was and nothing is written outside it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import { ArchiveError, errorMessage, isArchiveError } from '../util/errors.js';
import { checkLimits, extractEntries, type UnpackLimits } from './extract.js';
import { readTar } from './untar.js';
import { readZip } from './unzip.js';

export { DEFAULT_UNPACK_LIMITS, RATIO_FLOOR_BYTES, type UnpackLimits } from './extract.js';

import { ARCHIVE_FORMATS, type ArchiveFormat } from './unpack-limits.js';

export { ARCHIVE_FORMATS, type ArchiveFormat };

export interface UnpackOptions {
  /** Expected sha256 of the archive file (64 hex digits). */
  sha256?: string;
  limits?: Partial<UnpackLimits>;
  /** The declared format; the file's first bytes must agree. Default: from the first bytes. */
  format?: string;
}

async function checkDestination(dest: string): Promise<boolean> {
  let st: fs.Stats;
  try {
    st = await fs.promises.lstat(dest);
  } catch {
    return false;
  }
  if (!st.isDirectory() || (await fs.promises.readdir(dest)).length > 0) {
    throw new ArchiveError(
      'conflict',
      `destination ${dest} already exists and is not an empty directory`,
    );
  }
  return true;
}

/** The format of `file` from its first bytes (gzip: 1f 8b; zip: a local header or empty zip). */
export async function detectFormat(file: string): Promise<ArchiveFormat | undefined> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'tar.gz';
    if (bytesRead === 4 && b[0] === 0x50 && b[1] === 0x4b && (b[2] === 3 || b[2] === 5)) {
      return 'zip';
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const c of fs.createReadStream(file)) hash.update(c as Buffer);
  return hash.digest('hex');
}

function checkDigest(file: string, actual: string, expected?: string) {
  if (expected !== undefined && actual !== expected) {
    throw new ArchiveError(
      'checksum-mismatch',
      `archive ${file} has sha256 ${actual}, expected ${expected}`,
      { expected, actual },
    );
  }
}

function translate(file: string, e: unknown): unknown {
  if (isArchiveError(e)) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (code.startsWith('Z_') || /unexpected end|incorrect header|invalid/i.test(errorMessage(e))) {
    return new ArchiveError(
      'corrupt',
      `archive ${file} is corrupt or truncated: ${errorMessage(e)}`,
    );
  }
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    return new ArchiveError(
      'corrupt',
      `archive ${file} has a duplicate or conflicting entry: ${errorMessage(e)}`,
    );
  }
  if (code === 'ENAMETOOLONG') {
    return new ArchiveError('unsafe-path', `archive ${file} has a name too long to unpack here`);
  }
  return e;
}

async function extractTarGz(
  file: string,
  temp: string | null,
  size: number,
  limits: UnpackLimits,
): Promise<{ files: number; bytes: number; sha256: string }> {
  const input = fs.createReadStream(file);
  const hash = crypto.createHash('sha256');
  input.on('data', (c) => hash.update(c as Buffer));
  const gunzip = zlib.createGunzip();
  input.on('error', (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  try {
    const r = await extractEntries(readTar(gunzip, `archive ${file}`), temp, size, limits);
    await finished(input).catch(() => {});
    return { ...r, sha256: hash.digest('hex') };
  } finally {
    input.destroy();
  }
}

/**
 * Unpack `file` (tar.gz or zip) into `dest`, which must not exist or be an empty directory. With
 * `sha256`, the archive bytes must match it. Returns the number of files (and links) and bytes.
 */
export async function unpackTo(
  file: string,
  dest: string,
  opts: UnpackOptions = {},
): Promise<{ files: number; bytes: number }> {
  const { sha256 } = opts;
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(sha256)) {
    throw new ArchiveError('usage', `invalid sha256 ${JSON.stringify(sha256)} (64 hex digits)`);
  }
  const expected = sha256?.toLowerCase();
  if (opts.format !== undefined && !ARCHIVE_FORMATS.includes(opts.format as ArchiveFormat)) {
    throw new ArchiveError(
      'usage',
      `unsupported archive format ${JSON.stringify(opts.format)} (${ARCHIVE_FORMATS.join(', ')})`,
    );
  }
  const limits = checkLimits(opts.limits);
  const target = path.resolve(dest);
  const existed = await checkDestination(target);
  let size: number;
  let format: ArchiveFormat | undefined;
  try {
    await fs.promises.access(file, fs.constants.R_OK);
    size = (await fs.promises.stat(file)).size;
    format = await detectFormat(file);
  } catch {
    throw new ArchiveError('not-found', `archive ${file} does not exist or is not readable`);
  }
  if (!format) {
    throw new ArchiveError('corrupt', `archive ${file} is neither a tar.gz nor a zip file`);
  }
  if (opts.format !== undefined && opts.format !== format) {
    throw new ArchiveError(
      'corrupt',
      `archive ${file} is declared ${opts.format} but is a ${format}`,
    );
  }
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const temp = await fs.promises.mkdtemp(
    path.join(path.dirname(target), `.${path.basename(target)}.unpack-`),
  );
  try {
    let r: { files: number; bytes: number };
    try {
      // Two passes over the same core: the first only counts and checks every entry (so a bomb
      // or a hostile link is refused before anything is written), the second writes.
      if (format === 'zip') {
        checkDigest(file, await sha256Of(file), expected);
        const zip = () => readZip(file, `archive ${file}`, { maxEntries: limits.maxFiles });
        await extractEntries(zip(), null, size, limits);
        r = await extractEntries(zip(), temp, size, limits);
      } else {
        checkDigest(file, (await extractTarGz(file, null, size, limits)).sha256, expected);
        const t = await extractTarGz(file, temp, size, limits);
        checkDigest(file, t.sha256, expected);
        r = { files: t.files, bytes: t.bytes };
      }
    } catch (e) {
      throw translate(file, e);
    }
    await fs.promises.chmod(temp, 0o755);
    if (existed) await fs.promises.rmdir(target);
    await fs.promises.rename(temp, target);
    return r;
  } catch (e) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw e;
  }
}
