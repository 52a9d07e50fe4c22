// Run action tasks on one machine: claim a task whose payload carries the ACTION_* context (the
// `tasks_for: action` branch of .taskcluster.yml), run `action-callback` in-process with the
// task's own temporary credentials (as taskcluster-proxy would give it), publish what it wrote
// to its public/ directory as `reference` artifacts (uploaded to S3), and resolve the run. The
// embedded services plus this runner make the whole Treeherder retrigger path testable locally.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { indexClient, queueClient, type Credentials } from '../taskcluster/client.js';
import type { ClaimedTask, TaskDefinition } from '../taskcluster/types.js';
import { publishDirectory, type ArtifactPublisher } from './publish.js';
import { errorMessage } from '../util/errors.js';
import { createLogger, silentLogger, type Logger } from '../util/log.js';
import {
  actionContextFromEnv,
  runActionCallback,
  type CallbackDeps,
  type CallbackResult,
} from '../actions/callback.js';

export { s3Publisher, type ArtifactPublisher, type S3PublisherSettings } from './publish.js';

export function isActionTask(task: Pick<TaskDefinition, 'payload' | 'tags'>): boolean {
  const env = task.payload?.env as Record<string, unknown> | undefined;
  return typeof env?.ACTION_CALLBACK === 'string';
}

export interface RunActionClaimOptions {
  rootUrl: string;
  publish: ArtifactPublisher;
  log?: Logger;
  now?: () => Date;
  defineTask?: CallbackDeps['defineTask'];
  retarget?: CallbackDeps['retarget'];
  /** Prefix of the S3 keys (default `tasks`). */
  keyPrefix?: string;
}

export interface ActionRunOutcome {
  taskId: string;
  runId: number;
  state: 'completed' | 'failed';
  result?: CallbackResult;
  error?: string;
  artifacts: string[];
}

/** Run one claimed action task to resolution. */
export async function runActionClaim(
  claim: ClaimedTask,
  opts: RunActionClaimOptions,
): Promise<ActionRunOutcome> {
  const taskId = claim.status.taskId;
  const runId = claim.runId;
  const creds: Credentials = claim.credentials;
  const queue = queueClient({ rootUrl: opts.rootUrl, credentials: creds });
  const index = indexClient({ rootUrl: opts.rootUrl, credentials: creds });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `action-${taskId}-`));
  const lines: string[] = [];
  const taskLog = createLogger({ json: true, write: (l) => lines.push(l), fields: { taskId } });
  const outer = opts.log ?? silentLogger;
  const outcome: ActionRunOutcome = { taskId, runId, state: 'failed', artifacts: [] };
  try {
    const ctx = {
      ...actionContextFromEnv((claim.task.payload.env ?? {}) as Record<string, string>),
      ownTaskId: taskId,
    };
    try {
      outcome.result = await runActionCallback(
        {
          callback: ctx.callback ?? '',
          taskGroupId: ctx.taskGroupId ?? '',
          taskId: ctx.taskId ?? null,
          input: ctx.input ?? null,
          ownTaskId: taskId,
        },
        {
          queue,
          index,
          log: taskLog,
          outDir: path.join(dir, 'public'),
          ...(opts.now ? { now: opts.now } : {}),
          ...(opts.defineTask ? { defineTask: opts.defineTask } : {}),
          ...(opts.retarget ? { retarget: opts.retarget } : {}),
        },
      );
      outcome.state = 'completed';
    } catch (e) {
      outcome.error = errorMessage(e);
      taskLog.error('action-failed', { error: outcome.error });
    }
    await fs.mkdir(path.join(dir, 'public', 'logs'), { recursive: true });
    await fs.writeFile(
      path.join(dir, 'public', 'logs', 'live_backing.log'),
      lines.join('\n') + '\n',
    );
    outcome.artifacts.push(
      ...(await publishDirectory(queue, claim, path.join(dir, 'public'), {
        publish: opts.publish,
        ...(opts.keyPrefix ? { keyPrefix: opts.keyPrefix } : {}),
      })),
    );
    if (outcome.state === 'completed') await queue.reportCompleted(taskId, runId);
    else await queue.reportFailed(taskId, runId);
    outer.info('action-task-resolved', { taskId, state: outcome.state, error: outcome.error });
    return outcome;
  } catch (e) {
    outer.error('action-task-crashed', { taskId, error: errorMessage(e) });
    await queue.reportException(taskId, runId, { reason: 'internal-error' }).catch(() => undefined);
    throw e;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export interface RunActionTasksOptions extends RunActionClaimOptions {
  /** Worker credentials holding queue:claim-work:<queue> and queue:worker-id:<group>/<id>. */
  credentials: Credentials;
  taskQueueId: string;
  workerGroup?: string;
  workerId?: string;
}

/** Claim (one long poll) and run at most one action task; null when none was pending. Tasks on
 * the queue that are not action tasks are left alone by the caller's choice of queue. */
export async function runActionTaskOnce(
  opts: RunActionTasksOptions,
): Promise<ActionRunOutcome | null> {
  const queue = queueClient({ rootUrl: opts.rootUrl, credentials: opts.credentials });
  const res = await queue.claimWork(opts.taskQueueId, {
    workerGroup: opts.workerGroup ?? 'local',
    workerId: opts.workerId ?? 'action-runner',
    tasks: 1,
  });
  const claim = res.tasks[0];
  if (!claim) return null;
  if (!isActionTask(claim.task)) {
    const q = queueClient({ rootUrl: opts.rootUrl, credentials: claim.credentials });
    await q.reportException(claim.status.taskId, claim.runId, { reason: 'malformed-payload' });
    return {
      taskId: claim.status.taskId,
      runId: claim.runId,
      state: 'failed',
      error: 'not an action task',
      artifacts: [],
    };
  }
  return runActionClaim(claim, opts);
}
