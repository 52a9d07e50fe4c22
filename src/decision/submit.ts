// Phase 7: submit the resolved graph. Parents go before children, at most `concurrency` requests
// at a time; every failure is collected and reported together. A rerun of the same decision task
// has the same task ids and the same `created`, which the queue would refuse once it is more than
// 15 minutes old, so each task is first looked up: an identical existing task is skipped, a
// different one is a conflict.
import type { QueueClient } from '../taskcluster/client.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { ResolvedGraph } from './resolve.js';

export interface SubmitReport {
  created: string[];
  /** Already in the queue with the same definition (a rerun): not submitted again. */
  existing: string[];
  failed: Array<{ taskId: string; label: string; error: string }>;
  /** Not attempted because a task they depend on failed. */
  skipped: Array<{ taskId: string; label: string; because: string }>;
}

export interface SubmitOptions {
  concurrency?: number;
  /** Look each task up before creating it (default true). */
  checkExisting?: boolean;
  log?: Logger;
}

const DATE_FIELDS = new Set(['created', 'deadline', 'expires']);

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/** True when the queue's copy matches every field we define (the queue adds fields of its own). */
export function sameDefinition(existing: object, ours: TaskDefinition): boolean {
  for (const [k, v] of Object.entries(ours)) {
    const e = (existing as Record<string, unknown>)[k];
    if (DATE_FIELDS.has(k)) {
      if (typeof e !== 'string' || Date.parse(e) !== Date.parse(v as string)) return false;
    } else if (JSON.stringify(canonical(e)) !== JSON.stringify(canonical(v))) {
      return false;
    }
  }
  return true;
}

function statusCode(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Who waits for whom among the graph's tasks, and which tasks can go first. */
interface Schedule {
  /** taskId → how many of its in-graph dependencies are not submitted yet */
  waiting: Map<string, number>;
  children: Map<string, string[]>;
  /** A FIFO with a read position: shift() would make scheduling quadratic on wide graphs. */
  ready: string[];
  done: Set<string>;
}

function schedule(g: ResolvedGraph): Schedule {
  const waiting = new Map<string, number>();
  const children = new Map<string, string[]>();
  const ready: string[] = [];
  for (const id of g.order) {
    let n = 0;
    for (const d of g.tasks[id]!.task.dependencies ?? []) {
      if (!g.tasks[d]) continue;
      n++;
      const list = children.get(d);
      if (list) list.push(id);
      else children.set(d, [id]);
    }
    waiting.set(id, n);
    if (n === 0) ready.push(id);
  }
  return { waiting, children, ready, done: new Set() };
}

/** Look the task up (a rerun), then create it; resolves to whether it was created or existed. */
async function submitOne(
  queue: QueueClient,
  id: string,
  task: TaskDefinition,
  checkExisting: boolean,
): Promise<'created' | 'existing'> {
  if (checkExisting) {
    let existing: TaskDefinition | undefined;
    try {
      existing = await queue.task(id);
    } catch (e) {
      if (statusCode(e) !== 404) throw e;
    }
    if (existing) {
      if (!sameDefinition(existing, task)) {
        throw new ArchiveError(
          'conflict',
          `task ${id} already exists with a different definition (was the graph changed between runs?)`,
        );
      }
      return 'existing';
    }
  }
  try {
    await queue.createTask(id, task);
  } catch (e) {
    const age = Date.now() - Date.parse(task.created);
    if (statusCode(e) === 400 && age > 15 * 60_000) {
      throw new ArchiveError(
        'conflict',
        `${errorMessage(e)} (created ${task.created} is ${Math.round(age / 60_000)} min old: the queue ` +
          'accepts at most 15 min; tasks missing from an old decision task need a new decision task)',
      );
    }
    throw e;
  }
  return 'created';
}

/** The error naming every task that could not be submitted. */
function submitError(g: ResolvedGraph, report: SubmitReport): ArchiveError {
  const lines = report.failed.map((f) => `'${f.label}' (${f.taskId}): ${f.error}`);
  if (report.skipped.length) lines.push(`${report.skipped.length} dependent task(s) not submitted`);
  const permanent = report.failed.every((f) => !/5\d\d|ECONN|timeout|socket/i.test(f.error));
  return new ArchiveError(
    permanent ? 'conflict' : 'unavailable',
    `${report.failed.length} of ${g.order.length} tasks could not be submitted:\n  ${lines.join('\n  ')}`,
    { report },
  );
}

export async function submitTaskGraph(
  g: ResolvedGraph,
  queue: QueueClient,
  opts: SubmitOptions = {},
): Promise<SubmitReport> {
  const concurrency = Math.max(1, opts.concurrency ?? 50);
  const checkExisting = opts.checkExisting ?? true;
  const log = opts.log ?? silentLogger;
  const report: SubmitReport = { created: [], existing: [], failed: [], skipped: [] };
  const { waiting, children, ready, done } = schedule(g);
  let head = 0;

  const skipDescendants = (id: string, because: string) => {
    for (const c of children.get(id) ?? []) {
      if (done.has(c)) continue;
      done.add(c);
      report.skipped.push({ taskId: c, label: g.tasks[c]!.label, because });
      skipDescendants(c, because);
    }
  };
  const submitted = (id: string, how: 'created' | 'existing') => {
    done.add(id);
    report[how].push(id);
    log.debug(how === 'created' ? 'submit.created' : 'submit.exists', {
      taskId: id,
      label: g.tasks[id]!.label,
    });
    for (const c of children.get(id) ?? []) {
      const n = waiting.get(c)! - 1;
      waiting.set(c, n);
      if (n === 0 && !done.has(c)) ready.push(c);
    }
  };
  const failed = (id: string, e: unknown) => {
    done.add(id);
    const label = g.tasks[id]!.label;
    report.failed.push({ taskId: id, label, error: errorMessage(e) });
    log.error('submit.failed', { taskId: id, label, error: errorMessage(e) });
    skipDescendants(id, `depends on '${label}' (${id}), which failed`);
  };

  // parents first, at most `concurrency` requests in flight
  await new Promise<void>((resolve) => {
    let running = 0;
    const pump = () => {
      while (running < concurrency && head < ready.length) {
        const id = ready[head++]!;
        if (done.has(id)) continue;
        running++;
        submitOne(queue, id, g.tasks[id]!.task, checkExisting).then(
          (how) => {
            running--;
            submitted(id, how);
            pump();
          },
          (e) => {
            running--;
            failed(id, e);
            pump();
          },
        );
      }
      if (running === 0 && head >= ready.length) resolve();
    };
    pump();
  });

  log.info('submit.done', {
    created: report.created.length,
    existing: report.existing.length,
    failed: report.failed.length,
    skipped: report.skipped.length,
  });
  if (report.failed.length) throw submitError(g, report);
  return report;
}
