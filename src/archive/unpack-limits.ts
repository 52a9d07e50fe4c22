// The unpack limits and formats as plain data (no imports), so the CLI can show them in --help
// without loading the archive engine.

export type ArchiveFormat = 'tar.gz' | 'zip';
export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['tar.gz', 'zip'];

export interface UnpackLimits {
  /** Most entries of any kind: files, directories, symlinks, hard links. */
  maxFiles: number;
  /** Largest single file, in bytes. */
  maxFileBytes: number;
  /** Most content in all, in bytes. */
  maxTotalBytes: number;
  /** Most content per byte of archive, above RATIO_FLOOR_BYTES of content. */
  maxRatio: number;
}

/**
 * Defaults no harness meets (mozharness: about 3,000 entries, 15 MB, compressing 4 to 5 times),
 * while a bomb is refused from its headers before anything big is written.
 */
export const DEFAULT_UNPACK_LIMITS: UnpackLimits = {
  maxFiles: 100_000,
  maxFileBytes: 512 * 1024 * 1024,
  maxTotalBytes: 4 * 1024 * 1024 * 1024,
  maxRatio: 200,
};

/** Content an archive may always expand to, whatever its ratio (small archives of sparse data). */
export const RATIO_FLOOR_BYTES = 64 * 1024 * 1024;
