// The set of local workers that `local run` and `local up` share: for one claimed run, pick the
// runner that plays the worker its payload is written for (an action task, a decision task, the
// archive worker, a generic-worker or a docker-worker payload) and run it to resolution. A runner
// that crashes resolves the run as an exception instead of leaving it claimed.
import path from 'node:path';
import { decisionTaskDefiner, retargetArchiveTask } from '../actions/define.js';
import { runActionClaim, s3Publisher } from './action-runner.js';
import { ArchiveStore } from '../storage/index.js';
import { queueClient } from '../taskcluster/client.js';
import type { ClaimedTask } from '../taskcluster/types.js';
import { errorMessage } from '../util/errors.js';
import { createLogger, type Logger } from '../util/log.js';
import {
  runOneClaim,
  S3TaskLogStore,
  validateWorkerConfig,
  workerS3Client,
  type WorkerConfig,
} from '../worker/index.js';
import type { EmbeddedS3 } from './embedded.js';
import type { Vcs } from './sample-repo.js';
import {
  runDecisionClaim,
  runDockerWorkerClaim,
  runGenericWorkerClaim,
  type LocalRunOutcome,
  type RunnerContext,
} from './task-runners.js';

export type RunnerKind = 'action' | 'decision' | 'archive' | 'generic' | 'docker' | 'unknown';

/**
 * Which local runner plays the worker for a claimed task: the task's `worker-implementation` tag
 * names it (the payload builders' names), never the payload's shape. Decision and action tasks
 * are docker-worker tasks run in-process here, told apart by their `kind` tag. A task whose
 * implementation no runner plays is refused, never run as another worker's payload.
 */
export function kindOf(claim: Pick<ClaimedTask, 'task'>): RunnerKind {
  const tags = claim.task.tags ?? {};
  switch (tags['worker-implementation']) {
    case 'mozharness-archive':
      return 'archive';
    case 'generic-worker':
      return 'generic';
    case 'docker-worker':
      if (tags.kind === 'action-callback') return 'action';
      if (tags.kind === 'decision-task' || tags.kind === 'cron-task') return 'decision';
      return 'docker';
    default:
      return 'unknown';
  }
}

export interface LocalRunnersOptions {
  rootUrl: string;
  credentials: { clientId: string; accessToken: string };
  s3: EmbeddedS3;
  /** This project's root: its taskcluster/ defines the kinds, its scripts play the images. */
  projectRoot: string;
  stateDir: string;
  /** The repository decision tasks check out (absent: decision tasks fail with a clear reason). */
  repo?: { path: string; vcs: Vcs };
  /** Repository URLs the archive worker may fetch from. */
  allowRepos: string[];
  log: Logger;
  signal?: AbortSignal;
  /** Every line a running task logs, as it logs it (the dashboard's live log). */
  onLogLine?: (taskId: string, line: string) => void;
}

/** Run one claimed task with the runner for its kind; never throws. */
export type LocalRunner = (claim: ClaimedTask) => Promise<LocalRunOutcome & { kind: RunnerKind }>;

function failure(claim: ClaimedTask, reason: string, start: number): LocalRunOutcome {
  return {
    taskId: claim.status.taskId,
    runId: claim.runId,
    label: claim.task.metadata.name,
    state: 'exception',
    reason,
    logTail: [reason],
    ms: Date.now() - start,
  };
}

type KindRunner = (claim: ClaimedTask) => Promise<LocalRunOutcome>;

/** The runner's own logger, also copied line by line to the live log of the task. */
function lineLogger(o: LocalRunnersOptions, taskId: string): Logger {
  if (!o.onLogLine) return o.log;
  const sink = o.onLogLine;
  return teeLogger(o.log, createLogger({ json: false, write: (l) => sink(taskId, l) }));
}

/** Resolve a run as malformed-payload, with the reason the outcome reports. */
async function refuse(o: LocalRunnersOptions, claim: ClaimedTask, reason: string) {
  const q = queueClient({ rootUrl: o.rootUrl, credentials: claim.credentials });
  await q
    .reportException(claim.status.taskId, claim.runId, { reason: 'malformed-payload' })
    .catch(() => {});
  return failure(claim, reason, Date.now());
}

/** The archive worker's own claim runner, on the embedded S3 and a one-shot worker config. */
function archiveRunner(o: LocalRunnersOptions): KindRunner {
  const s3Settings = { ...o.s3, prefix: 'mozharness' };
  const workerConfig = (taskQueueId: string): WorkerConfig =>
    validateWorkerConfig({
      rootUrl: o.rootUrl,
      credentials: o.credentials,
      taskQueueId,
      workerGroup: 'local',
      workerId: 'archive-1',
      capacity: 1,
      s3: s3Settings,
      allowRepos: o.allowRepos,
      shutdownGraceSeconds: 30,
      workDir: path.join(o.stateDir, 'work'),
      // On a development machine the test user may not exist: the task log says what is missing.
      testIsolation: 'best-effort',
      once: true,
    });
  const store = new ArchiveStore(workerS3Client(s3Settings), s3Settings);
  const logs = new S3TaskLogStore(workerS3Client(s3Settings), s3Settings);
  return async (claim) => {
    const start = Date.now();
    const r = await runOneClaim(claim, workerConfig(claim.task.taskQueueId), {
      store,
      logs,
      log: lineLogger(o, claim.status.taskId),
    });
    const res = r.resolution;
    return {
      taskId: claim.status.taskId,
      runId: claim.runId,
      label: claim.task.metadata.name,
      state: res.state === 'abandoned' ? 'exception' : res.state,
      ...(res.state !== 'completed' ? { reason: res.message } : {}),
      logTail: res.state !== 'completed' ? [res.message] : [],
      ms: Date.now() - start,
    };
  };
}

/** An action task: the action callback in-process, with the task's credentials. */
function actionRunner(o: LocalRunnersOptions, publish: RunnerContext['publish']): KindRunner {
  return async (claim) => {
    const start = Date.now();
    const r = await runActionClaim(claim, {
      rootUrl: o.rootUrl,
      publish,
      log: lineLogger(o, claim.status.taskId),
      // labels the push left out are generated from the in-tree kinds, as the action task's
      // checkout would (this project's taskcluster/ is the sample repository's)
      defineTask: decisionTaskDefiner({ root: path.join(o.projectRoot, 'taskcluster') }),
      retarget: retargetArchiveTask,
    });
    return {
      taskId: r.taskId,
      runId: r.runId,
      label: claim.task.metadata.name,
      state: r.state,
      ...(r.error ? { reason: r.error } : {}),
      logTail: r.error ? [r.error] : [],
      ms: Date.now() - start,
    };
  };
}

export function localRunners(o: LocalRunnersOptions): LocalRunner {
  const publish = s3Publisher(o.s3);
  const rctx: RunnerContext = {
    rootUrl: o.rootUrl,
    publish,
    log: o.log,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onLogLine ? { onLogLine: o.onLogLine } : {}),
  };
  const scriptsDir = path.join(o.projectRoot, 'taskcluster', 'scripts');
  const runners: Record<RunnerKind, KindRunner> = {
    action: actionRunner(o, publish),
    decision: async (claim) =>
      o.repo
        ? runDecisionClaim(claim, { ...rctx, repo: o.repo })
        : refuse(o, claim, 'no repository to check out: start `local up` with --repo'),
    archive: archiveRunner(o),
    docker: (claim) => runDockerWorkerClaim(claim, { ...rctx, scriptsDir }),
    generic: (claim) => runGenericWorkerClaim(claim, rctx),
    unknown: async (claim) => {
      const impl = claim.task.tags?.['worker-implementation'];
      return refuse(
        o,
        claim,
        `${impl === undefined ? 'no worker-implementation tag' : `worker-implementation '${impl}'`}: no local runner plays it`,
      );
    },
  };

  return async (claim) => {
    const kind = kindOf(claim);
    const start = Date.now();
    try {
      return { ...(await runners[kind](claim)), kind };
    } catch (e) {
      const q = queueClient({ rootUrl: o.rootUrl, credentials: claim.credentials });
      await q
        .reportException(claim.status.taskId, claim.runId, { reason: 'internal-error' })
        .catch(() => {});
      return { ...failure(claim, errorMessage(e), start), kind };
    }
  };
}

/** A logger that writes every line to both. */
function teeLogger(a: Logger, b: Logger): Logger {
  return {
    debug: (e, f) => (a.debug(e, f), b.debug(e, f)),
    info: (e, f) => (a.info(e, f), b.info(e, f)),
    warn: (e, f) => (a.warn(e, f), b.warn(e, f)),
    error: (e, f) => (a.error(e, f), b.error(e, f)),
    child: (fields) => teeLogger(a.child(fields), b.child(fields)),
  };
}
