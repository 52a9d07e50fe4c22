// The decision task: every phase in order, each result kept so the CLI (`graph`), the tests and
// the benchmark can inspect it.
//   parameters → load (full graph) → target → digest → optimize → task ids → resolve → limits
//   → submit → artifacts
import fs from 'node:fs/promises';
import path from 'node:path';
import { renderActionsJson, tcymlHash } from '../actions/registry.js';
import { fromNow, type IndexClient, type QueueClient } from '../taskcluster/client.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { EMPTY_ACTIONS, writeDecisionArtifacts } from './artifacts.js';
import { ARCHIVE_LABEL, pushIndexNamespaces } from '../contract/index.js';
import { loadGraphConfig, loadKinds, type GraphConfig, type Kinds } from './config.js';
import { computeHarnessDigest, type Archiver, type HarnessDigest } from './digest.js';
import { graphToJson, loadFullGraph, selectTargetTasks, type TaskGraph } from './graph.js';
import { checkLimits } from './limits.js';
import { optimizeGraph, type OptimizeResult, type Replacement } from './optimize.js';
import { dumpParameters, pushFacts, type Parameters } from './parameters.js';
import { resolvedToJson, resolveTaskGraph, type ResolvedGraph } from './resolve.js';
import { runnableJobs } from './runnable.js';
import { submitTaskGraph, type SubmitReport } from './submit.js';
import { assignTaskIds } from './taskids.js';

export interface DecisionOptions {
  params: Parameters;
  /** The in-tree `taskcluster/` directory (config.yml, kinds/). */
  root?: string;
  /** Already-loaded configuration (benchmarks, tests); otherwise read from `root`. */
  config?: GraphConfig;
  kinds?: Kinds;
  /** The checkout holding the harness subdir; required unless `digest` is given. */
  checkout?: string;
  digest?: HarnessDigest;
  archiver?: Archiver;
  /** Anchor of every timestamp; default: the decision task's `created` from the queue, else the push date. */
  created?: Date;
  queue?: QueueClient;
  index?: IndexClient;
  /** Write artifacts but submit nothing (default when no queue is given). */
  dryRun?: boolean;
  /** Where to write artifacts; nothing is written when undefined. */
  out?: string;
  concurrency?: number;
  log?: Logger;
  now?: () => Date;
  /**
   * The text of the revision's .taskcluster.yml: actions.json offers the in-tree action hooks named
   * after its hash. Default: `<checkout>/.taskcluster.yml` when it exists; without one,
   * actions.json is the valid empty document.
   */
  tcyml?: string;
}

export interface DecisionResult {
  params: Parameters;
  config: GraphConfig;
  full: TaskGraph;
  target: TaskGraph;
  digest?: HarnessDigest;
  created: Date;
  optimized: OptimizeResult;
  labelToTaskId: Record<string, string>;
  resolved: ResolvedGraph;
  submitted?: SubmitReport;
  /** Per-push index entries inserted for a reused archive. */
  indexed: string[];
  artifacts: string[];
}

export interface PhaseTiming {
  phase: string;
  ms: number;
}

async function anchor(o: DecisionOptions, log: Logger): Promise<Date> {
  if (o.created) return o.created;
  if (o.queue) {
    try {
      const t = await o.queue.task(o.params.decision_task_id);
      return new Date(t.created);
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code !== 404) throw e;
      log.warn('decision.no-decision-task', {
        taskId: o.params.decision_task_id,
        note: 'decision task not in the queue; anchoring timestamps to now',
      });
      return (o.now ?? (() => new Date()))();
    }
  }
  return new Date(o.params.pushdate * 1000);
}

async function actionsJson(o: DecisionOptions, config: GraphConfig): Promise<unknown> {
  let tcyml = o.tcyml;
  if (tcyml === undefined && o.checkout) {
    try {
      tcyml = await fs.readFile(path.join(o.checkout, '.taskcluster.yml'), 'utf8');
    } catch {
      tcyml = undefined;
    }
  }
  if (tcyml === undefined) return EMPTY_ACTIONS;
  return renderActionsJson(o.params as unknown as Record<string, unknown>, {
    decisionTaskId: o.params.decision_task_id,
    tcymlHash: tcymlHash(tcyml),
    trustDomain: config.trustDomain,
  });
}

/** Phases up to the target graph (what `graph full|target` shows). */
export async function loadGraphs(o: {
  params: Parameters;
  root?: string;
  config?: GraphConfig;
  kinds?: Kinds;
}): Promise<{ config: GraphConfig; kinds: Kinds; full: TaskGraph; target: TaskGraph }> {
  const root = o.root ?? 'taskcluster';
  const config = o.config ?? (await loadGraphConfig(root));
  const kinds = o.kinds ?? (await loadKinds(root, config));
  const full = loadFullGraph(kinds);
  const target = selectTargetTasks(full, o.params);
  return { config, kinds, full, target };
}

/** The harness's tree digest and predicted archive, from the checkout unless given. */
async function harnessDigest(
  o: DecisionOptions,
  kinds: Kinds,
  log: Logger,
): Promise<HarnessDigest> {
  let digest = o.digest;
  if (!digest) {
    if (!o.checkout) {
      throw new ArchiveError(
        'usage',
        'a checkout (--checkout) is needed to compute the harness digest',
      );
    }
    digest = await computeHarnessDigest(
      o.checkout,
      o.params.head_rev,
      kinds.archive.subdir,
      o.archiver,
    );
  }
  log.info('decision.digest', {
    treeDigest: digest.treeDigest,
    sha256: digest.sha256,
    size: digest.size,
  });
  return digest;
}

/** Give a reused archive this push's index entries (what the archive task's routes would). */
async function indexReusedArchive(
  o: DecisionOptions,
  config: GraphConfig,
  reuse: Replacement,
  log: Logger,
): Promise<string[]> {
  if (!o.index) throw new ArchiveError('usage', 'indexing a reused archive needs an index client');
  const params = o.params;
  const indexed: string[] = [];
  for (const ns of pushIndexNamespaces(config.indexPrefix, pushFacts(params))) {
    try {
      await o.index.insertTask(ns, {
        taskId: reuse.taskId,
        rank: params.pushdate,
        data: { ...reuse.data, reusedByDecisionTask: params.decision_task_id },
        expires: reuse.artifactExpires,
      });
      indexed.push(ns);
    } catch (e) {
      throw new ArchiveError(
        'unavailable',
        `could not index the reused archive ${reuse.taskId} at ${ns}: ${errorMessage(e)}`,
      );
    }
  }
  log.info('decision.indexed-reuse', { taskId: reuse.taskId, namespaces: indexed });
  return indexed;
}

/** Write the decision task's artifacts into `out`. */
async function writeArtifacts(
  o: DecisionOptions,
  out: string,
  r: Omit<DecisionResult, 'submitted' | 'indexed' | 'artifacts'> & { digest: HarnessDigest },
): Promise<string[]> {
  const { params, config, full, target, digest, optimized, labelToTaskId, resolved } = r;
  return writeDecisionArtifacts(path.resolve(out), {
    'parameters.yml': dumpParameters(params),
    'full-task-graph.json': graphToJson(full),
    'target-tasks.json': target.order,
    'task-graph.json': resolvedToJson(resolved),
    'label-to-taskid.json': labelToTaskId,
    'optimizations.json': {
      treeDigest: digest.treeDigest,
      sha256: digest.sha256,
      level: params.level,
      records: optimized.records,
    },
    'actions.json': await actionsJson(o, config),
    'runnable-jobs.json': runnableJobs(full, config),
  });
}

export async function runDecision(
  o: DecisionOptions,
  onPhase?: (t: PhaseTiming) => void,
): Promise<DecisionResult> {
  const log = o.log ?? silentLogger;
  let t0 = performance.now();
  const phase = (name: string) => {
    const t = performance.now();
    onPhase?.({ phase: name, ms: t - t0 });
    t0 = t;
  };
  const params = o.params;
  const { config, kinds, full, target } = await loadGraphs(o);
  phase('load');

  const digest = await harnessDigest(o, kinds, log);
  phase('digest');

  const created = await anchor(o, log);
  const requiredUntil = fromNow(config.deadlineAfter, created);
  const optimized = await optimizeGraph(target, {
    config,
    params,
    digest,
    requiredUntil,
    index: o.index,
    queue: o.queue,
    log,
  });
  phase('optimize');

  const labelToTaskId = assignTaskIds(target, params, optimized.replaced);
  const resolved = resolveTaskGraph(optimized.graph, {
    config,
    params,
    digest,
    labelToTaskId,
    replaced: optimized.replaced,
    created,
  });
  const dryRun = o.dryRun ?? !o.queue;
  checkLimits(resolved, dryRun ? undefined : (o.now ?? (() => new Date()))());
  phase('resolve');

  let submitted: SubmitReport | undefined;
  let indexed: string[] = [];
  if (!dryRun) {
    if (!o.queue) throw new ArchiveError('usage', 'submitting needs a queue client (--root-url)');
    submitted = await submitTaskGraph(resolved, o.queue, { concurrency: o.concurrency, log });
    const reuse = optimized.replaced[ARCHIVE_LABEL];
    if (reuse) indexed = await indexReusedArchive(o, config, reuse, log);
  }
  phase('submit');

  const result = { params, config, full, target, digest, created, optimized, labelToTaskId };
  const artifacts = o.out ? await writeArtifacts(o, o.out, { ...result, resolved }) : [];
  phase('artifacts');

  return { ...result, resolved, submitted, indexed, artifacts };
}
