// Phase 5: deterministic task ids. Each id is a valid v4 slugid derived from a sha256 of the push,
// the decision task and the label, so running the same decision task again yields the same ids
// (and the queue's idempotent createTask, or the rerun check in submit, creates no duplicates).
import { createHash } from 'node:crypto';
import type { TaskGraph } from './graph.js';
import type { Parameters } from './parameters.js';

/** A "nice" v4 slugid (first bit clear, so it never starts with '-') from a seed string. */
export function deterministicSlugid(seed: string): string {
  const b = createHash('sha256').update(seed).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40; // version 4
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  b[0] = b[0]! & 0x7f; // nice
  return Buffer.from(b).toString('base64url');
}

export function taskIdSeed(params: Parameters, label: string): string {
  return [
    'mozharness-archive/task-id/v1',
    params.project,
    params.repository,
    params.revision,
    params.pushlog_id,
    params.decision_task_id,
    label,
  ].join('\n');
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
  for (const label of graph.order) {
    out[label] = replaced[label]?.taskId ?? deterministicSlugid(taskIdSeed(params, label));
  }
  return out;
}
