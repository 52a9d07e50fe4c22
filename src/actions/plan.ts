// The plan of an action that creates tasks (retrigger-multiple, add-new-jobs, retrigger,
// rebuild-mozharness-archive): which labels to re-create, how often, and what each new task
// depends on. Everything is decided here, before the first createTask, so an action either
// creates its whole plan or nothing.
//
// Dependencies of a re-created task:
//  - another label re-created in the same run → that new task;
//  - an existing task that completed and outlives the new task's deadline (for the harness
//    archive: whose archive artifact does) → reused;
//  - the harness archive otherwise → looked up again by its tree digest in the index (the levels
//    the contract lets this level read, most trusted first); failing that a new archive task is
//    scheduled first;
//  - anything else → re-created first (once per action, shared by every `times` copy).
import type { IndexedTask, TaskDefinition, TaskStatus } from '../taskcluster/types.js';
import {
  cacheRouteOf,
  DEFAULT_ARCHIVE_ARTIFACT,
  expectedArchive,
  indexRoute,
  isLatestRoute,
  readableCacheNamespaces,
  routeNamespace,
} from '../contract/index.js';
import { ArchiveError } from '../util/errors.js';
import {
  isArchive,
  latestInstance,
  downstreamClosure,
  rebaseTimestamps,
  replaceTaskIds,
  type KnownTask,
  type PushView,
} from './graph.js';

/** The reads a plan needs (the callback gives the queue and index; tests give fakes). */
export interface PlanOracle {
  /** Status of a task, or null when the queue does not know it (expired/deleted). */
  status(taskId: string): Promise<TaskStatus | null>;
  /** Expiry of a task's latest artifact, or null when it has none by that name. */
  artifactExpires(taskId: string, name: string): Promise<Date | null>;
  /** Index entries found at these namespaces (missing or expired ones are left out). */
  findIndexed(namespaces: string[]): Promise<IndexedTask[]>;
  /** A task's definition, or null when unknown. */
  task(taskId: string): Promise<TaskDefinition | null>;
}

export interface PlanRequest {
  labels: string[];
  times: number;
}

export interface PlanInput {
  view: PushView;
  requests: PlanRequest[];
  /** Also re-create every scheduled task that depends on a requested label. */
  downstream?: boolean;
  /** Archive labels to build again even when a usable archive exists (rebuild action). */
  rebuild?: string[];
  now: Date;
  /** The action task's own id: new tasks depend on it (they start once the action succeeded). */
  ownTaskId?: string;
  newTaskId: () => string;
  oracle: PlanOracle;
  /** Definition of a label the push did not schedule (add-new-jobs), from the decision code. */
  defineTask?: (label: string) => Promise<KnownTask | undefined>;
  /** Make another push's task definition (a reused archive) this push's: routes, rank. */
  retarget?: (task: TaskDefinition) => TaskDefinition;
}

export interface PlannedTask {
  taskId: string;
  label: string;
  kind: string;
  /** dependency name → task id */
  dependencies: Record<string, string>;
  task: TaskDefinition;
  /** 1-based copy number for requested labels; 0 for tasks re-created as dependencies. */
  copy: number;
}

export interface DependencyDecision {
  label: string;
  taskId: string;
  decision: 'reuse' | 'found-by-digest' | 'recreate';
  reason: string;
}

export interface Plan {
  /** Parents first. */
  tasks: PlannedTask[];
  dependencies: DependencyDecision[];
  /** label → newest task id this action stands for (written as label-to-taskid.json). */
  labelToTaskId: Record<string, string>;
}

/** The content-digest namespaces to try for an archive task: its level and the levels above. */
export function digestNamespaces(task: TaskDefinition): string[] {
  const cache = cacheRouteOf(task.routes);
  return cache ? readableCacheNamespaces(cache.prefix, cache.level, cache.treeDigest) : [];
}

function archiveArtifactName(task: TaskDefinition): string {
  return expectedArchive(task)?.artifactName ?? DEFAULT_ARCHIVE_ARTIFACT;
}

function deadlineAfterRebase(task: TaskDefinition, now: Date): number {
  return now.getTime() + (Date.parse(task.deadline) - Date.parse(task.created));
}

interface Source {
  label: string;
  kind: string;
  task: TaskDefinition;
  depLabels: Record<string, string>;
  depTaskIds: Record<string, string>;
}

/** What to re-create, and how many times (the most any request asks for). */
function requestedTimes(input: PlanInput): Map<string, number> {
  const { view } = input;
  const times = new Map<string, number>();
  const unknown: string[] = [];
  for (const r of input.requests) {
    for (const label of r.labels) {
      if (!view.fullLabels.has(label) && !latestInstance(view, label)) unknown.push(label);
      times.set(label, Math.max(times.get(label) ?? 0, r.times));
    }
  }
  if (unknown.length) {
    const known = [...view.fullLabels].sort();
    throw new ArchiveError(
      'not-found',
      `unknown task label(s): ${unknown.map((l) => `'${l}'`).join(', ')}; this push knows ` +
        `${known.length} label(s)${known.length <= 30 ? `: ${known.join(', ')}` : ''}`,
      { unknown },
    );
  }
  if (input.downstream) {
    for (const root of [...times.keys()]) {
      for (const d of downstreamClosure(view, [root])) {
        times.set(d, Math.max(times.get(d) ?? 0, times.get(root)!));
      }
    }
  }
  return times;
}

/** The rank and dropped `latest` routes of a rebuilt archive, per rebuilt label. */
interface RebuildRoute {
  rank: number;
  drop: Set<string>;
}

function indexRank(task: TaskDefinition): number {
  const index = (task.extra as { index?: { rank?: unknown } } | undefined)?.index;
  return Number(index?.rank ?? 0);
}

/** One plan in the making: the push, the sources of each label, and the decisions so far. */
class Planner {
  readonly view: PushView;
  readonly oracle: PlanOracle;
  readonly now: Date;
  readonly sources = new Map<string, Source>();
  readonly recreate: Set<string>;
  readonly resolved = new Map<string, DependencyDecision>();

  constructor(
    readonly input: PlanInput,
    readonly times: Map<string, number>,
  ) {
    this.view = input.view;
    this.oracle = input.oracle;
    this.now = input.now;
    this.recreate = new Set(times.keys());
  }

  async sourceOf(label: string): Promise<Source | undefined> {
    if (this.sources.has(label)) return this.sources.get(label);
    const { view, input } = this;
    let s: Source | undefined = latestInstance(view, label);
    if (!s && input.defineTask) s = await input.defineTask(label);
    if (!s) {
      // e.g. an archive this push reused from another push: its definition, made this push's
      const id = view.labelToTaskId[label];
      const def = id ? await this.oracle.task(id) : null;
      if (def) {
        const task = def.taskGroupId === view.decisionTaskId ? def : (input.retarget?.(def) ?? def);
        s = { label, kind: def.tags?.kind ?? 'unknown', task, depLabels: {}, depTaskIds: {} };
      }
    }
    if (s) this.sources.set(label, s);
    return s;
  }

  /** Every requested label has a definition, or a clear error names those that have none. */
  async loadRequested(): Promise<void> {
    const undefinable: string[] = [];
    for (const label of this.times.keys())
      if (!(await this.sourceOf(label))) undefinable.push(label);
    if (undefinable.length) {
      throw new ArchiveError(
        'not-found',
        `no task definition for label(s) ${undefinable.map((l) => `'${l}'`).join(', ')}: they are ` +
          'not scheduled in this push and cannot be generated here',
        { labels: undefinable },
      );
    }
    for (const label of this.input.rebuild ?? []) {
      if (!this.recreate.has(label))
        throw new ArchiveError('usage', `rebuild of '${label}' must also be requested`);
    }
  }

  /** Whether `a` depends on `b`, directly or through other labels. */
  dependsOn(a: string, b: string, seen = new Set<string>()): boolean {
    const s = this.sources.get(a) ?? latestInstance(this.view, a);
    if (!s || seen.has(a)) return false;
    seen.add(a);
    return Object.values(s.depLabels).some((d) => d === b || this.dependsOn(d, b, seen));
  }

  /** Resolve each upstream label once, dependents before their dependencies. */
  async resolveDependencies(): Promise<void> {
    const required = new Map<string, number>(); // upstream label → latest deadline relying on it
    const pending: string[] = [];
    const addUpstreamOf = (label: string) => {
      const s = this.sources.get(label)!;
      const until = deadlineAfterRebase(s.task, this.now);
      for (const dep of Object.values(s.depLabels)) {
        if (this.recreate.has(dep)) continue;
        required.set(dep, Math.max(required.get(dep) ?? 0, until));
        if (!pending.includes(dep)) pending.push(dep);
      }
    };
    for (const label of this.recreate) addUpstreamOf(label);
    // Dependents are always added to `pending` before their dependencies are settled: a label is
    // only resolved once nothing still pending depends on it.
    while (pending.length) {
      const idx = pending.findIndex((l) => !pending.some((o) => o !== l && this.dependsOn(o, l)));
      const label = pending.splice(idx < 0 ? 0 : idx, 1)[0]!;
      const d = await this.resolveUpstream(label, required.get(label)!);
      this.resolved.set(label, d);
      if (d.decision === 'recreate') {
        this.recreate.add(label);
        addUpstreamOf(label);
      }
    }
  }

  async resolveUpstream(label: string, until: number): Promise<DependencyDecision> {
    const src = await this.sourceOf(label);
    const current = this.view.labelToTaskId[label] ?? latestInstance(this.view, label)?.taskId;
    if (!current) {
      if (!src) throw new ArchiveError('not-found', `dependency '${label}' is unknown`);
      return { label, taskId: '', decision: 'recreate', reason: 'never scheduled in this push' };
    }
    const archive = src ? isArchive(src) : false;
    const why = await this.unusable(
      current,
      archive ? archiveArtifactName(src!.task) : undefined,
      until,
    );
    if (!why) {
      const reason = `completed and outlives ${new Date(until).toISOString()}`;
      return { label, taskId: current, decision: 'reuse', reason };
    }
    if (archive) {
      const found = await this.findByDigest(src!, until);
      if (found) {
        const reason = `${current} ${why}; ${found.namespace} → ${found.taskId}`;
        return { label, taskId: found.taskId, decision: 'found-by-digest', reason };
      }
      const reason = `${current} ${why}; no usable archive indexed by digest`;
      return { label, taskId: '', decision: 'recreate', reason };
    }
    if (!src) {
      throw new ArchiveError(
        'not-found',
        `dependency '${label}' (${current}) ${why} and has no definition to re-create it`,
      );
    }
    return { label, taskId: '', decision: 'recreate', reason: `${current} ${why}` };
  }

  /** Why an existing task cannot serve until `until` (undefined when it can). */
  async unusable(
    taskId: string,
    artifact: string | undefined,
    until: number,
  ): Promise<string | undefined> {
    const st = await this.oracle.status(taskId);
    if (!st) return 'is unknown to the queue (expired)';
    if (st.state !== 'completed') return `is ${st.state}, not completed`;
    if (Date.parse(st.expires) < until)
      return `expires ${st.expires}, before ${new Date(until).toISOString()}`;
    if (artifact) {
      const exp = await this.oracle.artifactExpires(taskId, artifact);
      if (!exp) return `has no artifact ${artifact}`;
      if (exp.getTime() < until)
        return `artifact ${artifact} expires ${exp.toISOString()}, before ${new Date(until).toISOString()}`;
    }
    return undefined;
  }

  async findByDigest(src: Source, until: number): Promise<IndexedTask | undefined> {
    const namespaces = digestNamespaces(src.task);
    if (!namespaces.length) return undefined;
    const found = await this.oracle.findIndexed(namespaces);
    // in the contract's level order, whatever order the index answered in
    found.sort((a, b) => namespaces.indexOf(a.namespace) - namespaces.indexOf(b.namespace));
    const expected = new Set<string>();
    for (const t of this.recreate) {
      const sha = expectedArchive(this.sources.get(t)!.task)?.sha256;
      if (sha) expected.add(sha);
    }
    for (const f of found) {
      if (Date.parse(f.expires) < until) continue;
      const sha = f.data?.sha256;
      if (typeof sha === 'string' && expected.size && !expected.has(sha)) continue;
      if (await this.unusable(f.taskId, archiveArtifactName(src.task), until)) continue;
      return f;
    }
    return undefined;
  }

  /** The labels to re-create, parents first. */
  order(): string[] {
    const order: string[] = [];
    const state = new Map<string, number>();
    const visit = (label: string) => {
      if (state.get(label) === 2) return;
      if (state.get(label) === 1)
        throw new ArchiveError('corrupt', `dependency cycle through '${label}'`);
      state.set(label, 1);
      for (const d of Object.values(this.sources.get(label)!.depLabels))
        if (this.recreate.has(d)) visit(d);
      state.set(label, 2);
      order.push(label);
    };
    for (const label of [...this.recreate].sort()) visit(label);
    return order;
  }

  /** A rebuilt archive is indexed above the one it replaces; `latest` only if it still is latest. */
  async rebuildRoutes(): Promise<Map<string, RebuildRoute>> {
    const routes = new Map<string, RebuildRoute>();
    for (const label of this.input.rebuild ?? []) {
      const s = this.sources.get(label)!;
      const rank = indexRank(s.task) + 1;
      const drop = new Set<string>();
      const latest = (s.task.routes ?? []).filter(isLatestRoute);
      if (latest.length) {
        const found = await this.oracle.findIndexed(latest.map((r) => routeNamespace(r)!));
        const current = this.view.labelToTaskId[label];
        for (const f of found)
          if (f.taskId !== current && f.rank >= rank) drop.add(indexRoute(f.namespace));
      }
      routes.set(label, { rank, drop });
    }
    return routes;
  }
}

/** Builds the new tasks of a plan: upstream re-creations once, requested labels `times` times. */
class TaskBuilder {
  readonly tasks: PlannedTask[] = [];
  readonly labelToTaskId: Record<string, string> = {};
  private readonly shared = new Map<string, string>(); // upstream label → its new id
  private readonly newest = new Map<string, string>(); // requested label → its newest copy so far

  constructor(
    private readonly p: Planner,
    private readonly rebuildRoutes: Map<string, RebuildRoute>,
  ) {
    for (const [label, d] of p.resolved) {
      if (d.decision === 'found-by-digest') this.labelToTaskId[label] = d.taskId;
    }
  }

  buildAll(order: string[]): void {
    const { times } = this.p;
    for (const label of order) {
      if (times.has(label)) continue;
      const t = this.build(label, 0, new Map());
      this.shared.set(label, t.taskId);
      this.add(label, t);
    }
    const maxCopies = Math.max(1, ...[...times.values()]);
    for (let copy = 1; copy <= maxCopies; copy++) {
      const inCopy = new Map<string, string>();
      for (const label of order) {
        if (!times.has(label) || times.get(label)! < copy) continue;
        const t = this.build(label, copy, inCopy);
        inCopy.set(label, t.taskId);
        this.newest.set(label, t.taskId);
        this.add(label, t);
      }
    }
  }

  private add(label: string, t: PlannedTask): void {
    this.labelToTaskId[label] = t.taskId;
    this.tasks.push(t);
  }

  private build(label: string, copy: number, inCopy: Map<string, string>): PlannedTask {
    const { input, view, now, resolved } = this.p;
    const s = this.p.sources.get(label)!;
    const taskId = input.newTaskId();
    const dependencies: Record<string, string> = {};
    const ids = new Map<string, string>();
    for (const [name, dep] of Object.entries(s.depLabels)) {
      const id =
        inCopy.get(dep) ??
        this.newest.get(dep) ??
        this.shared.get(dep) ??
        resolved.get(dep)?.taskId;
      if (!id) throw new ArchiveError('internal', `no task for dependency '${dep}' of '${label}'`);
      dependencies[name] = id;
      const old = s.depTaskIds[name];
      if (old && old !== id) ids.set(old, id);
    }
    const task = replaceTaskIds(rebaseTimestamps(s.task, now), ids);
    const labelDepIds = new Set(Object.values(s.depTaskIds));
    const others = (task.dependencies ?? []).filter(
      (d) => !labelDepIds.has(d) && !Object.values(dependencies).includes(d),
    );
    const deps = new Set<string>(Object.values(dependencies));
    if (input.ownTaskId) deps.add(input.ownTaskId);
    else for (const o of others) if (o === view.decisionTaskId) deps.add(o);
    task.dependencies = [...deps];
    task.taskGroupId = view.decisionTaskId;
    task.extra = { ...(task.extra ?? {}), parent: input.ownTaskId ?? view.decisionTaskId };
    const rb = this.rebuildRoutes.get(label);
    if (rb) {
      task.extra.index = { ...(task.extra.index ?? {}), rank: rb.rank };
      task.routes = (task.routes ?? []).filter((r) => !rb.drop.has(r));
    }
    return { taskId, label, kind: s.kind, dependencies, task, copy };
  }
}

/**
 * The whole plan of an action: what to re-create and how often, each upstream dependency
 * reused, found by digest or re-created, and the new task definitions, parents first.
 */
export async function planTasks(input: PlanInput): Promise<Plan> {
  const planner = new Planner(input, requestedTimes(input));
  await planner.loadRequested();
  await planner.resolveDependencies();
  const order = planner.order();
  const builder = new TaskBuilder(planner, await planner.rebuildRoutes());
  builder.buildAll(order);
  return {
    tasks: builder.tasks,
    dependencies: [...planner.resolved.values()],
    labelToTaskId: builder.labelToTaskId,
  };
}
