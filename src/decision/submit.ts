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
export function sameDefinition(existing: Record<string, unknown>, ours: TaskDefinition): boolean {
  for (const [k, v] of Object.entries(ours)) {
    const e = existing[k];
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

export async function submitTaskGraph(
  g: ResolvedGraph,
  queue: QueueClient,
  opts: SubmitOptions = {},
): Promise<SubmitReport> {
  const concurrency = Math.max(1, opts.concurrency ?? 50);
  const checkExisting = opts.checkExisting ?? true;
  const log = opts.log ?? silentLogger;
  const report: SubmitReport = { created: [], existing: [], failed: [], skipped: [] };

  const waiting = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const id of g.order) {
    const inGraph = (g.tasks[id]!.task.dependencies ?? []).filter((d) => g.tasks[d]);
    waiting.set(id, inGraph.length);
    for (const d of inGraph) {
      const list = children.get(d);
      if (list) list.push(id);
      else children.set(d, [id]);
    }
  }
  // a FIFO with a read position: shift() would make scheduling quadratic on wide graphs
  const ready: string[] = g.order.filter((id) => waiting.get(id) === 0);
  let head = 0;
  const done = new Set<string>();

  const skipDescendants = (id: string, because: string) => {
    for (const c of children.get(id) ?? []) {
      if (done.has(c)) continue;
      done.add(c);
      report.skipped.push({ taskId: c, label: g.tasks[c]!.label, because });
      skipDescendants(c, because);
    }
  };

  const submitOne = async (id: string): Promise<void> => {
    const { label, task } = g.tasks[id]!;
    if (checkExisting) {
      let existing: Record<string, unknown> | undefined;
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
        report.existing.push(id);
        log.debug('submit.exists', { taskId: id, label });
        return;
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
    report.created.push(id);
    log.debug('submit.created', { taskId: id, label });
  };

  await new Promise<void>((resolve) => {
    let running = 0;
    const pump = () => {
      while (running < concurrency && head < ready.length) {
        const id = ready[head++]!;
        if (done.has(id)) continue;
        running++;
        submitOne(id)
          .then(
            () => {
              done.add(id);
              for (const c of children.get(id) ?? []) {
                const n = waiting.get(c)! - 1;
                waiting.set(c, n);
                if (n === 0 && !done.has(c)) ready.push(c);
              }
            },
            (e) => {
              done.add(id);
              const label = g.tasks[id]!.label;
              report.failed.push({ taskId: id, label, error: errorMessage(e) });
              log.error('submit.failed', { taskId: id, label, error: errorMessage(e) });
              skipDescendants(id, `depends on '${label}' (${id}), which failed`);
            },
          )
          .finally(() => {
            running--;
            if (running === 0 && head >= ready.length) resolve();
            else pump();
          });
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
  if (report.failed.length) {
    const lines = report.failed.map((f) => `'${f.label}' (${f.taskId}): ${f.error}`);
    if (report.skipped.length)
      lines.push(`${report.skipped.length} dependent task(s) not submitted`);
    const permanent = report.failed.every((f) => !/5\d\d|ECONN|timeout|socket/i.test(f.error));
    throw new ArchiveError(
      permanent ? 'conflict' : 'unavailable',
      `${report.failed.length} of ${g.order.length} tasks could not be submitted:\n  ${lines.join('\n  ')}`,
      { report },
    );
  }
  return report;
}
