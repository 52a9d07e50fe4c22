// One claimed run's state and the helpers every step uses: the claim keeper, the task log, the
// stop signal (claim lost, shutdown, max-run-time), timed steps and artifact creation.
import path from 'node:path';
import type { ClaimedTask, ArtifactRequest } from '../../taskcluster/types.js';
import type { Credentials, QueueClient } from '../../taskcluster/client.js';
import { errorMessage } from '../../util/errors.js';
import { scrub, type Logger } from '../../util/log.js';
import { ClaimKeeper, statusCode } from '../claim.js';
import type { WorkerConfig } from '../config.js';
import type { ArchivePayload } from '../payload.js';
import { TaskLog } from '../task-log.js';
import { TaskStop, type Step } from './outcome.js';
import type { StepEvent, TaskResult } from './types.js';

/** An artifact request as published: an error artifact's message never carries a secret. */
function publishable(body: ArtifactRequest): ArtifactRequest {
  if (body.storageType !== 'error') return body;
  const message = scrub(body.message);
  return { ...body, message: message.length > 4096 ? message.slice(0, 4093) + '...' : message };
}

export interface TaskRunOptions {
  claim: ClaimedTask;
  config: WorkerConfig;
  /** The run's private (0700) directory; it holds the task log. */
  dir: string;
  result: TaskResult;
  workerLog: Logger;
  makeQueue: (credentials: Credentials) => QueueClient;
  onStep?: (event: StepEvent) => void;
}

export class TaskRun {
  readonly taskId: string;
  readonly runId: number;
  readonly claim: ClaimedTask;
  readonly dir: string;
  readonly result: TaskResult;
  readonly workerLog: Logger;
  readonly tlog: TaskLog;
  readonly keeper: ClaimKeeper;
  /** Artifacts and index entries never outlive the task. */
  readonly expires: string;
  readonly started: number;
  /** The step running (or last run): errors are classified by it. */
  step: Step = 'validate';
  payload: ArchivePayload | undefined;
  private readonly stopper = new AbortController();
  private readonly onStep?: (event: StepEvent) => void;

  constructor(opts: TaskRunOptions) {
    const { claim, config } = opts;
    this.claim = claim;
    this.taskId = claim.status.taskId;
    this.runId = claim.runId;
    this.dir = opts.dir;
    this.result = opts.result;
    this.workerLog = opts.workerLog;
    this.onStep = opts.onStep;
    this.tlog = new TaskLog(path.join(opts.dir, 'live_backing.log'), opts.workerLog);
    this.keeper = new ClaimKeeper({
      taskId: this.taskId,
      runId: this.runId,
      credentials: claim.credentials,
      takenUntil: claim.takenUntil,
      makeQueue: opts.makeQueue,
      timing: config,
      log: opts.workerLog,
      onLost: (why) => this.stop(new TaskStop('claim-lost', `claim lost: ${why}`)),
    });
    this.expires = new Date(claim.task.expires ?? claim.status.expires).toISOString();
    this.started = Date.now();
  }

  /** Aborted when the run is stopped; its reason is the TaskStop. */
  get signal(): AbortSignal {
    return this.stopper.signal;
  }

  stop(why: TaskStop): void {
    if (!this.stopper.signal.aborted) this.stopper.abort(why);
  }

  /** Start keeping the claim and log the run's start. */
  begin(): void {
    const claim = this.claim;
    this.keeper.start();
    this.tlog.info('task-start', {
      taskId: this.taskId,
      runId: this.runId,
      workerGroup: claim.workerGroup,
      workerId: claim.workerId,
      takenUntil: claim.takenUntil,
    });
  }

  /** Run step `s`, timing it; a stopped run does not start it unless `evenIfStopped`. */
  async timed<T>(s: Step, fn: () => Promise<T>, evenIfStopped = false): Promise<T> {
    this.step = s;
    if (this.signal.aborted && !evenIfStopped) throw this.signal.reason;
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      const ms = Date.now() - t0;
      const timings = this.result.timings;
      timings[s] = (timings[s] ?? 0) + ms / 1000;
      this.onStep?.({ taskId: this.taskId, runId: this.runId, step: s, ms });
    }
  }

  /** Fails fast when the run was stopped while a step was running. */
  checkStopped(): void {
    if (this.signal.aborted) throw this.signal.reason;
  }

  /** Create an artifact of a running run (refused once it is stopped). */
  async createArtifact(name: string, body: ArtifactRequest): Promise<void> {
    this.checkStopped();
    try {
      await this.keeper.queue().createArtifact(this.taskId, this.runId, name, publishable(body));
      this.tlog.info('artifact-created', { name, storageType: body.storageType });
    } catch (e) {
      if (statusCode(e) === 409) {
        this.keeper.markLost(`createArtifact ${name} refused: ${errorMessage(e)}`);
        this.checkStopped();
      }
      throw e;
    }
  }

  /**
   * Create an artifact even when the run was stopped for shutdown or max-run-time (the log
   * artifacts), but never once the claim is lost.
   */
  async createArtifactNoStop(name: string, body: ArtifactRequest): Promise<void> {
    if (this.keeper.lost) throw new TaskStop('claim-lost', 'claim lost');
    try {
      await this.keeper.queue().createArtifact(this.taskId, this.runId, name, publishable(body));
    } catch (e) {
      if (statusCode(e) === 409)
        this.keeper.markLost(`createArtifact ${name} refused: ${errorMessage(e)}`);
      throw e;
    }
  }
}
