// Phase 6a: resolve the optimised graph into real task definitions: task ids for dependencies,
// the archive's artifact URL and expected sha256 in every downstream payload (docker-worker env or
// generic-worker mount), routes, Treeherder metadata, timestamps anchored to the decision task's
// `created`.
import { fromNow, queueClient, type QueueClient } from '../taskcluster/client.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import { ArchiveError } from '../util/errors.js';
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

/** The URL downstream tasks download an artifact from (the queue's getLatestArtifact). */
export function artifactUrl(queue: QueueClient, taskId: string, name: string): string {
  return queue.buildUrl(queue.getLatestArtifact, taskId, name);
}

export function resolveTaskGraph(graph: TaskGraph, o: ResolveOptions): ResolvedGraph {
  const { config, params } = o;
  const urlQueue = queueClient({ rootUrl: params.taskcluster_root_url });
  const urls = new Map<string, string>();
  const urlOf = (taskId: string, name: string): string => {
    const key = `${taskId}/${name}`;
    let u = urls.get(key);
    if (!u) urls.set(key, (u = artifactUrl(urlQueue, taskId, name)));
    return u;
  };
  const created = o.created.toISOString();
  const deadline = fromNow(config.deadlineAfter, o.created).toISOString();
  const expires = fromNow(config.expiresAfter, o.created).toISOString();
  const common = {
    schedulerId: schedulerId(config, params),
    projectId: config.projectId ?? 'none',
    taskGroupId: params.decision_task_id,
    requires: 'all-completed' as const,
    priority: config.priority,
    retries: 5,
    created,
    deadline,
    scopes: [] as string[],
  };
  const archiveTaskId = o.labelToTaskId[ARCHIVE_LABEL]!;
  const reused = o.replaced[ARCHIVE_LABEL];
  const archiveArtifact = config.archive.artifactName;
  // the zip is predicted and fetched only when the archive task publishes one (config.yml names it)
  const zip =
    config.archive.zipArtifactName && o.digest.zip
      ? { artifactName: config.archive.zipArtifactName, ...o.digest.zip }
      : undefined;
  // what downstream tasks expect: the reused archive's own facts, else this push's prediction
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
  const out: ResolvedGraph = { order: [], tasks: {}, external: {} };
  if (reused) out.external[reused.taskId] = { label: ARCHIVE_LABEL, expires: reused.taskExpires };

  const archiveTask = (t: ArchiveGraphTask): TaskDefinition => {
    const k = t.spec;
    const worker = config.workers[k.workerAlias]!;
    const archiveExpires = fromNow(
      k.expiresAfter ?? config.archive.expiresAfter,
      o.created,
    ).toISOString();
    const th = splitSymbol(k.treeherder.symbol);
    return {
      taskQueueId: taskQueueId(worker, params),
      ...common,
      dependencies: [params.decision_task_id],
      routes: [
        ...pushIndexNamespaces(config.indexPrefix, pushFacts(params)).map(indexRoute),
        indexRoute(cacheNamespace(config.indexPrefix, params.level, o.digest.treeDigest)),
        treeherderRoute(params),
      ],
      expires: archiveExpires,
      payload: archivePayload(worker.implementation, {
        kind: k,
        params,
        treeDigest: o.digest.treeDigest,
        sha256: o.digest.sha256,
        ...(zip ? { zipSha256: zip.sha256 } : {}),
        artifactName: archiveArtifact,
      }),
      metadata: {
        name: t.label,
        description: k.description,
        owner: params.owner,
        source: sourceUrl(params, t.file),
      },
      tags: {
        kind: t.kind,
        label: t.label,
        createdForUser: params.owner,
        'worker-implementation': worker.implementation,
      },
      extra: {
        index: {
          rank: params.pushdate,
          expires: archiveExpires,
          data: {
            sha256: o.digest.sha256,
            size: o.digest.size,
            treeDigest: o.digest.treeDigest,
            formatVersion: o.digest.formatVersion,
            artifactName: archiveArtifact,
            ...(zip ? { zip } : {}),
            repository: params.head_repository,
            revision: params.head_rev,
            subdir: k.subdir,
            project: params.project,
            pushlogId: params.pushlog_id,
            pushdate: params.pushdate,
          },
        },
        treeherder: {
          ...th,
          jobKind: 'build',
          tier: k.treeherder.tier,
          machine: { platform: k.treeherder.platform },
          collection: { opt: true },
        },
        parent: params.decision_task_id,
      },
    };
  };

  const downstreamTask = (t: DownstreamGraphTask, deps: Record<string, string>): TaskDefinition => {
    const s = t.spec;
    const worker = config.workers[s.workerAlias]!;
    const th = splitSymbol(s.treeherder.symbol);
    const args = [
      ...s.mozharness.config.flatMap((c) => ['--config-file', c]),
      ...s.mozharness.extraArgs,
    ];
    const env: Record<string, string> = {
      MOZ_SOURCE_REPO: params.head_repository,
      MOZ_SOURCE_CHANGESET: params.head_rev,
      ...s.env,
    };
    if (deps.build) env.MOZ_BUILD_URL = urlOf(deps.build, BUILD_ARTIFACT);
    const payload = downstreamPayload(worker.implementation, {
      spec: s,
      worker,
      env,
      args,
      archive: {
        taskId: deps.mozharness!,
        format: fetched.format,
        artifact: fetched.artifactName,
        url: urlOf(deps.mozharness!, fetched.artifactName),
        sha256: fetched.sha256,
      },
      expires,
    });
    const groupName = th.groupSymbol ? config.treeherderGroupNames[th.groupSymbol] : undefined;
    return {
      taskQueueId: taskQueueId(worker, params),
      ...common,
      // as in taskgraph: a task whose every dependency was replaced by an existing task also
      // waits for the decision task, so nothing runs before the whole graph is submitted
      dependencies: [
        ...new Set([
          ...Object.values(deps),
          ...(Object.values(t.dependencies).some((l) => graph.tasks[l])
            ? []
            : [params.decision_task_id]),
        ]),
      ].sort(),
      routes: [treeherderRoute(params)],
      expires,
      payload,
      metadata: {
        name: t.label,
        description: s.description,
        owner: params.owner,
        source: sourceUrl(params, t.file),
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
        mozharness: downstreamExpectation(deps.mozharness!, archiveFacts, Boolean(reused)),
      },
    };
  };

  for (const label of graph.order) {
    const t = graph.tasks[label]!;
    const taskId = o.labelToTaskId[label];
    if (!taskId) throw new ArchiveError('internal', `no task id assigned to '${label}'`);
    const deps: Record<string, string> = {};
    for (const [name, depLabel] of Object.entries(t.dependencies)) {
      const id = o.labelToTaskId[depLabel];
      if (!id)
        throw new ArchiveError(
          'internal',
          `'${label}' depends on '${depLabel}', which has no task id`,
        );
      deps[name] = id;
    }
    const task = isArchiveTask(t) ? archiveTask(t) : downstreamTask(t as DownstreamGraphTask, deps);
    out.tasks[taskId] = { taskId, label, kind: t.kind, dependencies: deps, task };
    out.order.push(taskId);
  }
  if (!reused && !out.tasks[archiveTaskId] && graph.order.length) {
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
