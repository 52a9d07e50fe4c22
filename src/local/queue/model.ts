// The embedded Queue's vocabulary: the limits upstream's queue enforces, the shapes a task and an
// artifact are stored in, and the checks and errors every part of the queue shares.
import { removeGivenScopes, satisfiesExpression } from 'taskcluster-lib-scopes';
import type { TaskDefinition, TaskRun, TaskStatus } from '../../taskcluster/types.js';
import { ApiError, type ScopeExpression, type TemporaryCredentials } from '../framework.js';

/** Priority levels from high to low, as upstream. */
export const PRIORITY_LEVELS = [
  'highest',
  'very-high',
  'high',
  'medium',
  'low',
  'very-low',
  'lowest',
] as const;
export type Priority = (typeof PRIORITY_LEVELS)[number];

/** How long a claim lasts before it must be reclaimed (upstream default claimTimeout 1200 s). */
export const CLAIM_TIMEOUT_MS = 20 * 60 * 1000;
/** How long claimWork waits for work before answering `{tasks: []}` (upstream 20 s). */
export const CLAIM_WORK_POLL_MS = 20 * 1000;
/** Upstream MAX_RUNS_ALLOWED. */
export const MAX_RUNS_ALLOWED = 50;
/** How far `created` (and an artifact's `expires`) may drift from the queue's clock. */
export const DRIFT_MS = 15 * 60 * 1000;
export const MAX_DEADLINE_MS = 5 * 24 * 60 * 60 * 1000 + DRIFT_MS;
/** How long after an `exception` a run still accepts artifacts. */
export const ARTIFACTS_AFTER_EXCEPTION_MS = 25 * 60 * 1000;

const SLUGID = /^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$/;
const RUN_ID = /^[1-9]*[0-9]+$/;
export const TASK_QUEUE_ID = /^[a-zA-Z0-9-_]{1,38}\/[a-z]([-a-z0-9]{0,36}[a-z0-9])?$/;
const ARTIFACT_NAME = /^[\x20-\x7e]+$/;

/** A task definition as the queue stores and serves it (task.json: every default filled in). */
export interface StoredTaskDefinition extends TaskDefinition {
  provisionerId: string;
  workerType: string;
  taskQueueId: string;
  schedulerId: string;
  projectId: string;
  taskGroupId: string;
  dependencies: string[];
  requires: 'all-completed' | 'all-resolved';
  routes: string[];
  priority: Priority;
  retries: number;
  expires: string;
  scopes: string[];
  tags: Record<string, string>;
  extra: Record<string, unknown>;
}

export interface ClaimedTaskItem {
  status: TaskStatus;
  runId: number;
  workerGroup: string;
  workerId: string;
  takenUntil: string;
  task: StoredTaskDefinition;
  credentials: TemporaryCredentials;
}

/** A task as the queue works on it: its definition, its runs and its times in ms. */
export interface TaskRecord {
  seq: number;
  taskId: string;
  def: StoredTaskDefinition;
  retriesLeft: number;
  runs: TaskRun[];
  deadline: number;
  expires: number;
}

export interface TaskRow {
  seq: number;
  task_id: string;
  definition: string;
  runs: string;
  retries_left: number;
  deadline: number;
  expires: number;
}

export interface ArtifactRow {
  task_id: string;
  run_id: number;
  name: string;
  storage_type: 'reference' | 'link' | 'error';
  content_type: string;
  details: string;
  expires: number;
}

export type Resolution = 'completed' | 'failed' | 'exception';
export type RequireScopes = (expr: ScopeExpression) => void;

/** JSON with object keys sorted, so equal definitions compare equal whatever the key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value as object).sort();
    return `{${keys
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function checkTaskId(value: string | undefined, what = 'taskId'): string {
  if (!value || !SLUGID.test(value)) {
    throw new ApiError('InvalidRequestArguments', `${what} '${value ?? ''}' is not a slugid`, {
      [what]: value,
    });
  }
  return value;
}

export function checkRunId(value: string | undefined): number {
  if (!value || !RUN_ID.test(value) || parseInt(value, 10) > 1000) {
    throw new ApiError('InvalidRequestArguments', `runId '${value ?? ''}' is not a valid run id`, {
      runId: value,
    });
  }
  return parseInt(value, 10);
}

export function checkArtifactName(value: string | undefined): string {
  if (!value || !ARTIFACT_NAME.test(value)) {
    throw new ApiError(
      'InvalidRequestArguments',
      `artifact name '${value ?? ''}' must be non-empty printable ASCII`,
      { name: value },
    );
  }
  return value;
}

/** A scope check for a principal holding `scopes` (a task created by a hook, say). */
export function scopeChecker(scopes: string[]): RequireScopes {
  return (expr) => {
    if (!satisfiesExpression(scopes, expr)) {
      const missing = removeGivenScopes(scopes, expr);
      throw new ApiError(
        'InsufficientScopes',
        `the given scopes do not satisfy ${JSON.stringify(expr)}; missing: ${JSON.stringify(missing)}`,
        { required: expr, missing },
      );
    }
  };
}

export function taskNotFound(taskId: string): ApiError {
  return new ApiError(
    'ResourceNotFound',
    `task ${taskId} does not exist; are you sure it was created?`,
    { taskId },
  );
}

export function runNotFound(taskId: string, runId: number): ApiError {
  return new ApiError('ResourceNotFound', `run ${runId} not found on task ${taskId}`, {
    taskId,
    runId,
  });
}
