// Phase 6a: resolve the optimised graph into real task definitions: task ids for dependencies,
// the archive's artifact URL and expected sha256 in every downstream payload (docker-worker env or
// generic-worker mount), routes, Treeherder metadata, timestamps anchored to the decision task's
// `created`.
//
// A Firefox-sized graph has tens of thousands of tasks, so whatever is the same for many tasks
// (queue ids, source URLs, symbols, artifact URLs, the archive expectation, the Treeherder route)
// is computed once per graph. Objects shared between tasks are frozen: a consumer that edits one
// task's copy fails loudly instead of editing every task.
import { fromNow, queueClient, type QueueClient } from '../taskcluster/client.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import { ArchiveError } from '../util/errors.js';
import { deepFreeze } from '../util/freeze.js';
import {
  ARCHIVE_LABEL,
  BUILD_ARTIFACT,
  cacheNamespace,
  downstreamExpectation,
  fetchedArchive,
  indexRoute,
  readArchiveFacts,
  type ArchiveFacts,
  pushIndexNamespaces,
} from '../contract/index.js';
import type { GraphConfig, WorkerAlias } from './config.js';
import type { HarnessDigest } from './digest.js';
import {
  isArchiveTask,
  type ArchiveGraphTask,
  type DownstreamGraphTask,
  type GraphTask,
  type TaskGraph,
} from './graph.js';
import type { Replacement } from './optimize.js';
import { pushFacts, type Parameters } from './parameters.js';
import {
  payloadBuilder,
  type ArchivePayloadInput,
  type DownstreamPayloadInput,
} from './payloads.js';

export interface ResolvedTask {
  taskId: string;
  label: string;
  kind: string;
  /** dependency name → taskId */
  dependencies: Record<string, string>;
  task: TaskDefinition;
}

export interface ResolvedGraph {
  /** taskIds, parents first */
  order: string[];
  tasks: Record<string, ResolvedTask>;
  /** Tasks outside the graph that graph tasks depend on (a reused archive), with their expiry. */
  external: Record<string, { label: string; expires: string }>;
}

export interface ResolveOptions {
  config: GraphConfig;
  params: Parameters;
  digest: HarnessDigest;
  labelToTaskId: Record<string, string>;
  replaced: Record<string, Replacement>;
  /** The decision task's `created`: every timestamp is derived from it. */
  created: Date;
}

export function treeherderRoute(params: Parameters): string {
  return `tc-treeherder.v2.${params.project}.${params.head_rev}.${params.pushlog_id}`;
}

export function schedulerId(config: GraphConfig, params: Parameters): string {
  return `${config.trustDomain}-level-${params.level}`;
}

export function taskQueueId(w: WorkerAlias, params: Parameters): string {
  return w.taskQueueId.replace(/\{level\}/g, params.level);
}

function sourceUrl(params: Parameters, file: string): string {
  if (params.repository_type === 'hg')
    return `${params.head_repository}/file/${params.head_rev}/${file}`;
  if (/^https?:\/\/github\.com\//.test(params.head_repository)) {
    return `${params.head_repository.replace(/\.git$/, '')}/blob/${params.head_rev}/${file}`;
  }
  return params.head_repository;
}

/** 'M(1)' → {groupSymbol: 'M', symbol: '1'}; 'B' → {symbol: 'B'} */
export function splitSymbol(symbol: string): { symbol: string; groupSymbol?: string } {
  const m = /^([^()]+)\(([^()]+)\)$/.exec(symbol);
  return m ? { groupSymbol: m[1]!, symbol: m[2]! } : { symbol };
}

/** The URL downstream tasks download an artifact from (the queue's getLatestArtifact). */
export function artifactUrl(queue: QueueClient, taskId: string, name: string): string {
  return queue.buildUrl(queue.getLatestArtifact, taskId, name);
}

/** `compute(key)`, computed once per key. */
function memo<V>(compute: (key: string) => V): (key: string) => V {
  const cache = new Map<string, V>();
  return (key) => {
    let v = cache.get(key);
    if (v === undefined) cache.set(key, (v = compute(key)));
    return v;
  };
}

/** The fields every task of the graph has, in the order the queue's schema lists them. */
interface CommonFields {
  schedulerId: string;
  projectId: string;
  taskGroupId: string;
  requires: 'all-completed';
  priority: string;
  retries: number;
  created: string;
  deadline: string;
  scopes: string[];
}

/** Everything a task definition is made from that does not depend on the task. */
interface GraphContext {
  o: ResolveOptions;
  graph: TaskGraph;
  common: CommonFields;
  /** Expiry of downstream tasks and their artifacts. */
  expires: string;
  /** The archive task this push builds, or the replacement it reuses. */
  reused: Replacement | undefined;
  /** The zip the archive task publishes, with its predicted sha256 and size. */
  zip: { artifactName: string; sha256: string; size?: number } | undefined;
  /** What downstream tasks expect: the reused archive's own facts, else this push's prediction. */
  archiveFacts: ArchiveFacts;
  /** The one Treeherder route of every downstream task. */
  downstreamRoutes: string[];
  queueIdOf: (alias: string) => string;
  sourceOf: (file: string) => string;
  symbolOf: (symbol: string) => { symbol: string; groupSymbol?: string };
  urlOf: (taskId: string, name: string) => string;
  expectationOf: (archiveTaskId: string) => Record<string, unknown>;
  /** The archive file downstream tasks fetch, as their payload builders see it. */
  archiveOf: (archiveTaskId: string) => DownstreamPayloadInput['archive'];
}

function graphContext(graph: TaskGraph, o: ResolveOptions): GraphContext {
  const { config, params } = o;
  const urlQueue = queueClient({ rootUrl: params.taskcluster_root_url });
  const urls = new Map<string, (taskId: string) => string>();
  const reused = o.replaced[ARCHIVE_LABEL];
  const archiveArtifact = config.archive.artifactName;
  // the zip is predicted and fetched only when the archive task publishes one (config.yml names it)
  const zip =
    config.archive.zipArtifactName && o.digest.zip
      ? { artifactName: config.archive.zipArtifactName, ...o.digest.zip }
      : undefined;
  const archiveFacts: ArchiveFacts = reused
    ? (readArchiveFacts(reused.data) ?? { sha256: reused.sha256 })
    : {
        sha256: o.digest.sha256,
        treeDigest: o.digest.treeDigest,
        artifactName: archiveArtifact,
        ...(zip ? { zip } : {}),
      };
  if (!archiveFacts.treeDigest && o.digest.treeDigest)
    archiveFacts.treeDigest = o.digest.treeDigest;
  if (!archiveFacts.artifactName) archiveFacts.artifactName = archiveArtifact;
  const fetched = fetchedArchive(archiveFacts);
  return {
    o,
    graph,
    common: {
      schedulerId: schedulerId(config, params),
      projectId: config.projectId ?? 'none',
      taskGroupId: params.decision_task_id,
      requires: 'all-completed',
      priority: config.priority,
      retries: 5,
      created: o.created.toISOString(),
      deadline: fromNow(config.deadlineAfter, o.created).toISOString(),
      scopes: Object.freeze([]) as unknown as string[],
    },
    expires: fromNow(config.expiresAfter, o.created).toISOString(),
    reused,
    zip,
    archiveFacts,
    downstreamRoutes: Object.freeze([treeherderRoute(params)]) as unknown as string[],
    queueIdOf: memo((alias) => taskQueueId(config.workers[alias]!, params)),
    sourceOf: memo((file) => sourceUrl(params, file)),
    symbolOf: memo((symbol) => Object.freeze(splitSymbol(symbol))),
    urlOf: (taskId, name) => {
      let of = urls.get(name);
      if (!of) urls.set(name, (of = memo((id) => artifactUrl(urlQueue, id, name))));
      return of(taskId);
    },
    archiveOf: memo((archiveTaskId) => {
      return Object.freeze({
        taskId: archiveTaskId,
        format: fetched.format,
        artifact: fetched.artifactName,
        url: artifactUrl(urlQueue, archiveTaskId, fetched.artifactName),
        sha256: fetched.sha256,
      });
    }),
    expectationOf: memo((archiveTaskId) =>
      deepFreeze(downstreamExpectation(archiveTaskId, archiveFacts, Boolean(reused))),
    ),
  };
}

function archivePayload(
  implementation: string,
  input: ArchivePayloadInput,
): Record<string, unknown> {
  const build = payloadBuilder(implementation).archive;
  if (!build) throw new ArchiveError('internal', `${implementation} builds no archive tasks`);
  return build(input);
}

function downstreamPayload(
  implementation: string,
  input: DownstreamPayloadInput,
): Record<string, unknown> {
  const build = payloadBuilder(implementation).downstream;
  if (!build) throw new ArchiveError('internal', `${implementation} runs no downstream tasks`);
  return build(input);
}

/** The archive task's index data: its facts and the push it was built for. */
function archiveIndexData(c: GraphContext, t: ArchiveGraphTask): Record<string, unknown> {
  const { params, digest, config } = c.o;
  return {
    sha256: digest.sha256,
    size: digest.size,
    treeDigest: digest.treeDigest,
    formatVersion: digest.formatVersion,
    artifactName: config.archive.artifactName,
    ...(c.zip ? { zip: c.zip } : {}),
    repository: params.head_repository,
    revision: params.head_rev,
    subdir: t.spec.subdir,
    project: params.project,
    pushlogId: params.pushlog_id,
    pushdate: params.pushdate,
  };
}

function archiveTask(c: GraphContext, t: ArchiveGraphTask): TaskDefinition {
  const { config, params, digest } = c.o;
  const k = t.spec;
  const worker = config.workers[k.workerAlias]!;
  const archiveExpires = fromNow(
    k.expiresAfter ?? config.archive.expiresAfter,
    c.o.created,
  ).toISOString();
  return {
    taskQueueId: c.queueIdOf(k.workerAlias),
    ...c.common,
    dependencies: [params.decision_task_id],
    routes: [
      ...pushIndexNamespaces(config.indexPrefix, pushFacts(params)).map(indexRoute),
      indexRoute(cacheNamespace(config.indexPrefix, params.level, digest.treeDigest)),
      treeherderRoute(params),
    ],
    expires: archiveExpires,
    payload: archivePayload(worker.implementation, {
      kind: k,
      params,
      treeDigest: digest.treeDigest,
      sha256: digest.sha256,
      ...(c.zip ? { zipSha256: c.zip.sha256 } : {}),
      artifactName: config.archive.artifactName,
    }),
    metadata: {
      name: t.label,
      description: k.description,
      owner: params.owner,
      source: c.sourceOf(t.file),
    },
    tags: {
      kind: t.kind,
      label: t.label,
      createdForUser: params.owner,
      'worker-implementation': worker.implementation,
    },
    extra: {
      index: { rank: params.pushdate, expires: archiveExpires, data: archiveIndexData(c, t) },
      treeherder: {
        ...c.symbolOf(k.treeherder.symbol),
        jobKind: 'build',
        tier: k.treeherder.tier,
        machine: { platform: k.treeherder.platform },
        collection: { opt: true },
      },
      parent: params.decision_task_id,
    },
  };
}

/**
 * The task ids a downstream task waits for. As in taskgraph, a task whose every dependency was
 * replaced by an existing task also waits for the decision task, so nothing runs before the
 * whole graph is submitted.
 */
function downstreamDependencies(
  c: GraphContext,
  t: DownstreamGraphTask,
  deps: Record<string, string>,
): string[] {
  const out: string[] = [];
  let inGraph = false;
  for (const name in deps) {
    const id = deps[name]!;
    if (!out.includes(id)) out.push(id);
    if (c.graph.tasks[t.dependencies[name]!]) inGraph = true;
  }
  const decision = c.o.params.decision_task_id;
  if (!inGraph && !out.includes(decision)) out.push(decision);
  return out.sort();
}

function downstreamTask(
  c: GraphContext,
  t: DownstreamGraphTask,
  deps: Record<string, string>,
): TaskDefinition {
  const { config, params } = c.o;
  const s = t.spec;
  const worker = config.workers[s.workerAlias]!;
  const th = c.symbolOf(s.treeherder.symbol);
  const args: string[] = [];
  for (const cfg of s.mozharness.config) args.push('--config-file', cfg);
  for (const a of s.mozharness.extraArgs) args.push(a);
  const env: Record<string, string> = {
    MOZ_SOURCE_REPO: params.head_repository,
    MOZ_SOURCE_CHANGESET: params.head_rev,
    ...s.env,
  };
  if (deps.build) env.MOZ_BUILD_URL = c.urlOf(deps.build, BUILD_ARTIFACT);
  const archiveTaskId = deps.mozharness!;
  const payload = downstreamPayload(worker.implementation, {
    spec: s,
    worker,
    env,
    args,
    archive: c.archiveOf(archiveTaskId),
    expires: c.expires,
  });
  const groupName = th.groupSymbol ? config.treeherderGroupNames[th.groupSymbol] : undefined;
  return {
    taskQueueId: c.queueIdOf(s.workerAlias),
    ...c.common,
    dependencies: downstreamDependencies(c, t, deps),
    routes: c.downstreamRoutes,
    expires: c.expires,
    payload,
    metadata: {
      name: t.label,
      description: s.description,
      owner: params.owner,
      source: c.sourceOf(t.file),
    },
    tags: {
      kind: t.kind,
      label: t.label,
      createdForUser: params.owner,
      retrigger: 'true',
      'worker-implementation': worker.implementation,
    },
    extra: {
      treeherder: {
        ...th,
        ...(groupName ? { groupName } : {}),
        jobKind: s.treeherder.kind,
        tier: s.treeherder.tier,
        machine: { platform: s.treeherder.platform },
        collection: { [s.treeherder.collection ?? 'opt']: true },
      },
      parent: params.decision_task_id,
      mozharness: c.expectationOf(archiveTaskId),
    },
  };
}

/** dependency name → task id of one task's dependencies. */
function dependencyIds(
  label: string,
  t: GraphTask,
  labelToTaskId: Record<string, string>,
): Record<string, string> {
  const deps: Record<string, string> = {};
  for (const name in t.dependencies) {
    const depLabel = t.dependencies[name]!;
    const id = labelToTaskId[depLabel];
    if (!id) {
      throw new ArchiveError(
        'internal',
        `'${label}' depends on '${depLabel}', which has no task id`,
      );
    }
    deps[name] = id;
  }
  return deps;
}

export function resolveTaskGraph(graph: TaskGraph, o: ResolveOptions): ResolvedGraph {
  const c = graphContext(graph, o);
  const out: ResolvedGraph = { order: [], tasks: {}, external: {} };
  if (c.reused)
    out.external[c.reused.taskId] = { label: ARCHIVE_LABEL, expires: c.reused.taskExpires };
  for (const label of graph.order) {
    const t = graph.tasks[label]!;
    const taskId = o.labelToTaskId[label];
    if (!taskId) throw new ArchiveError('internal', `no task id assigned to '${label}'`);
    const deps = dependencyIds(label, t, o.labelToTaskId);
    const task = isArchiveTask(t) ? archiveTask(c, t) : downstreamTask(c, t, deps);
    out.tasks[taskId] = { taskId, label, kind: t.kind, dependencies: deps, task };
    out.order.push(taskId);
  }
  if (!c.reused && !out.tasks[o.labelToTaskId[ARCHIVE_LABEL]!] && graph.order.length) {
    throw new ArchiveError('internal', 'the archive task is neither scheduled nor replaced');
  }
  return out;
}

/** task-graph.json: taskId → {label, kind, dependencies, task}, parents first. */
export function resolvedToJson(g: ResolvedGraph): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const id of g.order) {
    const t = g.tasks[id]!;
    out[id] = { label: t.label, kind: t.kind, dependencies: t.dependencies, task: t.task };
  }
  return out;
}
