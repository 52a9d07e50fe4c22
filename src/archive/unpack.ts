// Safe unpack: into a private temporary directory beside the destination, the archive's sha256
// checked before anything becomes visible, then one rename into place. Hostile entries are
// refused by name; on any failure the destination is left as it was.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import { ArchiveError, errorMessage, isArchiveError } from '../util/errors.js';
import { fileMode, linkStaysInside, unsafeReason } from './tree.js';
import { readTar } from './untar.js';

export interface UnpackLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

function refuse(entry: string, why: string): ArchiveError {
  return new ArchiveError('unsafe-path', `refused archive entry ${JSON.stringify(entry)}: ${why}`, {
    entry,
  });
}

/** Normalise an entry name: no trailing slash, no leading './'. '' means the archive root. */
function entryPath(name: string): string {
  let p = name.replace(/\/+$/, '');
  while (p.startsWith('./')) p = p.slice(2);
  return p === '.' ? '' : p;
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

/**
 * Unpack `file` (tar.gz) into `dest`, which must not exist or be an empty directory. With
 * `sha256`, the archive bytes must match it. Returns the number of files (and symlinks) and bytes.
 */
export async function unpackTo(
  file: string,
  dest: string,
  limits: UnpackLimits,
  sha256?: string,
): Promise<{ files: number; bytes: number }> {
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(sha256)) {
    throw new ArchiveError('usage', `invalid sha256 ${JSON.stringify(sha256)} (64 hex digits)`);
  }
  const target = path.resolve(dest);
  const existed = await checkDestination(target);
  let input: fs.ReadStream;
  try {
    await fs.promises.access(file, fs.constants.R_OK);
    input = fs.createReadStream(file);
  } catch {
    throw new ArchiveError('not-found', `archive ${file} does not exist or is not readable`);
  }
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const temp = await fs.promises.mkdtemp(
    path.join(path.dirname(target), `.${path.basename(target)}.unpack-`),
  );
  const hash = crypto.createHash('sha256');
  let files = 0;
  let bytes = 0;
  try {
    input.on('data', (c) => hash.update(c as Buffer));
    const gunzip = zlib.createGunzip();
    input.on('error', (e) => gunzip.destroy(e));
    input.pipe(gunzip);
    const links = new Set<string>();
    const regular = new Set<string>();
    try {
      for await (const entry of readTar(gunzip, `archive ${file}`)) {
        const rel = entryPath(entry.path);
        if (rel === '' && entry.type === 'dir') continue;
        const why = unsafeReason(rel);
        if (why) throw refuse(entry.path, why);
        const parts = rel.split('/');
        for (let i = 1; i < parts.length; i++) {
          if (links.has(parts.slice(0, i).join('/'))) {
            throw refuse(entry.path, 'path goes through a symlink');
          }
        }
        if (entry.mode & 0o6000) throw refuse(entry.path, 'setuid/setgid bit');
        const abs = path.join(temp, ...parts);
        switch (entry.type) {
          case 'dir':
            await fs.promises.mkdir(abs, { recursive: true, mode: 0o755 });
            break;
          case 'symlink':
            if (!linkStaysInside(rel, entry.linkpath)) {
              throw refuse(
                entry.path,
                `symlink to ${JSON.stringify(entry.linkpath)} escapes the tree`,
              );
            }
            await fs.promises.mkdir(path.dirname(abs), { recursive: true, mode: 0o755 });
            await fs.promises.symlink(entry.linkpath, abs);
            links.add(rel);
            files++;
            break;
          case 'hardlink': {
            const to = entryPath(entry.linkpath);
            if (unsafeReason(to) || !regular.has(to)) {
              throw refuse(
                entry.path,
                `hard link to ${JSON.stringify(entry.linkpath)} escapes the tree or names no earlier file`,
              );
            }
            await fs.promises.mkdir(path.dirname(abs), { recursive: true, mode: 0o755 });
            await fs.promises.link(path.join(temp, ...to.split('/')), abs);
            files++;
            break;
          }
          case 'file': {
            if (++files > limits.maxFiles) {
              throw new ArchiveError(
                'limit-exceeded',
                `archive has more than ${limits.maxFiles} entries (at ${JSON.stringify(entry.path)})`,
              );
            }
            if (entry.size > limits.maxFileBytes) {
              throw new ArchiveError(
                'limit-exceeded',
                `entry ${JSON.stringify(entry.path)} is ${entry.size} bytes, over the limit of ${limits.maxFileBytes}`,
              );
            }
            bytes += entry.size;
            if (bytes > limits.maxTotalBytes) {
              throw new ArchiveError(
                'limit-exceeded',
                `archive content over the limit of ${limits.maxTotalBytes} bytes (at ${JSON.stringify(entry.path)})`,
              );
            }
            await fs.promises.mkdir(path.dirname(abs), { recursive: true, mode: 0o755 });
            const mode = fileMode((entry.mode & 0o100) !== 0);
            const fh = await fs.promises.open(abs, 'wx', mode);
            try {
              for await (const chunk of entry.content) await fh.write(chunk);
            } finally {
              await fh.close();
            }
            await fs.promises.chmod(abs, mode);
            regular.add(rel);
            break;
          }
          default:
            throw refuse(
              entry.path,
              entry.type === 'other'
                ? `unsupported entry type ${entry.typeName}`
                : `${entry.type} entries are not allowed`,
            );
        }
        if (files > limits.maxFiles) {
          throw new ArchiveError(
            'limit-exceeded',
            `archive has more than ${limits.maxFiles} entries`,
          );
        }
      }
    } catch (e) {
      input.destroy();
      if (isArchiveError(e)) throw e;
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (
        code.startsWith('Z_') ||
        /unexpected end|incorrect header|invalid/i.test(errorMessage(e))
      ) {
        throw new ArchiveError(
          'corrupt',
          `archive ${file} is corrupt or truncated: ${errorMessage(e)}`,
        );
      }
      if (code === 'EEXIST' || code === 'ENOTDIR') {
        throw new ArchiveError(
          'corrupt',
          `archive ${file} has a duplicate or conflicting entry: ${errorMessage(e)}`,
        );
      }
      throw e;
    }
    await finished(input).catch(() => {});
    const actual = hash.digest('hex');
    if (sha256 !== undefined && actual !== sha256.toLowerCase()) {
      throw new ArchiveError(
        'checksum-mismatch',
        `archive ${file} has sha256 ${actual}, expected ${sha256.toLowerCase()}`,
        { expected: sha256.toLowerCase(), actual },
      );
    }
    await fs.promises.chmod(temp, 0o755);
    if (existed) await fs.promises.rmdir(target);
    await fs.promises.rename(temp, target);
    return { files, bytes };
  } catch (e) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw e;
  }
}
