// The claim loop: long-poll `claimWork` for up to `capacity` tasks, run each claimed run, and on
// shutdown (the signal aborts, e.g. SIGTERM) stop claiming, let running tasks finish within the
// grace period, then resolve what is left as exception/worker-shutdown (the queue reruns them).
import { queueClient, type QueueClient } from '../taskcluster/client.js';
import type { ClaimedTask } from '../taskcluster/types.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { redact, silentLogger, type Logger } from '../util/log.js';
import { claimWorkUntil, statusCode } from './claim.js';
import type { WorkerConfig } from './config.js';
import { S3TaskLogStore, workerS3Client, type TaskLogStore } from './log-store.js';
import { runOneClaim, type TaskDeps, type TaskResult } from './run-task.js';
import { resolveIsolation } from './test-command.js';
import { publicKeyBase64, readSigningKey } from './cot.js';
import { WorkerMetrics } from './metrics.js';
import { backoffDelay, sleepUnlessAborted } from '../util/retry.js';
import { defaultWorkerManager, Registration, type WorkerManagerFactory } from './registration.js';

export interface WorkerDeps extends Omit<TaskDeps, 'logs'> {
  /** Queue client with the worker's own credentials (claimWork). Default: from config. */
  queue?: QueueClient;
  /** Where task logs are stored (default: the config's S3 bucket). */
  logs?: TaskLogStore;
  /** Aborting it shuts the worker down (SIGTERM). */
  signal?: AbortSignal;
  /** Called with each finished run. */
  onTaskResolved?: (result: TaskResult) => void;
  /** Where to count claims and resolutions (default: a registry of its own when metricsPort is set). */
  metrics?: WorkerMetrics;
  /**
   * Worker-manager clients, with the given credentials or anonymous (default: from the config's
   * rootUrl). Used only with `config.workerManager`; the claim queue is then `taskQueue` (or a
   * default client) holding the registered credentials, and `queue` is not used.
   */
  workerManager?: WorkerManagerFactory;
  /** Where `workerManager.staticSecretEnv` is looked up (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Called with the registration once the worker registered (and before it claims). */
  onRegistered?: (registration: Registration) => void;
}

export interface WorkerSummary {
  claimed: number;
  completed: number;
  failed: number;
  exception: number;
  abandoned: number;
  results: TaskResult[];
  /** Why the worker stopped on its own (e.g. worker-manager removed it). */
  stopReason?: string;
}

/**
 * Run the worker until `deps.signal` aborts (or, with `config.once`, until one task is resolved).
 * Resolves with a summary once every claimed run is resolved or abandoned.
 */
export async function runWorker(config: WorkerConfig, deps: WorkerDeps): Promise<WorkerSummary> {
  const log = (deps.log ?? silentLogger).child({
    workerGroup: config.workerGroup,
    workerId: config.workerId,
  });
  redact(config.credentials?.accessToken);
  redact(config.s3.secretAccessKey);
  const wmSettings = config.workerManager;
  const registration = wmSettings
    ? await Registration.register(
        { ...config, workerManager: wmSettings },
        deps.workerManager ?? defaultWorkerManager(config.rootUrl),
        log,
        deps.env,
      )
    : undefined;
  try {
    return await claimLoop(config, deps, log, registration);
  } catch (e) {
    // Only the worker's own failures reach here (a task's failure resolves that task).
    await registration?.reportError('Archive worker stopped on an error', e, {
      taskQueueId: config.taskQueueId,
    });
    throw e;
  } finally {
    registration?.stop();
  }
}

async function claimLoop(
  config: WorkerConfig,
  deps: WorkerDeps,
  log: Logger,
  registration: Registration | undefined,
): Promise<WorkerSummary> {
  const makeQueue =
    deps.taskQueue ?? ((credentials) => queueClient({ rootUrl: config.rootUrl, credentials }));
  const staticQueue = registration
    ? undefined
    : (deps.queue ?? queueClient({ rootUrl: config.rootUrl, credentials: config.credentials }));
  /** The claim queue: with worker-manager, the credentials of the current registration. */
  const claimQueue = () => staticQueue ?? makeQueue(registration!.credentials);
  const logs = deps.logs ?? new S3TaskLogStore(workerS3Client(config.s3), config.s3);
  // Refuses to start when test commands could not be confined as configured.
  const isolation =
    deps.isolation ?? (await resolveIsolation(config.taskUser, config.testIsolation));
  log.info('test-isolation', {
    taskUser: isolation.user?.name ?? null,
    network: isolation.unshare.length ? 'none' : 'host',
    missing: isolation.missing.length ? isolation.missing : undefined,
  });
  // A missing or unreadable signing key is a configuration error: the worker does not start.
  const signingKey =
    deps.signingKey ??
    (config.chainOfTrustSigningKey ? readSigningKey(config.chainOfTrustSigningKey) : undefined);
  if (signingKey) log.info('chain-of-trust-key', { publicKey: publicKeyBase64(signingKey) });
  const metrics =
    deps.metrics ?? (config.metricsPort !== undefined ? new WorkerMetrics() : undefined);
  const metricsServer =
    config.metricsPort !== undefined
      ? await metrics!.listen(config.metricsPort, config.metricsHost)
      : undefined;
  if (metricsServer) log.info('metrics', { url: metricsServer.url });
  const taskDeps: TaskDeps = {
    ...deps,
    logs,
    log: deps.log ?? silentLogger,
    isolation,
    signingKey,
  };
  // Stops on the caller's signal, or when worker-manager removes the worker.
  const stopping = new AbortController();
  const signal = stopping.signal;
  if (deps.signal?.aborted) stopping.abort();
  deps.signal?.addEventListener('abort', () => stopping.abort(), { once: true });
  let stopReason: string | undefined;
  if (registration) {
    deps.onRegistered?.(registration);
    registration.keepRegistered((reason) => {
      stopReason = reason;
      log.warn('worker-removed', { reason, running: running.size });
      stopping.abort();
    });
  }
  const capacity = config.once ? 1 : config.capacity;
  const summary: WorkerSummary = {
    claimed: 0,
    completed: 0,
    failed: 0,
    exception: 0,
    abandoned: 0,
    results: [],
  };
  const running = new Map<string, Promise<void>>();
  const shutdown = new AbortController(); // aborts the runs still going when the grace is over
  let claimFailures = 0; // in a row: the backoff of the next retry grows with them

  const start = (claim: ClaimedTask) => {
    const key = `${claim.status.taskId}/${claim.runId}`;
    summary.claimed++;
    metrics?.claimed.inc();
    log.info('claimed', {
      taskId: claim.status.taskId,
      runId: claim.runId,
      takenUntil: claim.takenUntil,
      running: running.size + 1,
    });
    const p = runOneClaim(claim, config, taskDeps, shutdown.signal)
      .then((r) => {
        summary[r.resolution.state]++;
        summary.results.push(r);
        metrics?.observe(r);
        deps.onTaskResolved?.(r);
      })
      .catch((e) => {
        summary.abandoned++;
        log.error('task-crashed', { taskId: claim.status.taskId, error: errorMessage(e) });
        void registration?.reportError('Archive worker crashed running a task', e, {
          taskId: claim.status.taskId,
          runId: claim.runId,
        });
      })
      .finally(() => running.delete(key));
    running.set(key, p);
  };

  /** Claimed after shutdown began: hand it straight back to the queue. */
  const giveBack = async (claim: ClaimedTask) => {
    redact(claim.credentials.accessToken);
    summary.claimed++;
    try {
      const q = deps.taskQueue
        ? deps.taskQueue(claim.credentials)
        : queueClient({ rootUrl: config.rootUrl, credentials: claim.credentials });
      await q.reportException(claim.status.taskId, claim.runId, { reason: 'worker-shutdown' });
      summary.exception++;
      log.info('returned-on-shutdown', { taskId: claim.status.taskId, runId: claim.runId });
    } catch (e) {
      summary.abandoned++;
      log.warn('return-on-shutdown-failed', {
        taskId: claim.status.taskId,
        error: errorMessage(e),
      });
    }
  };

  log.info('worker-start', {
    rootUrl: config.rootUrl,
    taskQueueId: config.taskQueueId,
    capacity,
    once: config.once,
    clientId: registration?.credentials.clientId ?? config.credentials?.clientId,
  });

  while (!signal?.aborted) {
    if (config.once && summary.claimed >= 1) break;
    const free = capacity - running.size;
    if (free <= 0) {
      const waiting = new AbortController();
      const stopWaiting = () => waiting.abort();
      signal?.addEventListener('abort', stopWaiting, { once: true });
      await Promise.race([...running.values(), sleepUnlessAborted(3_600_000, waiting.signal)]);
      signal?.removeEventListener('abort', stopWaiting);
      waiting.abort();
      continue;
    }
    // The poll ends the moment the signal aborts (its connection is closed); a worker that is
    // stopping never starts one.
    if (signal?.aborted) break;
    let claims: ClaimedTask[];
    log.debug('claim-work', { taskQueueId: config.taskQueueId, tasks: free });
    try {
      claims = await claimWorkUntil(
        claimQueue(),
        config.taskQueueId,
        { workerGroup: config.workerGroup, workerId: config.workerId, tasks: free },
        signal,
      );
      claimFailures = 0;
      if (signal?.aborted) {
        // Answered just as the stop began: hand them back at once, unstarted.
        await Promise.all(claims.map(giveBack));
        break;
      }
    } catch (e) {
      const code = statusCode(e);
      if (code === 401 || code === 403) {
        await metricsServer?.close();
        throw new ArchiveError(
          'not-allowed',
          `claimWork on ${config.taskQueueId} was refused (${code}): ${errorMessage(e)} — the worker ` +
            `needs queue:claim-work:${config.taskQueueId} and queue:worker-id:${config.workerGroup}/${config.workerId}`,
        );
      }
      if (!claimFailures) {
        void registration?.reportError('claimWork failed', e, { taskQueueId: config.taskQueueId });
      }
      const retryInMs = backoffDelay(claimFailures++, 1000, 30_000);
      log.warn('claim-work-failed', { error: errorMessage(e), retryInMs });
      await sleepUnlessAborted(retryInMs, signal);
      continue;
    }
    for (const claim of claims) start(claim);
    if (!claims.length) await sleepUnlessAborted(config.pollIntervalSeconds * 1000, signal);
  }

  // --once: the run may still be going when SIGTERM arrives; the grace period applies then too.
  if (!signal?.aborted && running.size) {
    const stopWaiting = new AbortController();
    await Promise.race([
      Promise.all(running.values()),
      new Promise<void>((resolve) => {
        signal?.addEventListener('abort', () => resolve(), {
          once: true,
          signal: stopWaiting.signal,
        });
      }),
    ]);
    stopWaiting.abort();
  }
  if (signal?.aborted) {
    log.info('worker-stopping', {
      running: running.size,
      graceSeconds: config.shutdownGraceSeconds,
    });
    if (running.size) {
      const grace = new AbortController();
      await Promise.race([
        Promise.all(running.values()),
        sleepUnlessAborted(config.shutdownGraceSeconds * 1000, grace.signal),
      ]);
      grace.abort();
    }
    if (running.size) {
      log.warn('grace-period-over', { running: running.size });
      shutdown.abort();
    }
  }
  await Promise.all(running.values());
  await metricsServer?.close();
  summary.stopReason = stopReason;
  log.info('worker-stopped', {
    reason: stopReason,
    claimed: summary.claimed,
    completed: summary.completed,
    failed: summary.failed,
    exception: summary.exception,
    abandoned: summary.abandoned,
  });
  return summary;
}
