// The claim loop: long-poll `claimWork` for up to `capacity` tasks, run each claimed run, and on
// shutdown (the signal aborts, e.g. SIGTERM) stop claiming, let running tasks finish within the
// grace period, then resolve what is left as exception/worker-shutdown (the queue reruns them).
import { queueClient, type Credentials, type QueueClient } from '../taskcluster/client.js';
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

/** The queue client `claimWork` is called with, and the one for a run's own credentials. */
function claimQueues(config: WorkerConfig, deps: WorkerDeps, registration?: Registration) {
  const makeQueue =
    deps.taskQueue ?? ((credentials) => queueClient({ rootUrl: config.rootUrl, credentials }));
  const staticQueue = registration
    ? undefined
    : (deps.queue ?? queueClient({ rootUrl: config.rootUrl, credentials: config.credentials }));
  /** The claim queue: with worker-manager, the credentials of the current registration. */
  const claimQueue = () => staticQueue ?? makeQueue(registration!.credentials);
  return { claimQueue, makeQueue };
}

/**
 * What every run is given: the task log store, the test isolation and the chain-of-trust key.
 * Refuses to start when test commands could not be confined as configured, or when the signing
 * key is missing or unreadable (configuration errors).
 */
async function taskDepsFor(config: WorkerConfig, deps: WorkerDeps, log: Logger): Promise<TaskDeps> {
  const logs = deps.logs ?? new S3TaskLogStore(workerS3Client(config.s3), config.s3);
  const isolation =
    deps.isolation ?? (await resolveIsolation(config.taskUser, config.testIsolation));
  log.info('test-isolation', {
    taskUser: isolation.user?.name ?? null,
    network: isolation.unshare.length ? 'none' : 'host',
    missing: isolation.missing.length ? isolation.missing : undefined,
  });
  const signingKey =
    deps.signingKey ??
    (config.chainOfTrustSigningKey ? readSigningKey(config.chainOfTrustSigningKey) : undefined);
  if (signingKey) log.info('chain-of-trust-key', { publicKey: publicKeyBase64(signingKey) });
  return { ...deps, logs, log: deps.log ?? silentLogger, isolation, signingKey };
}

/** The worker's metrics, served on `config.metricsPort` when set. */
async function startMetrics(config: WorkerConfig, deps: WorkerDeps, log: Logger) {
  const metrics =
    deps.metrics ?? (config.metricsPort !== undefined ? new WorkerMetrics() : undefined);
  const server =
    config.metricsPort !== undefined
      ? await metrics!.listen(config.metricsPort, config.metricsHost)
      : undefined;
  if (server) log.info('metrics', { url: server.url });
  return { metrics, server };
}

/** The runs a worker has going, and the tally of how its claims ended. */
class Runs {
  readonly summary: WorkerSummary = {
    claimed: 0,
    completed: 0,
    failed: 0,
    exception: 0,
    abandoned: 0,
    results: [],
  };
  private readonly running = new Map<string, Promise<void>>();
  /** Aborts the runs still going when the grace period is over. */
  private readonly shutdown = new AbortController();

  constructor(
    private readonly o: {
      config: WorkerConfig;
      deps: WorkerDeps;
      taskDeps: TaskDeps;
      log: Logger;
      metrics?: WorkerMetrics;
      registration?: Registration;
      makeQueue: (credentials: Credentials) => QueueClient;
    },
  ) {}

  get size(): number {
    return this.running.size;
  }

  /** Run a claimed task; its result is counted when it ends. */
  start(claim: ClaimedTask): void {
    const { config, deps, taskDeps, log, metrics, registration } = this.o;
    const summary = this.summary;
    const key = `${claim.status.taskId}/${claim.runId}`;
    summary.claimed++;
    metrics?.claimed.inc();
    log.info('claimed', {
      taskId: claim.status.taskId,
      runId: claim.runId,
      takenUntil: claim.takenUntil,
      running: this.running.size + 1,
    });
    const p = runOneClaim(claim, config, taskDeps, this.shutdown.signal)
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
      .finally(() => this.running.delete(key));
    this.running.set(key, p);
  }

  /** Claimed after shutdown began: hand it straight back to the queue. */
  async giveBack(claim: ClaimedTask): Promise<void> {
    const { log, makeQueue } = this.o;
    redact(claim.credentials.accessToken);
    this.summary.claimed++;
    try {
      const q = makeQueue(claim.credentials);
      await q.reportException(claim.status.taskId, claim.runId, { reason: 'worker-shutdown' });
      this.summary.exception++;
      log.info('returned-on-shutdown', { taskId: claim.status.taskId, runId: claim.runId });
    } catch (e) {
      this.summary.abandoned++;
      log.warn('return-on-shutdown-failed', {
        taskId: claim.status.taskId,
        error: errorMessage(e),
      });
    }
  }

  /** Until one of the runs ends, or `signal` aborts. */
  async waitForOne(signal: AbortSignal): Promise<void> {
    const waiting = new AbortController();
    const stopWaiting = () => waiting.abort();
    signal.addEventListener('abort', stopWaiting, { once: true });
    await Promise.race([...this.running.values(), sleepUnlessAborted(3_600_000, waiting.signal)]);
    signal.removeEventListener('abort', stopWaiting);
    waiting.abort();
  }

  /**
   * Once claiming is over: wait for the runs (with --once, until `signal` aborts); once it has,
   * give them the grace period, then stop the rest.
   */
  async drain(signal: AbortSignal): Promise<void> {
    const { config, log } = this.o;
    const running = this.running;
    // --once: the run may still be going when SIGTERM arrives; the grace period applies then too.
    if (!signal.aborted && running.size) {
      const stopWaiting = new AbortController();
      await Promise.race([
        Promise.all(running.values()),
        new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => resolve(), {
            once: true,
            signal: stopWaiting.signal,
          });
        }),
      ]);
      stopWaiting.abort();
    }
    if (signal.aborted) {
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
        this.shutdown.abort();
      }
    }
    await Promise.all(running.values());
  }
}

interface Poll {
  config: WorkerConfig;
  claimQueue: () => QueueClient;
  runs: Runs;
  signal: AbortSignal;
  log: Logger;
  registration?: Registration;
  metricsServer?: { close(): Promise<void> };
}

/**
 * A failed claimWork, the `failures`-th in a row (from 0): refused (401/403) stops the worker
 * with the scopes it needs; anything else is retried after a backoff that grows with the failures
 * in a row, the first of them reported to worker-manager.
 */
async function claimFailed(poll: Poll, e: unknown, failures: number): Promise<void> {
  const { config, log, registration } = poll;
  const code = statusCode(e);
  if (code === 401 || code === 403) {
    await poll.metricsServer?.close();
    throw new ArchiveError(
      'not-allowed',
      `claimWork on ${config.taskQueueId} was refused (${code}): ${errorMessage(e)} — the worker ` +
        `needs queue:claim-work:${config.taskQueueId} and queue:worker-id:${config.workerGroup}/${config.workerId}`,
    );
  }
  if (!failures) {
    void registration?.reportError('claimWork failed', e, { taskQueueId: config.taskQueueId });
  }
  const retryInMs = backoffDelay(failures, 1000, 30_000);
  log.warn('claim-work-failed', { error: errorMessage(e), retryInMs });
  await sleepUnlessAborted(retryInMs, poll.signal);
}

/** Claim and start tasks while there is capacity, until the signal aborts (or --once claimed). */
async function pollLoop(poll: Poll, capacity: number): Promise<void> {
  const { config, runs, signal, log } = poll;
  let claimFailures = 0; // in a row: the backoff of the next retry grows with them
  while (!signal.aborted) {
    if (config.once && runs.summary.claimed >= 1) break;
    const free = capacity - runs.size;
    if (free <= 0) {
      await runs.waitForOne(signal);
      continue;
    }
    // The poll ends the moment the signal aborts (its connection is closed); a worker that is
    // stopping never starts one.
    if (signal.aborted) break;
    let claims: ClaimedTask[];
    log.debug('claim-work', { taskQueueId: config.taskQueueId, tasks: free });
    try {
      claims = await claimWorkUntil(
        poll.claimQueue(),
        config.taskQueueId,
        { workerGroup: config.workerGroup, workerId: config.workerId, tasks: free },
        signal,
      );
      claimFailures = 0;
      if (signal.aborted) {
        // Answered just as the stop began: hand them back at once, unstarted.
        await Promise.all(claims.map((c) => runs.giveBack(c)));
        break;
      }
    } catch (e) {
      await claimFailed(poll, e, claimFailures++);
      continue;
    }
    for (const claim of claims) runs.start(claim);
    if (!claims.length) await sleepUnlessAborted(config.pollIntervalSeconds * 1000, signal);
  }
}

async function claimLoop(
  config: WorkerConfig,
  deps: WorkerDeps,
  log: Logger,
  registration: Registration | undefined,
): Promise<WorkerSummary> {
  const { claimQueue, makeQueue } = claimQueues(config, deps, registration);
  const taskDeps = await taskDepsFor(config, deps, log);
  const { metrics, server: metricsServer } = await startMetrics(config, deps, log);
  // Stops on the caller's signal, or when worker-manager removes the worker.
  const stopping = new AbortController();
  const signal = stopping.signal;
  if (deps.signal?.aborted) stopping.abort();
  deps.signal?.addEventListener('abort', () => stopping.abort(), { once: true });
  const runs = new Runs({ config, deps, taskDeps, log, metrics, registration, makeQueue });
  let stopReason: string | undefined;
  if (registration) {
    deps.onRegistered?.(registration);
    registration.keepRegistered((reason) => {
      stopReason = reason;
      log.warn('worker-removed', { reason, running: runs.size });
      stopping.abort();
    });
  }
  const capacity = config.once ? 1 : config.capacity;
  log.info('worker-start', {
    rootUrl: config.rootUrl,
    taskQueueId: config.taskQueueId,
    capacity,
    once: config.once,
    clientId: registration?.credentials.clientId ?? config.credentials?.clientId,
  });
  await pollLoop({ config, claimQueue, runs, signal, log, registration, metricsServer }, capacity);
  await runs.drain(signal);
  await metricsServer?.close();
  const summary = runs.summary;
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
