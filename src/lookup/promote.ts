// `promote`: point a channel of a known-good manifest at a verified archive, keeping the entry it
// replaces as `previous`; `--rollback` swaps them back. Nothing is promoted unless the archive's
// task completed and the object at its URL has the recorded sha256 (downloaded and hashed).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { checkRevision, findArchive, type FindClients, type FoundArchive } from './find.js';
import { downloadVerified } from '../storage/download.js';
import {
  checkChannel,
  describeLocation,
  emptyManifest,
  readManifest,
  writeManifest,
  type ChannelEntry,
  type Manifest,
  type ManifestEntry,
  type ManifestIO,
  type ManifestLocation,
} from './manifest.js';

export interface PromoteDeps extends FindClients {
  io: ManifestIO;
  log?: Logger;
  now?: () => Date;
}

export interface PromoteRequest {
  channel: string;
  manifest: ManifestLocation;
  project: string;
  revision: string;
  prefix?: string;
  /** Who promotes (default: TASKCLUSTER_CLIENT_ID, else user@host). */
  promotedBy?: string;
}

export interface PromoteResult {
  channel: string;
  manifest: string;
  entry: ChannelEntry;
  previous?: ManifestEntry;
}

export function defaultPromoter(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TASKCLUSTER_CLIENT_ID) return env.TASKCLUSTER_CLIENT_ID;
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry
  }
  return `${user}@${os.hostname()}`;
}

/** Refuse unless the task completed and the object has the recorded sha256 and size. */
export async function verifyArchive(
  deps: FindClients,
  found: FoundArchive,
  log: Logger = silentLogger,
): Promise<void> {
  let state: string;
  try {
    state = (await deps.queue.status(found.taskId)).status.state;
  } catch (e) {
    throw new ArchiveError(
      'unavailable',
      `cannot read the status of task ${found.taskId}: ${errorMessage(e)}`,
    );
  }
  if (state !== 'completed') {
    throw new ArchiveError(
      'not-allowed',
      `refusing to promote: archive task ${found.taskId} is ${state}, not completed`,
      { taskId: found.taskId, state },
    );
  }
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'mozharness-promote-'));
  try {
    const got = await downloadVerified(found.objectUrl ?? found.url, path.join(dir, 'archive'), {
      ...(deps.allowUrl ? { allowUrl: deps.allowUrl } : {}),
      ...(deps.timeoutMs ? { idleTimeoutMs: deps.timeoutMs } : {}),
      retries: 2,
    });
    if (got.sha256 !== found.sha256 || got.size !== found.size) {
      throw new ArchiveError(
        'checksum-mismatch',
        `refusing to promote: the object at ${found.objectUrl ?? found.url} has sha256 ${got.sha256} ` +
          `(${got.size} bytes), the archive task recorded ${found.sha256} (${found.size} bytes)`,
        { expected: found.sha256, actual: got.sha256 },
      );
    }
    log.info('promote.verified', { taskId: found.taskId, sha256: got.sha256, size: got.size });
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

function checkWritable(loc: ManifestLocation): void {
  if (loc.kind === 'http') {
    throw new ArchiveError(
      'usage',
      `cannot write ${loc.url}: http(s) manifests are read only; promote into a file or s3://`,
    );
  }
}

function withoutPrevious(e: ChannelEntry): ManifestEntry {
  const { previous: _previous, ...rest } = e;
  return rest;
}

async function readOrEmpty(
  loc: ManifestLocation,
  io: ManifestIO,
): Promise<{ manifest: Manifest; etag?: string }> {
  const r = await readManifest(loc, io);
  if (r.status === 'ok') return { manifest: r.manifest, etag: r.etag };
  return { manifest: emptyManifest() };
}

/** Promote the archive of `project`@`revision` to `channel`. */
export async function promote(deps: PromoteDeps, req: PromoteRequest): Promise<PromoteResult> {
  const log = deps.log ?? silentLogger;
  const channel = checkChannel(req.channel);
  checkRevision(req.revision);
  checkWritable(req.manifest);
  const found = await findArchive(deps, {
    project: req.project,
    revision: req.revision,
    prefix: req.prefix,
  });
  await verifyArchive(deps, found, log);
  const { manifest, etag } = await readOrEmpty(req.manifest, deps.io);
  const current = manifest.channels[channel];
  const entry: ChannelEntry = {
    project: req.project,
    revision: found.revision,
    treeDigest: found.treeDigest,
    url: found.objectUrl ?? found.url,
    sha256: found.sha256,
    size: found.size,
    taskId: found.taskId,
    promotedAt: (deps.now?.() ?? new Date()).toISOString(),
    promotedBy: req.promotedBy ?? defaultPromoter(),
  };
  if (current) entry.previous = withoutPrevious(current);
  const next: Manifest = { version: 1, channels: { ...manifest.channels, [channel]: entry } };
  await writeManifest(req.manifest, next, deps.io, { ifMatch: etag });
  log.info('promote.done', {
    channel,
    manifest: describeLocation(req.manifest),
    revision: entry.revision,
    sha256: entry.sha256,
    previous: entry.previous?.revision,
  });
  const out: PromoteResult = { channel, manifest: describeLocation(req.manifest), entry };
  if (entry.previous) out.previous = entry.previous;
  return out;
}

/** Restore a channel's `previous` entry; the entry it replaces becomes the new `previous`. */
export async function rollback(
  deps: { io: ManifestIO; log?: Logger; now?: () => Date },
  req: { channel: string; manifest: ManifestLocation; promotedBy?: string },
): Promise<PromoteResult> {
  const channel = checkChannel(req.channel);
  checkWritable(req.manifest);
  const where = describeLocation(req.manifest);
  const r = await readManifest(req.manifest, deps.io);
  if (r.status !== 'ok') throw new ArchiveError('not-found', `no manifest at ${where}`);
  const current = r.manifest.channels[channel];
  if (!current) throw new ArchiveError('not-found', `channel ${channel} is not in ${where}`);
  if (!current.previous) {
    throw new ArchiveError(
      'not-found',
      `channel ${channel} in ${where} has no previous entry to roll back to`,
    );
  }
  const entry: ChannelEntry = {
    ...current.previous,
    promotedAt: (deps.now?.() ?? new Date()).toISOString(),
    promotedBy: req.promotedBy ?? defaultPromoter(),
    previous: withoutPrevious(current),
  };
  const next: Manifest = { version: 1, channels: { ...r.manifest.channels, [channel]: entry } };
  await writeManifest(req.manifest, next, deps.io, { ifMatch: r.etag });
  (deps.log ?? silentLogger).info('promote.rollback', {
    channel,
    manifest: where,
    revision: entry.revision,
    replaced: current.revision,
  });
  return { channel, manifest: where, entry, previous: entry.previous! };
}
