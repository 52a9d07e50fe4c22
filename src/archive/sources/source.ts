// What every source driver shares: the spec of a source, the fetch policy and limits it works
// under, the driver interface, and the checks and errors each driver gives the same way.
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveError } from '../../util/errors.js';
import { redactUrl, type Logger } from '../../util/log.js';
import { hasControl, type TreeSource } from '../tree.js';

export type SourceSpec =
  | { kind: 'hgweb'; url: string }
  | { kind: 'git-remote'; url: string }
  | { kind: 'hg'; path: string }
  | { kind: 'git'; path: string }
  | { kind: 'dir'; path: string };

export type SourceKind = SourceSpec['kind'];
export type SpecOf<K extends SourceKind> = Extract<SourceSpec, { kind: K }>;

export interface FetchPolicy {
  allowRepos: string[];
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  retries?: number;
  maxRetryTimeMs?: number;
  /** Told the bytes each network source transferred (the subdir archive, git packs). */
  onFetchedBytes?: (bytes: number) => void;
}

export interface SourceLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

export interface SourceContext {
  policy?: FetchPolicy;
  limits: SourceLimits;
  log: Logger;
  signal?: AbortSignal;
  tmpDir: string;
  onRequest?: (url: string) => void;
  /** Test hook: backoff base for retries (default 500 ms). */
  baseDelayMs?: number;
}

/**
 * One kind of source. The revision has been checked (`checkRevision`) before either is called.
 */
export interface SourceDriver<K extends SourceKind> {
  kind: K;
  /**
   * The full 40-hex revision `revision` names in `spec`. `trustFullNode`: a full node is taken
   * as it is, not checked with the server (only hgweb checks one otherwise).
   */
  resolve(
    spec: SpecOf<K>,
    revision: string,
    subdir: string,
    ctx: SourceContext,
    trustFullNode: boolean,
  ): Promise<string>;
  /** The tree of `subdir` at `revision` in `spec`. Close it when done. */
  open(spec: SpecOf<K>, revision: string, subdir: string, ctx: SourceContext): Promise<TreeSource>;
}

export const FULL_NODE = /^[0-9a-f]{40}$/;

export function checkRevision(revision: string): void {
  if (
    typeof revision !== 'string' ||
    revision === '' ||
    revision.length > 256 ||
    revision.startsWith('-') ||
    /\s/.test(revision) ||
    hasControl(revision)
  ) {
    throw new ArchiveError('usage', `invalid revision ${JSON.stringify(revision)}`);
  }
}

export const trimSlash = (u: string) => u.replace(/\/+$/, '');

/** True when `url` is one of the allowed repository prefixes (at a path boundary). */
export function isAllowedUrl(url: string, allowRepos: string[]): boolean {
  const u = trimSlash(url);
  return allowRepos.some((prefix) => {
    const p = trimSlash(prefix);
    return p !== '' && (u === p || u.startsWith(p + '/'));
  });
}

export function checkAllowed(url: string, policy?: FetchPolicy): void {
  if (!policy || !isAllowedUrl(url, policy.allowRepos)) {
    throw new ArchiveError(
      'not-allowed',
      // The offending URL only (userinfo redacted): the allow-list is configuration and may
      // hold credentials, so it is never quoted into a task log.
      `repository ${redactUrl(url)} is not on the allow-list` +
        (policy?.allowRepos.length ? '' : ' (no repositories allowed)'),
      { repository: url },
    );
  }
}

export function notFound(repository: string, revision: string, subdir: string, why: string) {
  return new ArchiveError(
    'not-found',
    `${why}: repository ${repository}, revision ${revision}, subdir ${subdir}`,
    { repository, revision, subdir },
  );
}

/** A private staging directory under the context's temp dir. */
export async function staging(ctx: SourceContext, what: string): Promise<string> {
  await fs.promises.mkdir(ctx.tmpDir, { recursive: true });
  return fs.promises.mkdtemp(path.join(ctx.tmpDir, `mozharness-archive-${what}-`));
}

export const remove = (dir: string) => fs.promises.rm(dir, { recursive: true, force: true });

/** `open(stage)` in a fresh staging dir, removed again when it fails. */
export async function inStaging<T>(
  ctx: SourceContext,
  what: string,
  open: (stage: string) => Promise<T>,
): Promise<T> {
  const stage = await staging(ctx, what);
  try {
    return await open(stage);
  } catch (e) {
    await remove(stage);
    throw e;
  }
}
