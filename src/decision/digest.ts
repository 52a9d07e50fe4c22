// Phase 3: what the archive of this push will be. The archive is byte-reproducible, so the
// decision task packs the harness from its own checkout (no upload) to learn both the content
// digest it looks up in the index and the exact sha256 downstream tasks must verify.
import path from 'node:path';
import { buildArchive, type ArchiveResult, type BuildOptions } from '../archive/index.js';

export interface HarnessDigest {
  /** Content digest of the tree (64 hex): the cache key. */
  treeDigest: string;
  /** sha256 of the tar.gz the archive task will produce. */
  sha256: string;
  size: number;
  /** sha256 and size of the zip of the same tree the archive task will also produce. */
  zip?: { sha256: string; size: number };
  files: number;
  revision: string;
  subdir: string;
  formatVersion: number;
}

/** The archive engine's compute-only entry point (tests and benchmarks may pass another). */
export type Archiver = (opts: BuildOptions) => Promise<ArchiveResult>;

export async function computeHarnessDigest(
  checkout: string,
  revision: string,
  subdir: string,
  archiver: Archiver = (o) => buildArchive(o),
): Promise<HarnessDigest> {
  const r = await archiver({
    source: { kind: 'dir', path: path.resolve(checkout) },
    revision,
    subdir,
  });
  return {
    treeDigest: r.treeDigest,
    sha256: r.sha256,
    size: r.size,
    ...(r.zip ? { zip: { sha256: r.zip.sha256, size: r.zip.size } } : {}),
    files: r.files,
    revision: r.revision,
    subdir: r.subdir,
    formatVersion: r.formatVersion,
  };
}
