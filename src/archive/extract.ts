// The format-agnostic core of a safe unpack: entries from any archive reader (tar, zip) are
// judged against an in-memory model of the tree built so far (TreeModel), counted against the
// limits before anything is written, and only then written below `root`, a private directory the
// caller renames into place on success and removes on failure.
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveError } from '../util/errors.js';
import { fileMode } from './tree.js';
import { entryPath, refusal, TreeModel } from './tree-model.js';
import { DEFAULT_UNPACK_LIMITS, RATIO_FLOOR_BYTES, type UnpackLimits } from './unpack-limits.js';

export { DEFAULT_UNPACK_LIMITS, RATIO_FLOOR_BYTES, type UnpackLimits };

export type ArchiveEntryType =
  'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

/** One entry as an archive reader reports it. */
export interface ArchiveEntry {
  path: string;
  type: ArchiveEntryType;
  /** The reader's name of the entry type, for messages about unsupported ones. */
  typeName: string;
  mode: number;
  /** Declared content size of a file (what the limits count), 0 otherwise. */
  size: number;
  linkpath: string;
  /** The content; the reader checks it is exactly `size` bytes. */
  content: AsyncIterable<Buffer>;
}

export function checkLimits(l: Partial<UnpackLimits> = {}): UnpackLimits {
  const out = { ...DEFAULT_UNPACK_LIMITS };
  for (const [k, v] of Object.entries(l)) {
    if (v === undefined) continue;
    if (!(k in out)) throw new ArchiveError('usage', `unknown unpack limit ${k}`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new ArchiveError('usage', `limit ${k} must be a positive number`);
    }
    out[k as keyof UnpackLimits] = v;
  }
  return out;
}

const over = (message: string, entry: string) =>
  new ArchiveError('limit-exceeded', `${message} (at ${JSON.stringify(entry)})`, { entry });

type Accepted = 'file' | 'dir' | 'symlink' | 'hardlink';

/** The entry's type when it is one an unpack may write; refuses any other, and setuid/setgid. */
function acceptedKind(entry: ArchiveEntry): Accepted {
  const kind = entry.type;
  if (kind !== 'file' && kind !== 'dir' && kind !== 'symlink' && kind !== 'hardlink') {
    throw refusal(
      entry.path,
      kind === 'other'
        ? `unsupported entry type ${entry.typeName}`
        : `${kind} entries are not allowed`,
    );
  }
  if (entry.mode & 0o6000) throw refusal(entry.path, 'setuid/setgid bit');
  return kind;
}

/** The entries and bytes counted so far against the limits (before anything is written). */
class Budget {
  private entries = 0;
  bytes = 0;
  private readonly ratioCap: number;

  constructor(
    private readonly limits: UnpackLimits,
    private readonly archiveBytes: number,
  ) {
    this.ratioCap = Math.max(RATIO_FLOOR_BYTES, limits.maxRatio * archiveBytes);
  }

  count(entry: ArchiveEntry, kind: Accepted): void {
    const limits = this.limits;
    if (++this.entries > limits.maxFiles) {
      throw over(`archive has more than ${limits.maxFiles} entries`, entry.path);
    }
    if (kind !== 'file') return;
    if (entry.size > limits.maxFileBytes) {
      throw over(
        `entry is ${entry.size} bytes, over the limit of ${limits.maxFileBytes}`,
        entry.path,
      );
    }
    this.bytes += entry.size;
    if (this.bytes > limits.maxTotalBytes) {
      throw over(`archive content is over the limit of ${limits.maxTotalBytes} bytes`, entry.path);
    }
    if (this.bytes > this.ratioCap) {
      throw over(
        `archive content is over ${limits.maxRatio} times the ${this.archiveBytes} bytes of the archive (a compression bomb?)`,
        entry.path,
      );
    }
  }
}

/** A new file at `abs` (never through a link) with the entry's content and normalised mode. */
async function writeFile(abs: string, entry: ArchiveEntry): Promise<void> {
  const mode = fileMode((entry.mode & 0o100) !== 0);
  const fh = await fs.promises.open(
    abs,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
    mode,
  );
  try {
    for await (const chunk of entry.content) await fh.write(chunk);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}

/** Write an accepted entry at `rel` below `root`. */
async function writeEntry(root: string, rel: string, entry: ArchiveEntry, kind: Accepted) {
  const parts = rel.split('/');
  const abs = path.join(root, ...parts);
  if (parts.length > 1)
    await fs.promises.mkdir(path.dirname(abs), { recursive: true, mode: 0o755 });
  switch (kind) {
    case 'dir':
      await fs.promises.mkdir(abs, { recursive: true, mode: 0o755 });
      break;
    case 'symlink':
      await fs.promises.symlink(entry.linkpath, abs);
      break;
    case 'hardlink':
      await fs.promises.link(path.join(root, ...entryPath(entry.linkpath).split('/')), abs);
      break;
    case 'file':
      await writeFile(abs, entry);
      break;
  }
}

/**
 * Write the entries of an archive of `archiveBytes` bytes below `root` (an existing, empty,
 * private directory), or with `root` null only check them (a pass that writes nothing). Throws
 * ArchiveError on the first entry refused; whatever was written below `root` is then the caller's
 * to remove.
 */
export async function extractEntries(
  entries: AsyncIterable<ArchiveEntry>,
  root: string | null,
  archiveBytes: number,
  limits: UnpackLimits,
): Promise<{ files: number; bytes: number }> {
  const model = new TreeModel();
  const budget = new Budget(limits, archiveBytes);
  let files = 0;
  for await (const entry of entries) {
    const kind = acceptedKind(entry);
    const rel = model.add(entry.path, kind, entry.linkpath);
    if (rel === '') continue;
    budget.count(entry, kind);
    if (root !== null) await writeEntry(root, rel, entry, kind);
    if (kind !== 'dir') files++;
  }
  return { files, bytes: budget.bytes };
}
