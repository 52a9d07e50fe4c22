// Phase 4: optimisation. The archive task is replaced by an already-built archive of the same
// tree when the index has one at this trust level or a higher one, the task completed, and its
// artifact outlives every dependent's deadline. A lower level's cache is never read: a try push
// can write level-1 caches, and a level-3 graph must not consume them. Every decision, with its
// reason, goes to optimizations.json.
import type { IndexClient, QueueClient } from '../taskcluster/client.js';
import { latestArtifactExpiry, pages } from '../taskcluster/listing.js';
import type { IndexedTask } from '../taskcluster/types.js';
import { errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { ARCHIVE_LABEL, indexedArchive, readableCacheNamespaces } from '../contract/index.js';
import type { GraphConfig } from './config.js';
import type { HarnessDigest } from './digest.js';
import type { TaskGraph } from './graph.js';
import type { Parameters } from './parameters.js';

export interface Replacement {
  taskId: string;
  namespace: string;
  sha256: string;
  size?: number;
  /** The index entry's data, copied to the per-push entries the decision task inserts. */
  data: Record<string, unknown>;
  indexExpires: string;
  taskExpires: string;
  artifactExpires: string;
}

export interface OptimizationRecord {
  label: string;
  kind: string;
  decision: 'replaced' | 'scheduled';
  result: 'hit' | 'miss' | 'not-looked-up' | 'not-optimizable';
  treeDigest?: string;
  namespacesTried: string[];
  /** Each namespace found, and why it was or was not used. */
  candidates?: Array<{ namespace: string; taskId: string; usable: boolean; reason: string }>;
  reason: string;
  replacement?: Replacement;
}

export interface OptimizeResult {
  /** The graph that will be submitted (replaced tasks removed). */
  graph: TaskGraph;
  replaced: Record<string, Replacement>;
  records: OptimizationRecord[];
}

export interface OptimizeOptions {
  config: GraphConfig;
  params: Parameters;
  digest?: HarnessDigest;
  /** The latest deadline of any task that would depend on the archive. */
  requiredUntil: Date;
  index?: IndexClient;
  queue?: QueueClient;
  log?: Logger;
}

async function findAll(index: IndexClient, indexes: string[]): Promise<IndexedTask[]> {
  const found: IndexedTask[] = [];
  for await (const page of pages((q) => index.findTasksAtIndex({ indexes }, q))) {
    found.push(...(page.tasks ?? []));
  }
  return found;
}

async function checkCandidate(
  entry: IndexedTask,
  o: OptimizeOptions,
): Promise<{ usable: boolean; reason: string; replacement?: Replacement }> {
  const until = o.requiredUntil.getTime();
  const indexed = indexedArchive(entry.data);
  if (!indexed) return { usable: false, reason: 'index entry carries no sha256 in its data' };
  const { sha256 } = indexed;
  if (!o.queue) return { usable: false, reason: 'no queue client to check the task' };
  let status;
  try {
    status = (await o.queue.status(entry.taskId)).status;
  } catch (e) {
    return { usable: false, reason: `queue.status failed: ${errorMessage(e)}` };
  }
  if (status.state !== 'completed') {
    return { usable: false, reason: `task is ${status.state}, not completed` };
  }
  if (Date.parse(status.expires) <= until) {
    return {
      usable: false,
      reason: `task expires ${status.expires}, before dependents' deadline ${o.requiredUntil.toISOString()}`,
    };
  }
  let artifactExpires: string | undefined;
  try {
    artifactExpires = await latestArtifactExpiry(
      o.queue,
      entry.taskId,
      o.config.archive.artifactName,
    );
  } catch (e) {
    return { usable: false, reason: `listing artifacts failed: ${errorMessage(e)}` };
  }
  if (!artifactExpires) {
    return { usable: false, reason: `task has no artifact ${o.config.archive.artifactName}` };
  }
  if (Date.parse(artifactExpires) <= until) {
    return {
      usable: false,
      reason: `artifact expires ${artifactExpires}, before dependents' deadline ${o.requiredUntil.toISOString()}`,
    };
  }
  return {
    usable: true,
    reason: 'completed, artifact outlives every dependent',
    replacement: {
      taskId: entry.taskId,
      namespace: entry.namespace,
      sha256,
      ...(indexed.size !== undefined ? { size: indexed.size } : {}),
      data: entry.data,
      indexExpires: entry.expires,
      taskExpires: status.expires,
      artifactExpires,
    },
  };
}

/** The archive task's record: looked up by tree digest, most trusted level first. */
async function optimizeArchive(
  label: string,
  kind: string,
  o: OptimizeOptions,
  log: Logger,
): Promise<OptimizationRecord> {
  if (!o.digest) {
    return {
      label,
      kind,
      decision: 'scheduled',
      result: 'not-looked-up',
      namespacesTried: [],
      reason: 'no tree digest (no checkout)',
    };
  }
  const namespaces = readableCacheNamespaces(
    o.config.indexPrefix,
    o.params.level,
    o.digest.treeDigest,
  );
  const rec: OptimizationRecord = {
    label,
    kind,
    decision: 'scheduled',
    result: 'miss',
    treeDigest: o.digest.treeDigest,
    namespacesTried: namespaces,
    reason: '',
  };
  if (!o.index) {
    rec.result = 'not-looked-up';
    rec.reason = 'no index client (run without --root-url): nothing looked up';
    return rec;
  }
  let found: IndexedTask[];
  try {
    found = await findAll(o.index, namespaces);
  } catch (e) {
    rec.reason = `index lookup failed, building a new archive: ${errorMessage(e)}`;
    log.warn('optimize.index-failed', { error: errorMessage(e) });
    return rec;
  }
  const candidates: NonNullable<OptimizationRecord['candidates']> = (rec.candidates = []);
  // most trusted first, whatever order the index answered in
  for (const ns of namespaces) {
    const entry = found.find((f) => f.namespace === ns);
    if (!entry) continue;
    const c = await checkCandidate(entry, o);
    candidates.push({ namespace: ns, taskId: entry.taskId, usable: c.usable, reason: c.reason });
    if (c.usable && c.replacement) {
      rec.decision = 'replaced';
      rec.result = 'hit';
      rec.replacement = c.replacement;
      rec.reason = `replaced by ${entry.taskId} from ${ns}: ${c.reason}`;
      break;
    }
  }
  if (rec.result !== 'hit') {
    rec.reason = candidates.length
      ? `no usable indexed archive: ${candidates.map((c) => `${c.namespace}: ${c.reason}`).join('; ')}`
      : 'no indexed archive of this tree at this level or above';
  }
  log.info('optimize.archive', { result: rec.result, reason: rec.reason });
  return rec;
}

export async function optimizeGraph(
  target: TaskGraph,
  o: OptimizeOptions,
): Promise<OptimizeResult> {
  const log = o.log ?? silentLogger;
  const records: OptimizationRecord[] = [];
  const replaced: Record<string, Replacement> = {};
  for (const label of target.order) {
    const t = target.tasks[label]!;
    if (label !== ARCHIVE_LABEL) {
      records.push({
        label,
        kind: t.kind,
        decision: 'scheduled',
        result: 'not-optimizable',
        namespacesTried: [],
        reason: 'downstream tasks always run',
      });
      continue;
    }
    const rec = await optimizeArchive(label, t.kind, o, log);
    if (rec.replacement) replaced[label] = rec.replacement;
    records.push(rec);
  }
  const order = target.order.filter((l) => !replaced[l]);
  const tasks: TaskGraph['tasks'] = {};
  for (const l of order) tasks[l] = target.tasks[l]!;
  return { graph: { order, tasks }, replaced, records };
}
