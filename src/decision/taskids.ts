// Phase 5: deterministic task ids. Each id is a valid v4 slugid derived from a sha256 of the push,
// the decision task and the label, so running the same decision task again yields the same ids
// (and the queue's idempotent createTask, or the rerun check in submit, creates no duplicates).
import { deterministicSlugid } from '../taskcluster/task-ids.js';
import type { TaskGraph } from './graph.js';
import type { Parameters } from './parameters.js';

export { deterministicSlugid };

/** What every task id of one decision task is derived from, before the label. */
function seedPrefix(params: Parameters): string {
  return [
    'mozharness-archive/task-id/v1',
    params.project,
    params.head_repository,
    params.head_rev,
    params.pushlog_id,
    params.decision_task_id,
    '',
  ].join('\n');
}

export function taskIdSeed(params: Parameters, label: string): string {
  return seedPrefix(params) + label;
}

/**
 * label → taskId for every task of the graph; labels in `replaced` keep the id of the existing
 * task that replaces them.
 */
export function assignTaskIds(
  graph: TaskGraph,
  params: Parameters,
  replaced: Record<string, { taskId: string }> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  const prefix = seedPrefix(params);
  for (const label of graph.order) {
    out[label] = replaced[label]?.taskId ?? deterministicSlugid(prefix + label);
  }
  return out;
}
