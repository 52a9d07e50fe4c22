// The deploy agent: follow one channel of a known-good manifest on a machine without a checkout.
//
//   DIR/.deploy.lock              O_EXCL lock file {pid, host, startedAt}; stale when its pid is gone
//   DIR/.downloads/               verified downloads (tar.gz or zip), removed after unpacking
//   DIR/versions/<sha256>/        unpacked archive + .mozharness-deploy.json stamp (made in a staging
//                                 dir and renamed into place, so it is complete or absent)
//   DIR/current -> versions/<sha256>   switched atomically (new symlink + rename over the old one)
//
// Any failure (wrong sha256, unreachable URL, hostile archive, full disk, manifest failing its
// schema) leaves `current` as it was; `watch` logs why and tries again at the next poll.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { downloadAndUnpack } from '../storage/fetch-archive.js';
import {
  checkChannel,
  describeLocation,
  readManifest,
  type ChannelEntry,
  type ManifestIO,
  type ManifestLocation,
} from './manifest.js';
import { sleepUnlessAborted } from '../util/retry.js';

export const STAMP_FILE = '.mozharness-deploy.json';
export const LOCK_FILE = '.deploy.lock';
export const DEFAULT_KEEP = 3;

export interface DeployStamp {
  channel: string;
  project: string;
  revision: string;
  treeDigest: string;
  sha256: string;
  size: number;
  taskId: string;
  url: string;
  deployedAt: string;
  manifest: string;
}

export interface DeployOptions {
  manifest: ManifestLocation;
  channel: string;
  root: string;
  /** Versions kept in DIR/versions (the current one always stays). Default 3. */
  keep?: number;
  io?: ManifestIO;
  /** true: a progress bar on stderr when it is a terminal; or a callback. */
  progress?: boolean | ((done: number, total?: number) => void);
  /** Download retries (default 3); a failed pass is retried by `watch` anyway. */
  retries?: number;
  log?: Logger;
  signal?: AbortSignal;
  now?: () => Date;
  timeoutMs?: number;
}

export interface DeployResult {
  /** deployed: `current` switched; unchanged: already current; not-modified: manifest unchanged. */
  outcome: 'deployed' | 'unchanged' | 'not-modified';
  etag?: string;
  sha256?: string;
  revision?: string;
  current?: string;
}

// --- lock -----------------------------------------------------------------------------------

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take DIR/.deploy.lock (O_EXCL). A lock whose process is gone (same host) is taken over. */
export async function acquireLock(
  root: string,
  log: Logger = silentLogger,
): Promise<() => Promise<void>> {
  await fs.promises.mkdir(root, { recursive: true });
  const file = path.join(root, LOCK_FILE);
  const mine: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.promises.open(file, 'wx', 0o644);
      try {
        await fh.writeFile(JSON.stringify(mine) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      return async () => {
        try {
          const now = JSON.parse(await fs.promises.readFile(file, 'utf8')) as LockInfo;
          if (now.pid === mine.pid && now.host === mine.host)
            await fs.promises.rm(file, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ArchiveError('unavailable', `cannot create ${file}: ${errorMessage(e)}`);
      }
    }
    let holder: Partial<LockInfo> = {};
    try {
      holder = JSON.parse(await fs.promises.readFile(file, 'utf8'));
    } catch {
      // empty or half-written lock: the holder died between open and write
    }
    const sameHost = !holder.host || holder.host === os.hostname();
    if (sameHost && (typeof holder.pid !== 'number' || !alive(holder.pid))) {
      log.warn('deploy.stale-lock', { lock: file, pid: holder.pid, startedAt: holder.startedAt });
      // Take over by renaming a fresh name over it would race; remove and retry O_EXCL instead.
      await fs.promises.rm(file, { force: true });
      continue;
    }
    throw new ArchiveError(
      'conflict',
      `another deploy agent holds ${file} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt})`,
      { lock: file, ...holder },
    );
  }
  throw new ArchiveError('conflict', `could not take ${file}`);
}

// --- layout ---------------------------------------------------------------------------------

export function versionsDir(root: string): string {
  return path.join(root, 'versions');
}
export function currentLink(root: string): string {
  return path.join(root, 'current');
}

/** The sha256 `current` points at, or undefined. */
export async function currentVersion(root: string): Promise<string | undefined> {
  try {
    const target = await fs.promises.readlink(currentLink(root));
    const m = /(?:^|\/)versions\/([0-9a-f]{64})\/?$/.exec(target);
    return m?.[1];
  } catch {
    return undefined;
  }
}

export async function readStamp(dir: string): Promise<DeployStamp | undefined> {
  try {
    return JSON.parse(
      await fs.promises.readFile(path.join(dir, STAMP_FILE), 'utf8'),
    ) as DeployStamp;
  } catch {
    return undefined;
  }
}

/** Point DIR/current at versions/<sha256>: a new symlink renamed over the old one (atomic). */
export async function switchCurrent(root: string, sha256: string): Promise<void> {
  const link = currentLink(root);
  try {
    const st = await fs.promises.lstat(link);
    if (!st.isSymbolicLink()) {
      throw new ArchiveError(
        'conflict',
        `${link} exists and is not a symlink; refusing to replace it`,
      );
    }
  } catch (e) {
    if (e instanceof ArchiveError) throw e;
  }
  const tmp = path.join(root, `.current.${process.pid}.${randomBytes(4).toString('hex')}`);
  await fs.promises.symlink(path.join('versions', sha256), tmp);
  try {
    await fs.promises.rename(tmp, link);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

/** Remove staging leftovers of an interrupted deploy (we hold the lock, so they are ours). */
async function cleanLeftovers(root: string, log: Logger): Promise<void> {
  const remove = async (p: string) => {
    log.info('deploy.cleanup', { path: p });
    await fs.promises.rm(p, { recursive: true, force: true });
  };
  const list = async (dir: string) => fs.promises.readdir(dir).catch(() => [] as string[]);
  if (fs.existsSync(path.join(root, '.downloads'))) await remove(path.join(root, '.downloads'));
  for (const n of await list(versionsDir(root))) {
    if (n.startsWith('.staging-')) await remove(path.join(versionsDir(root), n));
  }
  for (const n of await list(root)) {
    if (n.startsWith('.current.')) await remove(path.join(root, n));
  }
}

/** Keep `keep` versions: the current one and the most recently deployed others. */
export async function pruneVersions(
  root: string,
  keep: number,
  log: Logger = silentLogger,
): Promise<string[]> {
  const vdir = versionsDir(root);
  const current = await currentVersion(root);
  let names: string[] = [];
  try {
    names = (await fs.promises.readdir(vdir)).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
  const dated = await Promise.all(
    names.map(async (n) => ({ n, at: (await readStamp(path.join(vdir, n)))?.deployedAt ?? '' })),
  );
  dated.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  // N versions in all: the current one, then the most recently deployed others
  const others = dated.filter((d) => d.n !== current);
  const kept = new Set(others.slice(0, Math.max(1, keep) - (current ? 1 : 0)).map((d) => d.n));
  if (current) kept.add(current);
  const removed: string[] = [];
  for (const d of dated) {
    if (kept.has(d.n)) continue;
    await fs.promises.rm(path.join(vdir, d.n), { recursive: true, force: true });
    removed.push(d.n);
    log.info('deploy.pruned', { sha256: d.n });
  }
  return removed;
}

/** Download, verify, unpack and stamp one entry into versions/<sha256> (no-op when present). */
export async function installVersion(
  root: string,
  channel: string,
  entry: ChannelEntry,
  opts: Pick<DeployOptions, 'progress' | 'retries' | 'signal' | 'now' | 'timeoutMs' | 'log'> & {
    manifest: string;
  },
): Promise<string> {
  const log = opts.log ?? silentLogger;
  const vdir = versionsDir(root);
  const dest = path.join(vdir, entry.sha256);
  const existing = await readStamp(dest);
  if (existing?.sha256 === entry.sha256) return dest;
  if (fs.existsSync(dest)) {
    // A version directory without a valid stamp is not ours to trust: rebuild it.
    await fs.promises.rm(dest, { recursive: true, force: true });
  }
  await fs.promises.mkdir(vdir, { recursive: true });
  const staging = path.join(
    vdir,
    `.staging-${entry.sha256}-${process.pid}-${randomBytes(3).toString('hex')}`,
  );
  try {
    log.info('deploy.download', {
      channel,
      url: entry.url,
      sha256: entry.sha256,
      size: entry.size,
    });
    await downloadAndUnpack(entry.url, staging, {
      downloadDir: path.join(root, '.downloads'),
      sha256: entry.sha256,
      size: entry.size,
      progress: opts.progress ?? false,
      log,
      retries: opts.retries ?? 3,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.timeoutMs ? { idleTimeoutMs: opts.timeoutMs } : {}),
    });
    const stamp: DeployStamp = {
      channel,
      project: entry.project,
      revision: entry.revision,
      treeDigest: entry.treeDigest,
      sha256: entry.sha256,
      size: entry.size,
      taskId: entry.taskId,
      url: entry.url,
      deployedAt: (opts.now?.() ?? new Date()).toISOString(),
      manifest: opts.manifest,
    };
    const stampTmp = path.join(staging, `${STAMP_FILE}.tmp`);
    await fs.promises.writeFile(stampTmp, JSON.stringify(stamp, null, 2) + '\n');
    await fs.promises.rename(stampTmp, path.join(staging, STAMP_FILE));
    await fs.promises.rename(staging, dest);
    return dest;
  } finally {
    await fs.promises.rm(staging, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * One deploy pass: read the manifest (conditionally on `etag`), and when the channel points at a
 * version other than `current`, install it and switch. The caller holds the lock.
 */
export async function deployOnce(
  opts: DeployOptions,
  state: { etag?: string } = {},
): Promise<DeployResult> {
  const log = opts.log ?? silentLogger;
  const channel = checkChannel(opts.channel);
  const where = describeLocation(opts.manifest);
  const read = await readManifest(opts.manifest, opts.io ?? {}, { etag: state.etag });
  const current = await currentVersion(opts.root);
  if (read.status === 'not-modified') {
    return { outcome: 'not-modified', etag: read.etag, ...(current ? { current } : {}) };
  }
  if (read.status === 'missing') throw new ArchiveError('not-found', `no manifest at ${where}`);
  const entry = read.manifest.channels[channel];
  if (!entry) throw new ArchiveError('not-found', `channel ${channel} is not in ${where}`);
  if (current === entry.sha256 && (await readStamp(path.join(versionsDir(opts.root), current)))) {
    return {
      outcome: 'unchanged',
      etag: read.etag,
      sha256: entry.sha256,
      revision: entry.revision,
      current,
    };
  }
  await installVersion(opts.root, channel, entry, { ...opts, manifest: where });
  await switchCurrent(opts.root, entry.sha256);
  log.info('deploy.switched', {
    channel,
    revision: entry.revision,
    sha256: entry.sha256,
    previous: current,
  });
  await pruneVersions(opts.root, opts.keep ?? DEFAULT_KEEP, log).catch((e) =>
    log.warn('deploy.prune-failed', { error: errorMessage(e) }),
  );
  return {
    outcome: 'deployed',
    etag: read.etag,
    sha256: entry.sha256,
    revision: entry.revision,
    current: entry.sha256,
  };
}

/** Take the lock, clean leftovers of an interrupted deploy, run `fn`, release the lock. */
export async function withDeployLock<T>(
  root: string,
  log: Logger,
  fn: () => Promise<T>,
): Promise<T> {
  const release = await acquireLock(root, log);
  try {
    await cleanLeftovers(root, log);
    return await fn();
  } finally {
    await release();
  }
}

/** `deploy` without --watch: one locked pass. */
export async function deploy(opts: DeployOptions): Promise<DeployResult> {
  const log = opts.log ?? silentLogger;
  return withDeployLock(opts.root, log, () => deployOnce(opts));
}

/**
 * `deploy --watch`: poll the manifest every `intervalMs` with its ETag; deploy on change. A failed
 * pass keeps `current`, is logged, and is retried at the next poll (the ETag is forgotten so the
 * manifest is read again). Runs until `signal` aborts.
 */
export async function watch(
  opts: DeployOptions & { intervalMs: number; onPass?: (r: DeployResult | Error) => void },
): Promise<void> {
  const log = opts.log ?? silentLogger;
  await withDeployLock(opts.root, log, async () => {
    const state: { etag?: string } = {};
    while (!opts.signal?.aborted) {
      try {
        const r = await deployOnce(opts, state);
        state.etag = r.etag;
        if (r.outcome !== 'not-modified') {
          log.info('deploy.pass', { outcome: r.outcome, revision: r.revision, sha256: r.sha256 });
        }
        opts.onPass?.(r);
      } catch (e) {
        state.etag = undefined;
        log.warn('deploy.failed', {
          channel: opts.channel,
          manifest: describeLocation(opts.manifest),
          error: errorMessage(e),
          code: e instanceof ArchiveError ? e.code : undefined,
          retryInMs: opts.intervalMs,
        });
        opts.onPass?.(e instanceof Error ? e : new Error(String(e)));
      }
      await sleepUnlessAborted(opts.intervalMs, opts.signal);
    }
  });
}
