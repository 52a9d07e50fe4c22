// The worker pools of the local forest: one claim loop per task queue, each long-polling
// claimWork as a real worker does and handing what it claims to the local runners. They run
// until stopped; stop() waits for the task each loop is running to resolve (a running command is
// killed through the runners' abort signal first).
import { queueClient } from '../taskcluster/client.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { sleepUnlessAborted } from '../util/retry.js';
import type { LocalRunner, RunnerKind } from './runners.js';
import type { LocalRunOutcome } from './task-runners.js';

export interface WorkerPoolsOptions {
  rootUrl: string;
  /** Credentials that may claim work from every queue (the embedded services' root). */
  credentials: { clientId: string; accessToken: string };
  taskQueueIds: string[];
  run: LocalRunner;
  log: Logger;
  /** Each task as it starts and as it resolves. */
  onStart?: (t: { taskId: string; label: string; taskQueueId: string }) => void;
  onResolved?: (o: LocalRunOutcome & { kind: RunnerKind; taskQueueId: string }) => void;
}

export interface WorkerPools {
  readonly taskQueueIds: string[];
  /** Tasks running now, by taskId. */
  readonly running: ReadonlyMap<string, { label: string; taskQueueId: string }>;
  stop(): Promise<void>;
}

const RETRY_MS = 1000;

export function startWorkerPools(o: WorkerPoolsOptions): WorkerPools {
  const queue = queueClient({ rootUrl: o.rootUrl, credentials: o.credentials });
  const running = new Map<string, { label: string; taskQueueId: string }>();
  let stopping = false;
  const stop = new AbortController();
  const stopped = new Promise<void>((r) => stop.signal.addEventListener('abort', () => r()));

  const loop = async (taskQueueId: string, index: number) => {
    const workerId = `local-${index + 1}`;
    while (!stopping) {
      let claims;
      try {
        const res = await Promise.race([
          queue.claimWork(taskQueueId, { workerGroup: 'local', workerId, tasks: 1 }),
          stopped.then(() => ({ tasks: [] })),
        ]);
        claims = res.tasks;
      } catch (e) {
        if (stopping) break;
        o.log.warn('local-claim-failed', { taskQueueId, error: errorMessage(e) });
        await sleepUnlessAborted(RETRY_MS, stop.signal);
        continue;
      }
      for (const claim of claims) {
        const taskId = claim.status.taskId;
        const label = claim.task.metadata.name;
        running.set(taskId, { label, taskQueueId });
        o.onStart?.({ taskId, label, taskQueueId });
        try {
          const outcome = await o.run(claim);
          o.onResolved?.({ ...outcome, taskQueueId });
        } finally {
          running.delete(taskId);
        }
      }
    }
  };
  const loops = o.taskQueueIds.map((q, i) => loop(q, i));
  return {
    taskQueueIds: [...o.taskQueueIds],
    running,
    async stop() {
      stopping = true;
      stop.abort();
      await Promise.allSettled(loops);
    },
  };
}
