// What an archive is, as the decision task records it, and the one reader of "which archive does
// this task expect".
//
// The decision task writes the archive's facts in two places, both with archiveFacts():
//   - the archive task: `extra.index.data` (the data of every index entry the task's routes make);
//   - each downstream task: `extra.mozharness` (plus the archive's task id).
// Everything that later needs them (actions re-planning a push, local replay, lookups that read
// an index entry's data) reads them back through expectedArchive() or indexedArchive(), never from
// a payload's env or mounts.
import type { TaskDefinition } from '../taskcluster/types.js';
import { DEFAULT_ARCHIVE_ARTIFACT } from './artifacts.js';

const SHA256 = /^[0-9a-f]{64}$/;

/** The facts of one archive that consumers check it against. */
export interface ArchiveFacts {
  /** sha256 of the archive artifact (the tar.gz). */
  sha256: string;
  /** Content digest of the tree (the cache key). */
  treeDigest?: string;
  /** Bytes of the archive artifact. */
  size?: number;
  formatVersion?: number;
  artifactName?: string;
  /** The zip of the same tree, when the archive task publishes one. */
  zip?: ZipFacts;
}

export interface ZipFacts {
  sha256: string;
  size?: number;
  artifactName?: string;
}

/** What a task expects of the archive it depends on (or, for the archive task, will make). */
export interface ExpectedArchive extends ArchiveFacts {
  /** The task that made (or makes) the archive, when the task depends on one. */
  taskId?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The archive facts in an object (index entry data, extra.mozharness), or undefined. */
export function readArchiveFacts(data: unknown): ArchiveFacts | undefined {
  if (!isObject(data) || typeof data.sha256 !== 'string' || !SHA256.test(data.sha256)) {
    return undefined;
  }
  const out: ArchiveFacts = { sha256: data.sha256 };
  if (typeof data.treeDigest === 'string' && SHA256.test(data.treeDigest)) {
    out.treeDigest = data.treeDigest;
  }
  if (typeof data.size === 'number' && Number.isSafeInteger(data.size) && data.size >= 0) {
    out.size = data.size;
  }
  if (typeof data.formatVersion === 'number') out.formatVersion = data.formatVersion;
  if (typeof data.artifactName === 'string' && data.artifactName) {
    out.artifactName = data.artifactName;
  }
  const zip = data.zip;
  if (isObject(zip) && typeof zip.sha256 === 'string' && SHA256.test(zip.sha256)) {
    out.zip = { sha256: zip.sha256 };
    if (typeof zip.size === 'number' && Number.isSafeInteger(zip.size) && zip.size >= 0) {
      out.zip.size = zip.size;
    }
    if (typeof zip.artifactName === 'string' && zip.artifactName) {
      out.zip.artifactName = zip.artifactName;
    }
  }
  return out;
}

/**
 * The archive file a downstream task fetches: the zip when the archive task publishes one (as
 * Firefox's test scripts expect), else the tar.gz.
 */
export function fetchedArchive(facts: ArchiveFacts): {
  format: 'zip' | 'tar.gz';
  artifactName: string;
  sha256: string;
} {
  if (facts.zip?.artifactName) {
    return { format: 'zip', artifactName: facts.zip.artifactName, sha256: facts.zip.sha256 };
  }
  return {
    format: 'tar.gz',
    artifactName: facts.artifactName ?? DEFAULT_ARCHIVE_ARTIFACT,
    sha256: facts.sha256,
  };
}

/** The archive an index entry's data describes (undefined when it carries no valid sha256). */
export function indexedArchive(
  data: unknown,
): (Required<Pick<ArchiveFacts, 'artifactName'>> & ArchiveFacts) | undefined {
  const f = readArchiveFacts(data);
  return f ? { ...f, artifactName: f.artifactName ?? DEFAULT_ARCHIVE_ARTIFACT } : undefined;
}

/**
 * Which archive a task expects: a downstream task's `extra.mozharness`, else an archive task's
 * `extra.index.data`. Undefined for a task that involves no archive.
 */
export function expectedArchive(task: Pick<TaskDefinition, 'extra'>): ExpectedArchive | undefined {
  const extra = task.extra;
  if (!isObject(extra)) return undefined;
  const m = extra.mozharness;
  const downstream = readArchiveFacts(m);
  if (downstream) {
    const taskId = (m as { archiveTaskId?: unknown }).archiveTaskId;
    return { ...downstream, ...(typeof taskId === 'string' && taskId ? { taskId } : {}) };
  }
  const index = extra.index;
  return isObject(index) ? readArchiveFacts(index.data) : undefined;
}

/** `extra.mozharness` of a downstream task (read back by expectedArchive()). */
export function downstreamExpectation(
  archiveTaskId: string,
  facts: ArchiveFacts,
  reused: boolean,
): Record<string, unknown> {
  return {
    archiveTaskId,
    sha256: facts.sha256,
    ...(facts.treeDigest ? { treeDigest: facts.treeDigest } : {}),
    ...(facts.zip ? { zip: { sha256: facts.zip.sha256 } } : {}),
    reused,
  };
}
