// The archive engine: "subdirectory S of repository R at revision V" → one byte-reproducible
// tar.gz with a content digest, and the safe unpack of such archives.
import type { Logger } from '../util/log.js';
import { ArchiveError } from '../util/errors.js';

export const ARCHIVE_FORMAT = 'tar.gz';
export const FORMAT_VERSION = 1;

export type SourceSpec =
  | { kind: 'hgweb'; url: string }
  | { kind: 'git-remote'; url: string }
  | { kind: 'hg'; path: string }
  | { kind: 'git'; path: string }
  | { kind: 'dir'; path: string };

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

export interface FetchPolicy {
  allowRepos: string[];
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  retries?: number;
  maxRetryTimeMs?: number;
}

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
}

export interface ArchiveResult {
  sha256: string;
  size: number;
  treeDigest: string;
  files: number;
  revision: string;
  subdir: string;
  format: 'tar.gz';
  formatVersion: number;
}

export interface ArchiveMetadata extends ArchiveResult {
  repository: string;
  createdAt: string;
}

const todo = (what: string): never => {
  throw new ArchiveError('internal', `${what}: not implemented yet`);
};

export function parseSource(_source: string, _hint?: 'hg' | 'git'): SourceSpec {
  return todo('parseSource');
}
export async function buildArchive(_opts: BuildOptions & { out?: string }): Promise<ArchiveResult> {
  return todo('buildArchive');
}
export async function packArchive(
  _opts: BuildOptions,
  _sink: NodeJS.WritableStream,
): Promise<ArchiveResult> {
  return todo('packArchive');
}
export async function computeTreeDigest(
  _opts: BuildOptions,
): Promise<{ treeDigest: string; files: number; revision: string; subdir: string }> {
  return todo('computeTreeDigest');
}
export async function resolveRevision(
  _source: SourceSpec,
  _revision: string,
  _policy?: FetchPolicy,
): Promise<string> {
  return todo('resolveRevision');
}
export async function unpackArchive(
  _file: string,
  _dest: string,
  _opts?: { sha256?: string; limits?: Partial<Limits> },
): Promise<{ files: number; bytes: number }> {
  return todo('unpackArchive');
}
export function validateSubdir(_subdir: string): string {
  return todo('validateSubdir');
}
