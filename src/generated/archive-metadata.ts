// Generated from schemas/archive-metadata.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * Describes one content-addressed harness archive: what it holds (repository, revision, subdir), its bytes (sha256, size) and its tree digest. Printed by `mozharness-archive build --json` (without createdAt) and stored beside the archive as <sha256>.json.
 */
export interface ArchiveMetadata {
  /**
   * sha256 of the archive bytes (lowercase hex).
   */
  sha256: string;
  /**
   * Size of the archive in bytes.
   */
  size: number;
  /**
   * sha256 over the sorted entry lines (type, mode, content sha256, path) salted with the format version: identical trees have identical digests, whatever their source.
   */
  treeDigest: string;
  /**
   * Number of files and symlinks in the archive (directories not counted).
   */
  files: number;
  /**
   * Full 40-hex revision the tree was taken from.
   */
  revision: string;
  /**
   * Archived subdirectory of the repository, relative, '/'-separated, e.g. testing/mozharness.
   */
  subdir: string;
  /**
   * Archive format.
   */
  format: 'tar.gz';
  /**
   * Version of the archive layout and tree digest (bumped when either changes).
   */
  formatVersion: number;
  /**
   * The zip of the same tree (public/build/mozharness.zip): its sha256 and size.
   */
  zip?: {
    sha256: string;
    size: number;
  };
  /**
   * Repository the archive was built from: a URL, or a local path.
   */
  repository: string;
  /**
   * When the archive was built (RFC 3339).
   */
  createdAt?: string;
}
