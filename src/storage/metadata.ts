// The archive metadata document (schemas/archive-metadata.json): validation with errors that name
// the field, and, for an archive that arrives without one, what can be read from the archive itself.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeTreeDigest, FORMAT_VERSION, unpackArchive } from '../archive/index.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { describeSchemaErrors, projectValidator } from '../util/schemas.js';
import type { StoredMetadata } from './store.js';

/** Check a full metadata document against schemas/archive-metadata.json. */
export function validateArchiveMetadata(doc: unknown, where = 'metadata'): StoredMetadata {
  const v = projectValidator('archive-metadata.json');
  if (!v(doc)) {
    const problems = describeSchemaErrors(v.errors, doc);
    throw new ArchiveError(
      'usage',
      `${where} is not a valid archive metadata document: ${problems.join('; ')}`,
      {
        problems,
      },
    );
  }
  return doc as StoredMetadata;
}

/** sha256 and size of a file, streamed; refuses anything that is not a gzip file. */
export async function hashArchiveFile(file: string): Promise<{ sha256: string; size: number }> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    throw new ArchiveError('usage', `cannot read archive ${file}: ${errorMessage(e)}`, { file });
  }
  if (!st.isFile()) throw new ArchiveError('usage', `${file} is not a regular file`, { file });
  const hash = createHash('sha256');
  let size = 0;
  let head: Buffer | undefined;
  for await (const chunk of fs.createReadStream(file)) {
    const b = chunk as Buffer;
    head ??= b.subarray(0, 2);
    hash.update(b);
    size += b.length;
  }
  if (!head || head.length < 2 || head[0] !== 0x1f || head[1] !== 0x8b) {
    throw new ArchiveError('usage', `${file} is not a gzip file (expected a .tar.gz archive)`, {
      file,
    });
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * What an archive says about itself: sha256, size, format, and (unpacking it safely into a
 * temporary directory) its tree digest and file count. Revision, subdir and repository cannot be
 * known from the bytes and are left out.
 */
export async function describeArchiveFile(file: string): Promise<StoredMetadata> {
  const { sha256, size } = await hashArchiveFile(file);
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'mozharness-archive-describe-'));
  try {
    const tree = path.join(tmp, 'tree');
    const sub = `h${randomBytes(4).toString('hex')}`;
    try {
      await unpackArchive(file, path.join(tree, sub), { sha256 });
    } catch (e) {
      if (e instanceof ArchiveError) {
        throw new ArchiveError(e.code, `${file} is not a usable archive: ${e.message}`, e.details, {
          cause: e,
        });
      }
      throw e;
    }
    const d = await computeTreeDigest({
      source: { kind: 'dir', path: tree },
      revision: '0'.repeat(40),
      subdir: sub,
    });
    return {
      sha256,
      size,
      format: 'tar.gz',
      formatVersion: FORMAT_VERSION,
      treeDigest: d.treeDigest,
      files: d.files,
    };
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
