// Unpacking hgweb's subdir archive (a tar.gz whose entries are `<repo>-<rev12>/<subdir>/…`) into
// a private staging dir, checking every entry: its place, its type, links, and the limits.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveError } from '../../util/errors.js';
import { checkEntryPath, fileMode, linkStaysInside } from '../tree.js';
import { readTar, type RawEntry } from '../untar.js';
import type { SourceLimits } from './source.js';

/** A pass-through that fails at the end when the body is not `expectedLength` bytes. */
function lengthCheck(expectedLength: number | undefined): Transform {
  let received = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      if (expectedLength !== undefined && received !== expectedLength) {
        cb(
          new ArchiveError(
            'corrupt',
            `body is ${received} bytes, Content-Length said ${expectedLength}`,
          ),
        );
      } else cb();
    },
  });
}

/** What the spool has seen so far: the archive's top directory, symlinks, files and bytes. */
class SpoolState {
  top: string | undefined;
  readonly links = new Set<string>();
  files = 0;
  private total = 0;

  constructor(
    private readonly subdir: string,
    private readonly limits: SourceLimits,
  ) {}

  /** The entry's path inside the subdir, or null for one to skip (the subdir itself, metadata). */
  inside(entryPath: string): string | null {
    const name = entryPath.replace(/\/+$/, '');
    const slash = name.indexOf('/');
    const first = slash < 0 ? name : name.slice(0, slash);
    this.top ??= first;
    if (first !== this.top)
      throw new ArchiveError(
        'unsafe-path',
        `entry ${JSON.stringify(entryPath)} outside ${this.top}/`,
      );
    const inner = slash < 0 ? '' : name.slice(slash + 1);
    const subdir = this.subdir;
    if (inner === '.hg_archival.txt' || inner === subdir || inner === '') return null;
    if (!inner.startsWith(subdir + '/')) {
      throw new ArchiveError(
        'unsafe-path',
        `entry ${JSON.stringify(entryPath)} is outside ${subdir}`,
      );
    }
    const rel = inner.slice(subdir.length + 1);
    checkEntryPath(rel);
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      if (this.links.has(parts.slice(0, i).join('/'))) {
        throw new ArchiveError(
          'unsafe-path',
          `entry ${JSON.stringify(rel)} goes through a symlink`,
        );
      }
    }
    return rel;
  }

  /** Count one more file of `size` bytes, refusing one over the limits. */
  countFile(rel: string, size: number): void {
    const limits = this.limits;
    if (++this.files > limits.maxFiles)
      throw new ArchiveError('limit-exceeded', `more than ${limits.maxFiles} files`);
    if (size > limits.maxFileBytes) {
      throw new ArchiveError(
        'limit-exceeded',
        `${rel} is ${size} bytes, over ${limits.maxFileBytes}`,
      );
    }
    this.total += size;
    if (this.total > limits.maxTotalBytes) {
      throw new ArchiveError('limit-exceeded', `tree over ${limits.maxTotalBytes} bytes at ${rel}`);
    }
  }
}

async function writeFile(entry: RawEntry, abs: string): Promise<void> {
  const mode = fileMode((entry.mode & 0o100) !== 0);
  const fh = await fs.promises.open(abs, 'wx', mode);
  try {
    for await (const chunk of entry.content) await fh.write(chunk);
  } finally {
    await fh.close();
  }
  await fs.promises.chmod(abs, mode);
}

/** Write one checked entry (at `rel` inside the subdir) under `dest`. */
async function spoolEntry(entry: RawEntry, rel: string, dest: string, state: SpoolState) {
  const abs = path.join(dest, ...rel.split('/'));
  if (entry.type === 'dir') {
    await fs.promises.mkdir(abs, { recursive: true });
    return;
  }
  await fs.promises.mkdir(path.dirname(abs), { recursive: true });
  if (entry.type === 'symlink') {
    if (!linkStaysInside(rel, entry.linkpath)) {
      throw new ArchiveError(
        'unsafe-path',
        `symlink ${JSON.stringify(rel)} -> ${JSON.stringify(entry.linkpath)} points outside the archived tree`,
      );
    }
    await fs.promises.symlink(entry.linkpath, abs);
    state.links.add(rel);
  } else if (entry.type === 'file') {
    state.countFile(rel, entry.size);
    await writeFile(entry, abs);
  } else {
    throw new ArchiveError(
      'unsafe-path',
      `entry ${JSON.stringify(rel)} has unsupported type ${entry.type}`,
    );
  }
}

/**
 * Unpack hg's archive stream (prefix `<repo>-<rev12>/<subdir>/`) into `dest`, checking
 * everything. Returns the number of files.
 */
export async function spoolHgArchive(
  body: Readable,
  expectedLength: number | undefined,
  dest: string,
  subdir: string,
  limits: SourceLimits,
): Promise<number> {
  const gunzip = zlib.createGunzip();
  // pipeline propagates an error of any stage (even one that happened already) to the gunzip end
  const piped = pipeline(body, lengthCheck(expectedLength), gunzip).catch((e: unknown) => e);
  const state = new SpoolState(subdir, limits);
  await fs.promises.mkdir(dest, { recursive: true });
  for await (const entry of readTar(gunzip, 'hg archive')) {
    const rel = state.inside(entry.path);
    if (rel !== null) await spoolEntry(entry, rel, dest, state);
  }
  const failed = await piped;
  if (failed) throw failed;
  return state.files;
}
