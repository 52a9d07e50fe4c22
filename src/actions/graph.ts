// What an action knows about its push: the task graphs and label → taskId maps written by the
// decision task and by every earlier action task of the same group (so a retrigger of a
// retrigger works), merged into one view. Pure helpers to rewrite a task definition for a new
// run live here too.
import * as yaml from 'js-yaml';
import type { QueueClient } from '../taskcluster/client.js';
import { listTaskGroup } from '../taskcluster/listing.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { ARCHIVE_KIND } from '../contract/index.js';

/** One entry of task-graph.json (taskId → entry). `dependencies` maps name → taskId (or label). */
export interface TaskGraphEntry {
  label: string;
  kind?: string;
  dependencies?: Record<string, string> | string[];
  task: TaskDefinition;
  attributes?: Record<string, unknown>;
}

export type TaskGraphJson = Record<string, TaskGraphEntry>;
export type LabelToTaskId = Record<string, string>;

/** A task instance the action may re-create or depend on. */
export interface KnownTask {
  taskId: string;
  label: string;
  kind: string;
  task: TaskDefinition;
  /** dependency name → label (when the dependency is a labelled task of the push). */
  depLabels: Record<string, string>;
  /** dependency name → taskId of this instance. */
  depTaskIds: Record<string, string>;
}

export interface PushView {
  decisionTaskId: string;
  parameters: Record<string, unknown>;
  /** Latest task id of every label (decision first, then action tasks in creation order). */
  labelToTaskId: LabelToTaskId;
  /** Every known instance, by task id. */
  tasks: Map<string, KnownTask>;
  /** Labels of the push's full task graph (add-new-jobs may schedule any of them). */
  fullLabels: Set<string>;
  /** full-task-graph.json as written by the decision task (label → entry), if any. */
  fullGraph: Record<string, unknown>;
  /** Action tasks whose artifacts were merged, oldest first. */
  actionTaskIds: string[];
}

export function kindOf(entry: { kind?: string; task?: TaskDefinition }): string {
  return entry.kind ?? entry.task?.tags?.kind ?? 'unknown';
}

export function isArchive(t: { kind: string }): boolean {
  return t.kind === ARCHIVE_KIND;
}

/**
 * Merge the decision task's graph and the action tasks' graphs (in order; later wins for
 * label-to-taskid). Dependencies given as labels or task ids are both understood.
 */
export function mergePushView(input: {
  decisionTaskId: string;
  parameters: Record<string, unknown>;
  graphs: Array<{ taskId: string; taskGraph: TaskGraphJson; labelToTaskId: LabelToTaskId }>;
  fullGraph?: Record<string, unknown>;
  /** runnable-jobs.json of the decision task (label → Treeherder job), if any. */
  runnableJobs?: Record<string, unknown>;
}): PushView {
  const labelToTaskId: LabelToTaskId = {};
  const tasks = new Map<string, KnownTask>();
  for (const g of input.graphs) Object.assign(labelToTaskId, g.labelToTaskId);
  const labelOfTaskId = new Map<string, string>();
  for (const g of input.graphs) {
    for (const [taskId, e] of Object.entries(g.taskGraph)) labelOfTaskId.set(taskId, e.label);
    for (const [label, taskId] of Object.entries(g.labelToTaskId)) {
      if (!labelOfTaskId.has(taskId)) labelOfTaskId.set(taskId, label);
    }
  }
  const knownLabels = new Set(Object.keys(labelToTaskId));
  for (const g of input.graphs) {
    for (const [taskId, e] of Object.entries(g.taskGraph)) {
      if (!e || typeof e !== 'object' || !e.task || typeof e.label !== 'string') {
        throw new ArchiveError(
          'corrupt',
          `task-graph.json of ${g.taskId}: entry ${taskId} has no label or task`,
        );
      }
      const depLabels: Record<string, string> = {};
      const depTaskIds: Record<string, string> = {};
      const deps = e.dependencies ?? {};
      const pairs: Array<[string, string]> = Array.isArray(deps)
        ? deps.map((d) => [labelOfTaskId.get(d) ?? d, d])
        : Object.entries(deps);
      for (const [name, ref] of pairs) {
        if (labelOfTaskId.has(ref)) {
          depTaskIds[name] = ref;
          depLabels[name] = labelOfTaskId.get(ref)!;
        } else if (knownLabels.has(ref) || tasksHasLabel(input.fullGraph, ref)) {
          depLabels[name] = ref;
          depTaskIds[name] = labelToTaskId[ref] ?? ref;
        } else {
          depTaskIds[name] = ref;
        }
      }
      tasks.set(taskId, {
        taskId,
        label: e.label,
        kind: kindOf(e),
        task: e.task,
        depLabels,
        depTaskIds,
      });
    }
  }
  const fullGraph = input.fullGraph ?? {};
  const fullLabels = new Set<string>([
    ...Object.keys(fullGraph),
    ...Object.keys(input.runnableJobs ?? {}),
    ...knownLabels,
  ]);
  return {
    decisionTaskId: input.decisionTaskId,
    parameters: input.parameters,
    labelToTaskId,
    tasks,
    fullLabels,
    fullGraph,
    actionTaskIds: input.graphs.map((g) => g.taskId).filter((id) => id !== input.decisionTaskId),
  };
}

function tasksHasLabel(full: Record<string, unknown> | undefined, label: string): boolean {
  return !!full && Object.prototype.hasOwnProperty.call(full, label);
}

/** The latest known instance of a label (the one label-to-taskid points at), if any. */
export function latestInstance(view: PushView, label: string): KnownTask | undefined {
  const id = view.labelToTaskId[label];
  if (id && view.tasks.has(id)) return view.tasks.get(id);
  // the label's current id may be a reused task from another push: fall back to any instance
  for (const t of view.tasks.values()) if (t.label === label) return t;
  return undefined;
}

/** Label → labels that depend on it directly (over every known instance). */
export function dependentsByLabel(view: PushView): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const t of view.tasks.values()) {
    for (const dep of Object.values(t.depLabels)) {
      if (!out.has(dep)) out.set(dep, new Set());
      out.get(dep)!.add(t.label);
    }
  }
  for (const [label, e] of Object.entries(view.fullGraph)) {
    const deps = (e as { dependencies?: unknown } | undefined)?.dependencies;
    if (!deps || typeof deps !== 'object' || Array.isArray(deps)) continue;
    for (const dep of Object.values(deps)) {
      if (typeof dep !== 'string') continue;
      if (!out.has(dep)) out.set(dep, new Set());
      out.get(dep)!.add(label);
    }
  }
  return out;
}

/** Labels that (transitively) depend on `labels`, restricted to labels scheduled in the push. */
export function downstreamClosure(view: PushView, labels: Iterable<string>): Set<string> {
  const rev = dependentsByLabel(view);
  const out = new Set<string>();
  const stack = [...labels];
  while (stack.length) {
    const l = stack.pop()!;
    for (const d of rev.get(l) ?? []) {
      if (out.has(d) || !(d in view.labelToTaskId)) continue;
      out.add(d);
      stack.push(d);
    }
  }
  return out;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;

/** Every ISO timestamp in the definition moved by the same amount, so `created` becomes `now`
 * and deadlines, expiries and artifact expiries keep their distance to it. */
export function rebaseTimestamps(task: TaskDefinition, now: Date): TaskDefinition {
  const created = Date.parse(task.created);
  if (!Number.isFinite(created)) {
    throw new ArchiveError('corrupt', `task '${task.metadata?.name}' has no valid created time`);
  }
  const shift = now.getTime() - created;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string' && ISO.test(v)) {
      const t = Date.parse(v);
      return Number.isFinite(t) ? new Date(t + shift).toISOString() : v;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(task) as TaskDefinition;
}

/** Replace task ids anywhere in a definition (dependencies, artifact URLs, mounts). Task ids are
 * 22-character slugids, so a whole-string-token replacement cannot hit anything else. */
export function replaceTaskIds<T>(value: T, map: Map<string, string>): T {
  if (!map.size) return value;
  const keys = [...map.keys()].map((k) => k.replace(/[-\\^$*+?.()|[\]{}]/g, '\\$&'));
  const re = new RegExp(`(?<![A-Za-z0-9_-])(?:${keys.join('|')})(?![A-Za-z0-9_-])`, 'g');
  return JSON.parse(JSON.stringify(value).replace(re, (m) => map.get(m) ?? m)) as T;
}

/** Read a JSON or YAML artifact of a task through the queue (303 followed); null when absent. */
export async function readArtifact(
  queue: QueueClient,
  taskId: string,
  name: string,
  opts: { fetchImpl?: typeof fetch } = {},
): Promise<unknown | null> {
  let url: string | undefined;
  try {
    const res = await queue.getLatestArtifact(taskId, name);
    url = res?.url;
    if (!url && res && typeof res === 'object' && !('storageType' in res)) return res;
  } catch (e) {
    const status = (e as { statusCode?: number }).statusCode;
    if (status === 404) return null;
    throw new ArchiveError(
      'unavailable',
      `cannot get artifact ${name} of ${taskId}: ${errorMessage(e)}`,
    );
  }
  if (!url) return null;
  const f = opts.fetchImpl ?? fetch;
  const res = await f(url, { redirect: 'follow' });
  if (res.status === 404) return null;
  if (!res.ok) {
    throw new ArchiveError(
      'unavailable',
      `artifact ${name} of ${taskId}: HTTP ${res.status} from ${url}`,
    );
  }
  const text = await res.text();
  try {
    return name.endsWith('.yml') || name.endsWith('.yaml') ? yaml.load(text) : JSON.parse(text);
  } catch (e) {
    throw new ArchiveError(
      'corrupt',
      `artifact ${name} of ${taskId} is not valid: ${errorMessage(e)}`,
    );
  }
}

/**
 * Load the push view: the decision task's parameters.yml, task-graph.json, label-to-taskid.json
 * and full-task-graph.json, plus task-graph.json/label-to-taskid.json of every earlier action task
 * in the group (tags.kind action-callback), oldest first.
 */
export async function loadPushView(
  queue: QueueClient,
  decisionTaskId: string,
  opts: { ownTaskId?: string; log?: Logger; fetchImpl?: typeof fetch } = {},
): Promise<PushView> {
  const log = opts.log ?? silentLogger;
  const read = (taskId: string, name: string) =>
    readArtifact(queue, taskId, name, { fetchImpl: opts.fetchImpl });
  const [parameters, taskGraph, labelToTaskId, fullGraph, runnableJobs] = await Promise.all([
    read(decisionTaskId, 'public/parameters.yml'),
    read(decisionTaskId, 'public/task-graph.json'),
    read(decisionTaskId, 'public/label-to-taskid.json'),
    read(decisionTaskId, 'public/full-task-graph.json'),
    read(decisionTaskId, 'public/runnable-jobs.json'),
  ]);
  if (!taskGraph || !labelToTaskId) {
    throw new ArchiveError(
      'not-found',
      `decision task ${decisionTaskId} has no public/task-graph.json or public/label-to-taskid.json`,
    );
  }
  const graphs = [
    {
      taskId: decisionTaskId,
      taskGraph: taskGraph as TaskGraphJson,
      labelToTaskId: labelToTaskId as LabelToTaskId,
    },
  ];
  const members = await listTaskGroup(queue, decisionTaskId);
  const actions = members
    .filter(
      (m) =>
        m.task?.tags?.kind === 'action-callback' &&
        m.status?.taskId !== decisionTaskId &&
        m.status?.taskId !== opts.ownTaskId,
    )
    .sort((a, b) => String(a.task.created).localeCompare(String(b.task.created)));
  const loaded = await Promise.all(
    actions.map(async (m) => {
      const id: string = m.status.taskId;
      const [tg, l2t] = await Promise.all([
        read(id, 'public/task-graph.json'),
        read(id, 'public/label-to-taskid.json'),
      ]);
      if (!tg || !l2t) {
        log.debug('action-task-without-graph', { taskId: id });
        return undefined;
      }
      return { taskId: id, taskGraph: tg as TaskGraphJson, labelToTaskId: l2t as LabelToTaskId };
    }),
  );
  for (const g of loaded) if (g) graphs.push(g);
  return mergePushView({
    decisionTaskId,
    parameters: (parameters as Record<string, unknown>) ?? {},
    graphs,
    fullGraph: (fullGraph as Record<string, unknown>) ?? {},
    runnableJobs: (runnableJobs as Record<string, unknown>) ?? {},
  });
}
