// Phase 6b: Taskcluster's limits, checked before anything is submitted, so a graph the queue
// would reject halfway through is refused whole, with every problem listed.
import { ArchiveError } from '../util/errors.js';
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

/**
 * Every limit problem of the graph as `task '<label>' (<taskId>): <field>: <why>`. `now` is the
 * time the tasks would be submitted (defaults to the decision task's created).
 */
export function limitProblems(g: ResolvedGraph, now?: Date): string[] {
  const problems: string[] = [];
  const expiresOf = (id: string): string | undefined =>
    g.tasks[id]?.task.expires ?? g.external[id]?.expires;
  for (const id of g.order) {
    const { label, task } = g.tasks[id]!;
    const p = (field: string, why: string) =>
      problems.push(`task '${label}' (${id}): ${field}: ${why}`);
    const created = Date.parse(task.created);
    const deadline = Date.parse(task.deadline);
    const ref = now ? now.getTime() : created;
    const routes = task.routes ?? [];
    if (routes.length > LIMITS.maxRoutes)
      p('routes', `${routes.length} routes, the queue allows ${LIMITS.maxRoutes}`);
    if (new Set(routes).size !== routes.length) p('routes', 'duplicate routes');
    for (const r of routes) {
      if (r.length < 1 || r.length > LIMITS.maxRouteLength) {
        p(
          'routes',
          `'${r.slice(0, 60)}…' is ${r.length} characters, the queue allows ${LIMITS.maxRouteLength}`,
        );
      }
      if (r.startsWith('index.')) {
        const ns = r.slice('index.'.length);
        if (!NAMESPACE.test(ns)) p('routes', `'${r}' is not a valid index namespace`);
      }
    }
    if (!(deadline > created))
      p('deadline', `${task.deadline} is not after created ${task.created}`);
    if (deadline > ref + LIMITS.maxDeadlineDays * 86400_000) {
      p('deadline', `${task.deadline} is more than ${LIMITS.maxDeadlineDays} days ahead`);
    }
    if (now && deadline <= now.getTime()) p('deadline', `${task.deadline} is in the past`);
    if (task.expires && Date.parse(task.expires) < deadline) {
      p('expires', `${task.expires} is before the deadline ${task.deadline}`);
    }
    const deps = task.dependencies ?? [];
    if (deps.length > LIMITS.maxDependencies) {
      p('dependencies', `${deps.length} dependencies, the queue allows ${LIMITS.maxDependencies}`);
    }
    for (const dep of deps) {
      const exp = expiresOf(dep);
      if (exp !== undefined && Date.parse(exp) < deadline) {
        const depLabel = g.tasks[dep]?.label ?? g.external[dep]?.label ?? dep;
        p(
          'dependencies',
          `'${depLabel}' (${dep}) expires ${exp}, before this task's deadline ${task.deadline}`,
        );
      }
    }
    if (task.retries !== undefined && (task.retries < 0 || task.retries > LIMITS.maxRetries)) {
      p('retries', `${task.retries} is outside 0..${LIMITS.maxRetries}`);
    }
    if (task.taskQueueId && !TASK_QUEUE_ID.test(task.taskQueueId)) {
      p('taskQueueId', `'${task.taskQueueId}' is not <provisionerId>/<workerType>`);
    }
    if (task.schedulerId && !IDENTIFIER.test(task.schedulerId)) {
      p('schedulerId', `'${task.schedulerId}' is not 1..38 of [a-zA-Z0-9-_]`);
    }
    if (task.metadata.name.length > LIMITS.maxNameLength) {
      p(
        'metadata.name',
        `${task.metadata.name.length} characters, the queue allows ${LIMITS.maxNameLength}`,
      );
    }
    if (task.metadata.description.length > LIMITS.maxDescriptionLength) {
      p('metadata.description', `longer than ${LIMITS.maxDescriptionLength} characters`);
    }
    if (task.metadata.source.length > LIMITS.maxSourceLength) {
      p('metadata.source', `longer than ${LIMITS.maxSourceLength} characters`);
    }
    for (const [k, v] of Object.entries(task.tags ?? {})) {
      if (v.length > LIMITS.maxTagLength)
        p(`tags.${k}`, `longer than ${LIMITS.maxTagLength} characters`);
    }
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
