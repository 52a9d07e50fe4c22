// Phase 6b: Taskcluster's limits, checked before anything is submitted, so a graph the queue
// would reject halfway through is refused whole, with every problem listed.
import { ArchiveError } from '../util/errors.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import type { ResolvedGraph } from './resolve.js';

export const LIMITS = {
  maxRoutes: 64,
  maxRouteLength: 249,
  maxNamespaceLength: 243,
  maxDeadlineDays: 5,
  maxDependencies: 10000,
  maxRetries: 49,
  maxNameLength: 255,
  maxDescriptionLength: 32768,
  maxSourceLength: 4096,
  maxTagLength: 4096,
};

const NAMESPACE = /^([a-zA-Z0-9_!~*'()%-]+\.)*[a-zA-Z0-9_!~*'()%-]+$/;
const TASK_QUEUE_ID = /^[a-zA-Z0-9-_]{1,38}\/[a-z]([-a-z0-9]{0,36}[a-z0-9])?$/;
const IDENTIFIER = /^[a-zA-Z0-9-_]{1,38}$/;

type Problem = [field: string, why: string];

const NO_ROUTES: string[] = [];

/**
 * What a graph's tasks share is checked once: tasks of one graph share their timestamps, queue
 * ids and often their routes (the same array), so a Firefox-sized graph parses each date and
 * tests each route once.
 */
interface Checks {
  time: (iso: string) => number;
  routes: (routes: string[]) => Problem[];
  matches: (re: RegExp, value: string) => boolean;
}

function checks(): Checks {
  const times = new Map<string, number>();
  const routeProblems = new Map<string[], Problem[]>();
  const valid = new Map<RegExp, Map<string, boolean>>();
  return {
    time: (iso) => {
      let t = times.get(iso);
      if (t === undefined) times.set(iso, (t = Date.parse(iso)));
      return t;
    },
    routes: (routes) => {
      let out = routeProblems.get(routes);
      if (!out) routeProblems.set(routes, (out = routesProblems(routes)));
      return out;
    },
    matches: (re, value) => {
      let seen = valid.get(re);
      if (!seen) valid.set(re, (seen = new Map()));
      let ok = seen.get(value);
      if (ok === undefined) seen.set(value, (ok = re.test(value)));
      return ok;
    },
  };
}

function routesProblems(routes: string[]): Problem[] {
  const out: Problem[] = [];
  if (routes.length > LIMITS.maxRoutes)
    out.push(['routes', `${routes.length} routes, the queue allows ${LIMITS.maxRoutes}`]);
  if (new Set(routes).size !== routes.length) out.push(['routes', 'duplicate routes']);
  for (const r of routes) {
    if (r.length < 1 || r.length > LIMITS.maxRouteLength) {
      out.push([
        'routes',
        `'${r.slice(0, 60)}…' is ${r.length} characters, the queue allows ${LIMITS.maxRouteLength}`,
      ]);
    }
    if (r.startsWith('index.')) {
      const ns = r.slice('index.'.length);
      if (!NAMESPACE.test(ns)) out.push(['routes', `'${r}' is not a valid index namespace`]);
    }
  }
  return out;
}

function timeProblems(g: ResolvedGraph, task: TaskDefinition, c: Checks, now?: Date): Problem[] {
  const out: Problem[] = [];
  const created = c.time(task.created);
  const deadline = c.time(task.deadline);
  const ref = now ? now.getTime() : created;
  if (!(deadline > created))
    out.push(['deadline', `${task.deadline} is not after created ${task.created}`]);
  if (deadline > ref + LIMITS.maxDeadlineDays * 86400_000) {
    out.push(['deadline', `${task.deadline} is more than ${LIMITS.maxDeadlineDays} days ahead`]);
  }
  if (now && deadline <= now.getTime()) out.push(['deadline', `${task.deadline} is in the past`]);
  if (task.expires && c.time(task.expires) < deadline) {
    out.push(['expires', `${task.expires} is before the deadline ${task.deadline}`]);
  }
  const deps = task.dependencies ?? [];
  if (deps.length > LIMITS.maxDependencies) {
    out.push([
      'dependencies',
      `${deps.length} dependencies, the queue allows ${LIMITS.maxDependencies}`,
    ]);
  }
  for (const dep of deps) {
    const exp = g.tasks[dep]?.task.expires ?? g.external[dep]?.expires;
    if (exp !== undefined && c.time(exp) < deadline) {
      const depLabel = g.tasks[dep]?.label ?? g.external[dep]?.label ?? dep;
      out.push([
        'dependencies',
        `'${depLabel}' (${dep}) expires ${exp}, before this task's deadline ${task.deadline}`,
      ]);
    }
  }
  return out;
}

function fieldProblems(task: TaskDefinition, c: Checks): Problem[] {
  const out: Problem[] = [];
  if (task.retries !== undefined && (task.retries < 0 || task.retries > LIMITS.maxRetries)) {
    out.push(['retries', `${task.retries} is outside 0..${LIMITS.maxRetries}`]);
  }
  if (task.taskQueueId && !c.matches(TASK_QUEUE_ID, task.taskQueueId)) {
    out.push(['taskQueueId', `'${task.taskQueueId}' is not <provisionerId>/<workerType>`]);
  }
  if (task.schedulerId && !c.matches(IDENTIFIER, task.schedulerId)) {
    out.push(['schedulerId', `'${task.schedulerId}' is not 1..38 of [a-zA-Z0-9-_]`]);
  }
  const { name, description, source } = task.metadata;
  if (name.length > LIMITS.maxNameLength) {
    out.push([
      'metadata.name',
      `${name.length} characters, the queue allows ${LIMITS.maxNameLength}`,
    ]);
  }
  if (description.length > LIMITS.maxDescriptionLength) {
    out.push(['metadata.description', `longer than ${LIMITS.maxDescriptionLength} characters`]);
  }
  if (source.length > LIMITS.maxSourceLength) {
    out.push(['metadata.source', `longer than ${LIMITS.maxSourceLength} characters`]);
  }
  const tags = task.tags ?? {};
  for (const k in tags) {
    if (tags[k]!.length > LIMITS.maxTagLength)
      out.push([`tags.${k}`, `longer than ${LIMITS.maxTagLength} characters`]);
  }
  return out;
}

/**
 * Every limit problem of the graph as `task '<label>' (<taskId>): <field>: <why>`. `now` is the
 * time the tasks would be submitted (defaults to the decision task's created).
 */
export function limitProblems(g: ResolvedGraph, now?: Date): string[] {
  const problems: string[] = [];
  const c = checks();
  for (const id of g.order) {
    const { label, task } = g.tasks[id]!;
    const found = [
      ...c.routes(task.routes ?? NO_ROUTES),
      ...timeProblems(g, task, c, now),
      ...fieldProblems(task, c),
    ];
    for (const [field, why] of found) problems.push(`task '${label}' (${id}): ${field}: ${why}`);
  }
  return problems;
}

/** Throws one `limit-exceeded` error listing every problem. */
export function checkLimits(g: ResolvedGraph, now?: Date): void {
  const problems = limitProblems(g, now);
  if (problems.length) {
    throw new ArchiveError(
      'limit-exceeded',
      `the task graph breaks Taskcluster's limits (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`,
      { problems },
    );
  }
}
