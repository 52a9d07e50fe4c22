// The archive engine: "subdirectory S of repository R at revision V" → a byte-reproducible
// tar.gz and zip of the same tree with a content digest, and the safe unpack of such archives.
//
// Archive format v2 (FORMAT_VERSION):
// - entries are the subdir's contents relative to it (no top-level prefix), sorted by the bytes of
//   their UTF-8 path; directory entries ("dir/") are included, derived from the files and symlinks
//   (so empty directories are never archived, whatever the source);
// - files 0644, or 0755 when the owner-executable bit is set; dirs 0755; symlinks 0777 and only
//   when their target stays inside the tree; mtime 0, uid/gid 0, empty uname/gname, ustar headers
//   (tar@7's Header) plus a PAX 'x' header (tar@7's Pax) for paths of 100 bytes or more, link
//   targets over 100 bytes, or either not printable ASCII (see tar.ts);
// - two zero blocks end the tar; one gzip member (no name, mtime 0, XFL 0, OS byte 255) whose
//   deflate stream is cut into 128 KiB blocks of tar bytes, each compressed by zlib at level 6
//   primed with the previous 32 KiB as its dictionary and ended by a sync flush (the last by
//   Z_FINISH), so the bytes do not depend on the number of threads (deflate.ts);
// - the zip holds the same entries in the same order (directories as "dir/"), DOS time
//   1980-01-01 00:00, no extra fields but zip64 where needed, no data descriptors, made by Unix
//   with the mode and type in the external attributes, files deflated like the tar (blocks of
//   the file's own content), empty files, directories and symlinks (target as content) stored
//   (zip.ts);
// - tree digest = sha256("mozharness-archive tree v2\n" + one line per entry
//   "<file|dir|symlink> <mode octal> <sha256 of content | link target | empty> <path>\n").
// Sources (SourceSpec): hgweb (json-rev + archive/<node>.tar.gz/<subdir>, spooled into a private
// staging dir), local hg (`hg archive`), git (ls-tree + cat-file --batch), git-remote (shallow
// fetch of that revision into a temp bare repo), dir (VCS-tracked files of a checkout, else all).
// Network sources are fetched only when their URL is under a FetchPolicy.allowRepos prefix.
// Unpack: `dest` must not exist or be an empty directory; see unpackArchive.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ArchiveError, errorMessage, isArchiveError } from '../util/errors.js';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { silentLogger, type Logger } from '../util/log.js';
import { digestEntries, packEntries } from './pack.js';
import {
  describeSource,
  openSource,
  resolveIn,
  type FetchPolicy,
  type SourceContext,
  type SourceSpec,
} from './sources/index.js';
import { hasControl, type TreeEntry, type TreeSource } from './tree.js';
import type { ArchiveFormat } from './unpack-limits.js';
import type { UnpackOptions } from './unpack.js';
import type { ArchiveMetadata as ArchiveMetadataDocument } from '../generated/archive-metadata.js';

export type { FetchPolicy, SourceSpec } from './sources/index.js';
export { isAllowedUrl } from './sources/index.js';
export {
  ARCHIVE_FORMATS,
  DEFAULT_UNPACK_LIMITS,
  RATIO_FLOOR_BYTES,
  type ArchiveFormat,
  type UnpackLimits,
} from './unpack-limits.js';
export type { UnpackOptions } from './unpack.js';

// The unpack side (tar@7's parser, yauzl's reader, the extraction core) loads when it is used:
// a build or a digest never needs it, and loading it is a good part of a build's start-up.
const unpacking = () => import('./unpack.js');

/** The format of an archive file from its first bytes (undefined when it is neither). */
export async function detectFormat(file: string): Promise<ArchiveFormat | undefined> {
  return (await unpacking()).detectFormat(file);
}

export const ARCHIVE_FORMAT = 'tar.gz';
/**
 * Version of the archive bytes and the tree digest. v2: block-parallel deflate of the tar.gz, and
 * the zip alongside.
 */
export const FORMAT_VERSION = 2;

export interface Limits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxFiles: 100_000,
  maxFileBytes: 512 * 1024 * 1024,
  maxTotalBytes: 2 * 1024 * 1024 * 1024,
};

export interface BuildOptions {
  source: SourceSpec;
  revision: string;
  subdir: string;
  policy?: FetchPolicy;
  limits?: Partial<Limits>;
  log?: Logger;
  signal?: AbortSignal;
  tmpDir?: string;
  onRequest?: (url: string) => void;
  /** Deflate threads: default one per core, 0 = none (on the calling thread). Same bytes. */
  threads?: number;
  /** Also make the zip (default true). */
  zip?: boolean;
}

/** One archive file: its sha256 and size. */
export interface ArchiveFile {
  sha256: string;
  size: number;
}

/**
 * What a build made: the fields of schemas/archive-metadata.json but where it came from and when
 * (the tar.gz's sha256 and size, the zip's when it was asked for, the tree digest, …).
 */
export type ArchiveResult = Omit<ArchiveMetadataDocument, 'repository' | 'createdAt'>;

/** The metadata stored beside an archive (archive-metadata.json, with its build time). */
export interface ArchiveMetadata extends ArchiveResult {
  repository: string;
  createdAt: string;
}

/**
 * Parse a --source argument: an http(s) URL is an hgweb repository unless `hint` is 'git' or it
 * ends with .git (then git-remote); file:// URLs are git remotes; a path is a git repository
 * (bare or with .git), a Mercurial repository (.hg) or otherwise a plain directory.
 */
export function parseSource(source: string, hint?: 'hg' | 'git'): SourceSpec {
  if (typeof source !== 'string' || source.trim() === '') {
    throw new ArchiveError('usage', 'empty --source');
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    const u = new URL(source);
    if (u.protocol === 'file:') return { kind: 'git-remote', url: source };
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ArchiveError(
        'usage',
        `unsupported source URL scheme ${u.protocol} (http, https, file)`,
      );
    }
    if (u.username || u.password) {
      throw new ArchiveError('usage', 'credentials in a source URL are not accepted');
    }
    if (hint === 'git' || /\.git\/?$/.test(u.pathname)) return { kind: 'git-remote', url: source };
    return { kind: 'hgweb', url: source.replace(/\/+$/, '') };
  }
  const p = path.resolve(source);
  if (!fs.existsSync(p)) throw new ArchiveError('not-found', `source ${source} does not exist`);
  if (!fs.statSync(p).isDirectory())
    throw new ArchiveError('usage', `source ${source} is not a directory`);
  const isBareGit = fs.existsSync(path.join(p, 'HEAD')) && fs.existsSync(path.join(p, 'objects'));
  if (hint === 'git' || isBareGit) return { kind: 'git', path: p };
  if (hint === 'hg') return { kind: 'hg', path: p };
  if (fs.existsSync(path.join(p, '.hg'))) return { kind: 'hg', path: p };
  if (fs.existsSync(path.join(p, '.git'))) return { kind: 'git', path: p };
  return { kind: 'dir', path: p };
}

/** Normalise a subdir ('testing/mozharness'), refusing '..', absolute paths and empty segments. */
export function validateSubdir(subdir: string): string {
  if (typeof subdir !== 'string') throw new ArchiveError('usage', 'subdir must be a string');
  const s = subdir.replace(/\/+$/, '');
  const bad = (why: string) =>
    new ArchiveError('unsafe-path', `unsafe subdir ${JSON.stringify(subdir)}: ${why}`, { subdir });
  if (s === '') throw bad('empty');
  if (s.startsWith('/') || /^[A-Za-z]:/.test(s) || s.startsWith('\\')) throw bad('absolute path');
  if (hasControl(s) || s.includes('\\')) throw bad('control character or backslash');
  for (const seg of s.split('/')) {
    if (seg === '..') throw bad("'..' component");
    if (seg === '' || seg === '.') throw bad('empty or . segment');
  }
  return s;
}

function limitsOf(l?: Partial<Limits>): Limits {
  const out = { ...DEFAULT_LIMITS, ...l };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isFinite(v) || v <= 0)
      throw new ArchiveError('usage', `limit ${k} must be a positive number`);
  }
  return out;
}

function context(opts: BuildOptions): SourceContext {
  return {
    policy: opts.policy,
    limits: limitsOf(opts.limits),
    log: opts.log ?? silentLogger,
    signal: opts.signal,
    tmpDir: opts.tmpDir ?? os.tmpdir(),
    onRequest: opts.onRequest,
    baseDelayMs: (opts as { baseDelayMs?: number }).baseDelayMs,
  };
}

async function withSource<T>(
  opts: BuildOptions,
  fn: (src: TreeSource, subdir: string, ctx: SourceContext) => Promise<T>,
): Promise<T> {
  const subdir = validateSubdir(opts.subdir);
  const ctx = context(opts);
  const src = await openSource(opts.source, opts.revision, subdir, ctx);
  try {
    return await fn(src, subdir, ctx);
  } finally {
    await src.close();
  }
}

async function packWith(
  opts: BuildOptions,
  makeSinks: () => { tarGz: NodeJS.WritableStream; zip?: NodeJS.WritableStream },
): Promise<ArchiveResult> {
  return withSource(opts, async (src, subdir, ctx) => {
    const sinks = makeSinks();
    const out = await packEntries(src.entries(), sinks, FORMAT_VERSION, ctx.limits, {
      signal: opts.signal,
      threads: opts.threads,
    });
    const tarGz = out.tarGz!;
    ctx.log.info('archive.packed', {
      repository: src.repository,
      revision: src.revision,
      subdir,
      sha256: tarGz.sha256,
      size: tarGz.size,
      zipSha256: out.zip?.sha256,
      zipSize: out.zip?.size,
      files: out.files,
    });
    return {
      sha256: tarGz.sha256,
      size: tarGz.size,
      ...(out.zip ? { zip: out.zip } : {}),
      treeDigest: out.treeDigest,
      files: out.files,
      revision: src.revision,
      subdir,
      format: ARCHIVE_FORMAT,
      formatVersion: FORMAT_VERSION,
    };
  });
}

const discard = () => new Writable({ write: (_c, _e, cb) => cb() });

function destroyStream(s: NodeJS.WritableStream | undefined, e: unknown): void {
  const w = s as
    (NodeJS.WritableStream & { destroy?: (e?: Error) => void; destroyed?: boolean }) | undefined;
  if (!w || typeof w.destroy !== 'function' || w.destroyed) return;
  // the caller gets the error from the returned promise; the stream's own 'error' is not a crash
  w.on('error', () => {});
  w.destroy(e as Error);
}

/**
 * Pack the tree into `sink` (the tar.gz) and `zipSink` (the zip, when given): the streaming core
 * of buildArchive. The sinks are ended on success and destroyed with the error on failure (so an
 * upload reading from one never takes a partial body).
 */
export async function packArchive(
  opts: BuildOptions,
  sink: NodeJS.WritableStream,
  zipSink?: NodeJS.WritableStream,
): Promise<ArchiveResult> {
  try {
    return await packWith({ ...opts, zip: zipSink !== undefined }, () => ({
      tarGz: sink,
      zip: zipSink,
    }));
  } catch (e) {
    destroyStream(sink, e);
    destroyStream(zipSink, e);
    throw e;
  }
}

/** A file written through a temp file beside it, renamed into place once complete. */
class AtomicFile {
  readonly temp: string;
  private stream: fs.WriteStream | undefined;
  constructor(readonly out: string) {
    this.temp = path.join(
      path.dirname(out),
      `.${path.basename(out)}.${crypto.randomBytes(6).toString('hex')}.tmp`,
    );
  }
  open(): fs.WriteStream {
    this.stream = fs.createWriteStream(this.temp, { flags: 'wx', mode: 0o644 });
    return this.stream;
  }
  commit(): Promise<void> {
    return fs.promises.rename(this.temp, this.out);
  }
  async discard(): Promise<void> {
    const file = this.stream;
    if (file && !file.closed) {
      const closed = new Promise<void>((resolve) => file.once('close', () => resolve()));
      file.destroy();
      await closed;
    }
    await fs.promises.rm(this.temp, { force: true });
  }
}

/**
 * Build the archive (and the zip, unless `zip: false`). With `out` the tar.gz is written there,
 * with `zipOut` the zip, each atomically (temp file beside it, then rename); without, only their
 * sha256 and size are computed.
 */
export async function buildArchive(
  opts: BuildOptions & { out?: string; zipOut?: string },
): Promise<ArchiveResult> {
  const wantZip = opts.zip !== false || opts.zipOut !== undefined;
  const files: AtomicFile[] = [];
  const target = async (out: string | undefined) => {
    if (!out) return null;
    const abs = path.resolve(out);
    await fs.promises.mkdir(path.dirname(abs), { recursive: true });
    const f = new AtomicFile(abs);
    files.push(f);
    return f;
  };
  const tarFile = await target(opts.out);
  const zipFile = await target(opts.zipOut);
  try {
    // the temp files are only created once the source is open and packing starts
    const result = await packWith({ ...opts, zip: wantZip }, () => ({
      tarGz: tarFile ? tarFile.open() : discard(),
      zip: zipFile ? zipFile.open() : wantZip ? discard() : undefined,
    }));
    for (const f of files) await f.commit();
    return result;
  } catch (e) {
    for (const f of files) await f.discard();
    throw e;
  }
}

/** The tree digest (cache key) of the subdir at the revision, without building an archive. */
export async function computeTreeDigest(
  opts: BuildOptions,
): Promise<{ treeDigest: string; files: number; revision: string; subdir: string }> {
  return withSource(opts, async (src, subdir, ctx) => {
    const d = await digestEntries(src.entries(), FORMAT_VERSION, ctx.limits);
    return { treeDigest: d.treeDigest, files: d.files, revision: src.revision, subdir };
  });
}

/** The full 40-hex revision, or ArchiveError('not-found') naming repository and revision. */
export async function resolveRevision(
  source: SourceSpec,
  revision: string,
  policy?: FetchPolicy,
): Promise<string> {
  return resolveIn(source, revision, '(any)', {
    policy,
    limits: DEFAULT_LIMITS,
    log: silentLogger,
    tmpDir: os.tmpdir(),
  });
}

/**
 * sha256, size, tree digest and file count of an archive this engine wrote, read from the file
 * alone (no unpacking). An archive that is not in the normalised format (unsorted, prefixed,
 * other modes or types) is refused as 'corrupt': its digest would not mean the same thing.
 */
export async function inspectArchive(
  file: string,
  opts: { limits?: Partial<Limits> } = {},
): Promise<{
  sha256: string;
  size: number;
  treeDigest: string;
  files: number;
  formatVersion: number;
}> {
  const limits = limitsOf(opts.limits);
  const { readTar } = await import('./untar.js');
  const hash = crypto.createHash('sha256');
  let size = 0;
  const input = fs.createReadStream(file);
  input.on('data', (c) => {
    hash.update(c as Buffer);
    size += (c as Buffer).length;
  });
  const gunzip = zlib.createGunzip();
  const piped = pipeline(input, gunzip).catch((e: unknown) => e);
  async function* entries(): AsyncGenerator<TreeEntry> {
    for await (const raw of readTar(gunzip, `archive ${file}`)) {
      const p = raw.path.replace(/\/$/, '');
      const type =
        raw.type === 'file' || raw.type === 'dir' || raw.type === 'symlink' ? raw.type : null;
      const expected =
        type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : raw.mode & 0o100 ? 0o755 : 0o644;
      if (!type || raw.mode !== expected || (type === 'dir') !== raw.path.endsWith('/')) {
        throw new ArchiveError(
          'corrupt',
          `${file} is not a normalised archive (entry ${JSON.stringify(raw.path)})`,
        );
      }
      yield {
        path: p,
        type,
        mode: raw.mode,
        size: raw.size,
        linkTarget: raw.linkpath,
        read: () => raw.content,
      };
    }
  }
  let d;
  try {
    d = await digestEntries(entries(), FORMAT_VERSION, limits);
  } catch (e) {
    input.destroy();
    if (isArchiveError(e, 'internal'))
      throw new ArchiveError('corrupt', `${file} is not a normalised archive: ${e.message}`);
    if (isArchiveError(e)) throw e;
    throw new ArchiveError(
      'corrupt',
      `archive ${file} is corrupt or truncated: ${errorMessage(e)}`,
    );
  }
  const failed = await piped;
  if (failed)
    throw new ArchiveError('corrupt', `archive ${file} is corrupt: ${errorMessage(failed)}`);
  return {
    sha256: hash.digest('hex'),
    size,
    treeDigest: d.treeDigest,
    files: d.files,
    formatVersion: FORMAT_VERSION,
  };
}

/** The metadata document of an archive (schemas/archive-metadata.json). */
export function archiveMetadata(
  result: ArchiveResult,
  repository: string,
  createdAt: Date = new Date(),
): ArchiveMetadata {
  return {
    sha256: result.sha256,
    size: result.size,
    ...(result.zip ? { zip: { sha256: result.zip.sha256, size: result.zip.size } } : {}),
    treeDigest: result.treeDigest,
    files: result.files,
    revision: result.revision,
    subdir: result.subdir,
    format: result.format,
    formatVersion: result.formatVersion,
    repository,
    createdAt: createdAt.toISOString(),
  };
}

/** The repository name recorded in metadata for a source. */
export function sourceRepository(source: SourceSpec): string {
  return describeSource(source);
}

/**
 * Unpack a tar.gz or zip archive safely. `dest` must not exist or be an empty directory; it
 * appears atomically, complete and checked (sha256 when given), or not at all. Limits default to
 * DEFAULT_UNPACK_LIMITS; `format` (when given) must match the file's first bytes.
 */
export async function unpackArchive(
  file: string,
  dest: string,
  opts: UnpackOptions = {},
): Promise<{ files: number; bytes: number }> {
  return (await unpacking()).unpackTo(file, dest, opts);
}
