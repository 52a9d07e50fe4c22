// Phase 2: load the kinds into the full task graph (every task the tree defines, keyed by label),
// then select the target tasks for this push. Graphs are plain data: printable, diffable, and
// written as full-task-graph.json.
import { ArchiveError } from '../util/errors.js';
import { ARCHIVE_KIND, ARCHIVE_LABEL } from '../contract/index.js';
import type { ArchiveKind, DownstreamKind, DownstreamTaskSpec, Kinds } from './config.js';
import type { Parameters } from './parameters.js';

export interface ArchiveGraphTask {
  label: string;
  kind: typeof ARCHIVE_KIND;
  file: string;
  /** name → label */
  dependencies: Record<string, string>;
  runOnProjects: string[];
  spec: ArchiveKind;
}

export interface DownstreamGraphTask {
  label: string;
  kind: string;
  file: string;
  dependencies: Record<string, string>;
  runOnProjects: string[];
  spec: DownstreamTaskSpec;
}

export type GraphTask = ArchiveGraphTask | DownstreamGraphTask;

export interface TaskGraph {
  /** Labels in dependency order (parents first, ties by kind order then label). */
  order: string[];
  tasks: Record<string, GraphTask>;
}

export function isArchiveTask(t: GraphTask): t is ArchiveGraphTask {
  return t.kind === ARCHIVE_KIND;
}

/** Parents-first order; throws naming the cycle when there is one. */
export function topologicalOrder(tasks: Record<string, GraphTask>, seed: string[]): string[] {
  const state = new Map<string, 1 | 2>();
  const out: string[] = [];
  const stack: string[] = [];
  const visit = (label: string) => {
    const s = state.get(label);
    if (s === 2) return;
    if (s === 1) {
      const cycle = [...stack.slice(stack.indexOf(label)), label].join(' → ');
      const t = tasks[label]!;
      throw new ArchiveError(
        'invalid-config',
        `${t.file}: task '${label}': dependencies: cycle ${cycle}`,
        { file: t.file, task: label },
      );
    }
    state.set(label, 1);
    stack.push(label);
    const deps = Object.values(tasks[label]!.dependencies);
    if (deps.length > 1) deps.sort();
    for (const dep of deps) visit(dep);
    stack.pop();
    state.set(label, 2);
    out.push(label);
  };
  for (const label of seed) visit(label);
  return out;
}

function configError(file: string, task: string, where: string, why: string): ArchiveError {
  return new ArchiveError('invalid-config', `${file}: task '${task}': ${where}: ${why}`, {
    file,
    task,
  });
}

/** Add a kind's tasks to the graph, refusing a label that is already taken. */
function addKindTasks(
  kind: DownstreamKind,
  tasks: Record<string, GraphTask>,
  kindOf: Map<string, string>,
): string[] {
  const labels: string[] = [];
  for (const spec of kind.tasks) {
    const label = `${kind.name}-${spec.name}`;
    if (kindOf.has(label)) {
      throw new ArchiveError(
        'invalid-config',
        `${kind.file}: task '${spec.name}': duplicate label '${label}'`,
        { file: kind.file, task: spec.name },
      );
    }
    tasks[label] = {
      label,
      kind: kind.name,
      file: kind.file,
      dependencies: { ...spec.dependencies },
      runOnProjects: spec.runOnProjects,
      spec,
    };
    kindOf.set(label, kind.name);
    labels.push(label);
  }
  return labels;
}

/** Every dependency names an existing task of a declared kind; `mozharness` is the archive. */
function checkDependencies(kind: DownstreamKind, labels: string[], kindOf: Map<string, string>) {
  const allowed = new Set(kind.kindDependencies);
  kind.tasks.forEach((spec, i) => {
    const label = labels[i]!;
    for (const name in spec.dependencies) {
      const dep = spec.dependencies[name]!;
      const depKind = kindOf.get(dep);
      const fail = (why: string) => configError(kind.file, spec.name, `dependencies.${name}`, why);
      if (depKind === undefined) throw fail(`no task labelled '${dep}'`);
      if (name === 'mozharness' && dep !== ARCHIVE_LABEL) {
        throw fail(`must be '${ARCHIVE_LABEL}' (the archive task), got '${dep}'`);
      }
      if (!allowed.has(depKind)) {
        throw fail(`'${dep}' is of kind '${depKind}', which is not in kind-dependencies`);
      }
      if (dep === label) throw fail('a task cannot depend on itself');
    }
  });
}

/** The full graph: every task of every kind, dependencies checked. */
export function loadFullGraph(kinds: Kinds): TaskGraph {
  const tasks: Record<string, GraphTask> = {};
  tasks[ARCHIVE_LABEL] = {
    label: ARCHIVE_LABEL,
    kind: ARCHIVE_KIND,
    file: kinds.archive.file,
    dependencies: {},
    runOnProjects: ['all'],
    spec: kinds.archive,
  };
  const kindOf = new Map<string, string>([[ARCHIVE_LABEL, ARCHIVE_KIND]]);
  const knownKinds = new Set([ARCHIVE_KIND, ...kinds.downstream.map((k) => k.name)]);
  const labels = kinds.downstream.map((kind) => {
    for (const dep of kind.kindDependencies) {
      if (!knownKinds.has(dep)) {
        throw new ArchiveError(
          'invalid-config',
          `${kind.file}: kind-dependencies: unknown kind '${dep}'`,
          { file: kind.file },
        );
      }
    }
    return addKindTasks(kind, tasks, kindOf);
  });
  kinds.downstream.forEach((kind, i) => checkDependencies(kind, labels[i]!, kindOf));
  return { order: topologicalOrder(tasks, [ARCHIVE_LABEL, ...labels.flat()]), tasks };
}

/** The target graph: the archive, the tasks that run on this project, and what they depend on. */
export function selectTargetTasks(full: TaskGraph, params: Parameters): TaskGraph {
  const wanted = new Set<string>([ARCHIVE_LABEL]);
  const add = (label: string) => {
    if (wanted.has(label) && label !== ARCHIVE_LABEL) return;
    wanted.add(label);
    for (const dep of Object.values(full.tasks[label]!.dependencies)) add(dep);
  };
  for (const label of full.order) {
    const t = full.tasks[label]!;
    if (t.runOnProjects.includes('all') || t.runOnProjects.includes(params.project)) add(label);
  }
  const tasks: Record<string, GraphTask> = {};
  const order = full.order.filter((l) => wanted.has(l));
  for (const l of order) tasks[l] = full.tasks[l]!;
  return { order, tasks };
}

/** full-task-graph.json: label → {label, kind, dependencies, attributes, spec}. */
export function graphToJson(graph: TaskGraph): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const label of graph.order) {
    const t = graph.tasks[label]!;
    const { file, ...spec } = t.spec as unknown as Record<string, unknown>;
    out[label] = {
      label,
      kind: t.kind,
      file,
      dependencies: t.dependencies,
      attributes: { run_on_projects: t.runOnProjects },
      spec,
    };
  }
  return out;
}
