// Finding an archive in the Taskcluster Index: by full or short revision, by content digest, or the
// latest one of a project, in the namespaces the archive contract (src/contract) defines and the
// decision task writes. The archive's sha256/size/revision come from the task's metadata artifact,
// the object URL from the archive's reference artifact, whose name the index entry's data gives.
import type { IndexClient, QueueClient } from '../taskcluster/client.js';
import { pages } from '../taskcluster/listing.js';
import type { IndexedTask } from '../taskcluster/types.js';
import {
  archiveArtifactOf,
  cacheNamespace,
  DEFAULT_INDEX_PREFIX,
  latestNamespace,
  METADATA_ARTIFACT,
  readableLevels,
  revisionNamespace,
  revisionParentNamespace,
} from '../contract/index.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { getJson, type HostCheck } from '../util/http.js';

export const PROJECT_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const REVISION_RE = /^[0-9a-f]{12,40}$/;
export const FULL_REVISION_RE = /^[0-9a-f]{40}$/;
export const DIGEST_RE = /^[0-9a-f]{64}$/;
const PREFIX_RE = /^([a-zA-Z0-9_!~*'()%-]+\.)*[a-zA-Z0-9_!~*'()%-]+$/;

/** The parts of the Index client a lookup uses. */
export type IndexLookup = Pick<IndexClient, 'findTask' | 'listNamespaces'>;
/** The parts of the Queue client a lookup uses. */
export type QueueLookup = Pick<QueueClient, 'buildUrl' | 'getLatestArtifact' | 'status'>;

export interface FindClients {
  index: IndexLookup;
  queue: QueueLookup;
  /** Hosts the lookup may contact besides the Taskcluster root URL (the S3 bucket). */
  allowUrl?: HostCheck;
  timeoutMs?: number;
}

export interface FindQuery {
  project: string;
  /** Full or ≥ 12 hex revision. */
  revision?: string;
  /** Content (tree) digest, 64 hex. */
  digest?: string;
  latest?: boolean;
  prefix?: string;
  /**
   * The reader's trust level for digest lookups: caches of this level and above are read, most
   * trusted first (default 1: every level).
   */
  level?: number;
}

/** An archive found in the index, with what a consumer needs to fetch and verify it. */
export interface FoundArchive {
  taskId: string;
  /** The queue artifact URL (stable; 303-redirects to the object). */
  url: string;
  /** The object URL the artifact redirects to (S3), when known. */
  objectUrl?: string;
  metadataUrl: string;
  sha256: string;
  size: number;
  /** The revision looked up (or, for digest/latest lookups, the one the archive was made from). */
  revision: string;
  /** The revision the archive was made from (differs when a push reused an identical tree). */
  archiveRevision: string;
  treeDigest: string;
  subdir?: string;
  repository?: string;
  format?: string;
  /** When the archive was made (metadata createdAt). */
  created?: string;
  /** When the index entry expires. */
  expires: string;
  namespace: string;
}

/** The archive metadata document (the METADATA_ARTIFACT of an archive task). */
export interface MetadataDocument {
  sha256: string;
  size: number;
  treeDigest: string;
  revision: string;
  subdir?: string;
  repository?: string;
  format?: string;
  formatVersion?: number;
  files?: number;
  createdAt?: string;
}

export function checkProject(project: string): string {
  if (typeof project !== 'string' || !PROJECT_RE.test(project)) {
    throw new ArchiveError(
      'usage',
      `invalid project ${JSON.stringify(project)}: letters, digits, '-' and '_' only`,
    );
  }
  return project;
}

/** Lower-cased revision, or a usage error saying what is wrong with it. */
export function checkRevision(revision: string): string {
  const rev = String(revision ?? '')
    .trim()
    .toLowerCase();
  if (!/^[0-9a-f]+$/.test(rev)) {
    throw new ArchiveError(
      'usage',
      `invalid revision ${JSON.stringify(revision)}: must be hexadecimal (12 to 40 characters)`,
    );
  }
  if (rev.length < 12 || rev.length > 40) {
    throw new ArchiveError(
      'usage',
      `invalid revision ${JSON.stringify(revision)}: ${rev.length} hex characters, need 12 to 40`,
    );
  }
  return rev;
}

export function checkDigest(digest: string): string {
  const d = String(digest ?? '')
    .trim()
    .toLowerCase();
  if (!DIGEST_RE.test(d)) {
    throw new ArchiveError(
      'usage',
      `invalid tree digest ${JSON.stringify(digest)}: must be 64 hexadecimal characters`,
    );
  }
  return d;
}

export function checkPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) {
    throw new ArchiveError('usage', `invalid index prefix ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

function statusOf(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** `index.findTask`, with 404 → undefined and other failures → ArchiveError('unavailable'). */
export async function findIndexed(
  index: IndexLookup,
  namespace: string,
): Promise<IndexedTask | undefined> {
  try {
    return await index.findTask(namespace);
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw new ArchiveError(
      'unavailable',
      `index lookup of ${namespace} failed: ${errorMessage(e)}`,
    );
  }
}

/**
 * Full revisions in the index that start with `short` (listNamespaces of `…revision`, every page).
 */
export async function matchShortRevision(
  index: IndexLookup,
  prefix: string,
  project: string,
  short: string,
): Promise<string[]> {
  const parent = revisionParentNamespace(prefix, project);
  const found: string[] = [];
  try {
    for await (const page of pages((q) => index.listNamespaces(parent, { limit: 1000, ...q }))) {
      for (const ns of page.namespaces ?? []) {
        if (FULL_REVISION_RE.test(ns.name) && ns.name.startsWith(short)) found.push(ns.name);
      }
    }
  } catch (e) {
    if (statusOf(e) === 404) return [];
    throw new ArchiveError('unavailable', `listing ${parent} failed: ${errorMessage(e)}`);
  }
  return [...new Set(found)].sort();
}

/** The object URL a reference artifact points at (the queue answers 303 with {url}). */
export async function artifactObjectUrl(
  queue: QueueLookup,
  taskId: string,
  name: string,
): Promise<string | undefined> {
  try {
    const res = await queue.getLatestArtifact(taskId, name);
    return typeof res?.url === 'string' ? res.url : undefined;
  } catch (e) {
    const status = statusOf(e);
    if (status === 404 || status === 424) return undefined;
    throw new ArchiveError(
      'unavailable',
      `queue lookup of ${name} of task ${taskId} failed: ${errorMessage(e)}`,
    );
  }
}

/** Read and check the metadata document of an archive task. */
export async function readMetadata(
  clients: FindClients,
  taskId: string,
): Promise<{ metadata: MetadataDocument; metadataUrl: string }> {
  const artifactUrl = clients.queue.buildUrl(
    clients.queue.getLatestArtifact,
    taskId,
    METADATA_ARTIFACT,
  );
  const objectUrl = await artifactObjectUrl(clients.queue, taskId, METADATA_ARTIFACT);
  if (!objectUrl) {
    throw new ArchiveError('not-found', `task ${taskId} has no ${METADATA_ARTIFACT} artifact`);
  }
  const doc = await getJson<MetadataDocument>(objectUrl, {
    allowUrl: clients.allowUrl,
    timeoutMs: clients.timeoutMs,
  });
  if (
    !doc ||
    typeof doc !== 'object' ||
    typeof doc.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(doc.sha256) ||
    typeof doc.size !== 'number' ||
    typeof doc.revision !== 'string' ||
    typeof doc.treeDigest !== 'string'
  ) {
    throw new ArchiveError(
      'corrupt',
      `${METADATA_ARTIFACT} of task ${taskId} lacks sha256/size/revision/treeDigest`,
    );
  }
  return { metadata: doc, metadataUrl: artifactUrl };
}

/**
 * Everything known about the archive made by `taskId`, indexed at `namespace`. The archive
 * artifact is the one the index entry's data names (the default when it names none).
 */
export async function describeArchive(
  clients: FindClients,
  entry: { taskId: string; namespace: string; expires: string; data?: unknown },
): Promise<FoundArchive> {
  const { taskId } = entry;
  const artifact = archiveArtifactOf(entry.data);
  const [{ metadata, metadataUrl }, objectUrl] = await Promise.all([
    readMetadata(clients, taskId),
    artifactObjectUrl(clients.queue, taskId, artifact),
  ]);
  if (!objectUrl) {
    throw new ArchiveError('not-found', `task ${taskId} has no ${artifact} artifact`);
  }
  const out: FoundArchive = {
    taskId,
    url: clients.queue.buildUrl(clients.queue.getLatestArtifact, taskId, artifact),
    objectUrl,
    metadataUrl,
    sha256: metadata.sha256,
    size: metadata.size,
    revision: metadata.revision,
    archiveRevision: metadata.revision,
    treeDigest: metadata.treeDigest,
    expires: entry.expires,
    namespace: entry.namespace,
  };
  if (metadata.subdir) out.subdir = metadata.subdir;
  if (metadata.repository) out.repository = metadata.repository;
  if (metadata.format) out.format = metadata.format;
  if (metadata.createdAt) out.created = metadata.createdAt;
  return out;
}

/** The index entry for a query, without reading artifacts. Not found → ArchiveError('not-found'). */
export async function findIndexEntry(
  index: IndexLookup,
  q: FindQuery,
): Promise<{ entry: IndexedTask; namespace: string; revision?: string }> {
  const project = checkProject(q.project);
  const prefix = checkPrefix(q.prefix ?? DEFAULT_INDEX_PREFIX);
  const modes = [q.revision !== undefined, q.digest !== undefined, !!q.latest].filter(Boolean);
  if (modes.length !== 1) {
    throw new ArchiveError('usage', 'give exactly one of a revision, a digest, or latest');
  }
  if (q.revision !== undefined) {
    let rev = checkRevision(q.revision);
    if (rev.length < 40) {
      const matches = await matchShortRevision(index, prefix, project, rev);
      if (matches.length > 1) {
        throw new ArchiveError(
          'usage',
          `revision ${rev} is ambiguous in ${project}: it matches ${matches.join(', ')}`,
          { matches },
        );
      }
      if (!matches.length) {
        throw new ArchiveError(
          'not-found',
          `no archive of ${project} revision ${rev} in the index (${revisionParentNamespace(prefix, project)})`,
        );
      }
      rev = matches[0]!;
    }
    const namespace = revisionNamespace(prefix, project, rev);
    const entry = await findIndexed(index, namespace);
    if (!entry) {
      throw new ArchiveError(
        'not-found',
        `no archive of ${project} revision ${rev} in the index (${namespace})`,
      );
    }
    return { entry, namespace, revision: rev };
  }
  if (q.digest !== undefined) {
    const digest = checkDigest(q.digest);
    const levels = readableLevels(q.level ?? 1);
    for (const level of levels) {
      const namespace = cacheNamespace(prefix, level, digest);
      const entry = await findIndexed(index, namespace);
      if (entry) return { entry, namespace };
    }
    throw new ArchiveError(
      'not-found',
      `no archive with tree digest ${digest} in the index (levels ${levels.join(', ')})`,
    );
  }
  const namespace = latestNamespace(prefix, project);
  const entry = await findIndexed(index, namespace);
  if (!entry) {
    throw new ArchiveError(
      'not-found',
      `no latest archive of ${project} in the index (${namespace})`,
    );
  }
  return { entry, namespace };
}

/**
 * Find an archive by revision (full or ≥ 12 hex), digest or latest, and describe it: task id,
 * artifact URL, object URL, sha256, size, revision, tree digest, created, expires.
 */
export async function findArchive(clients: FindClients, q: FindQuery): Promise<FoundArchive> {
  const { entry, namespace, revision } = await findIndexEntry(clients.index, q);
  const found = await describeArchive(clients, {
    taskId: entry.taskId,
    namespace,
    expires: entry.expires,
    data: entry.data,
  });
  // A push whose harness was unchanged is indexed under its own revision but points at the task
  // that archived an identical tree for an earlier revision: report both.
  if (revision) found.revision = revision;
  return found;
}
