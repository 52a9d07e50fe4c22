// One claimed run of an archive task, from payload validation to resolution:
//   validate payload → allow-list → build (archive engine) → tree digest check → optional test
//   → upload (content-addressed, reused) → verify stored object → artifacts → extra index entries
//   → reportCompleted.
// Everything about the task uses the run's temporary credentials. A lost claim (409) abandons the
// run and publishes nothing; a failure uploads the task log and resolves failed/exception.
// The steps live in ./run/: build.ts (1–4), publish.ts (5–8), finish.ts (9), on the run's state
// in context.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildArchive as engineBuild,
  parseSource as engineParseSource,
  unpackArchive as engineUnpack,
} from '../archive/index.js';
import { indexClient, queueClient } from '../taskcluster/client.js';
import type { ClaimedTask } from '../taskcluster/types.js';
import { scrub, silentLogger } from '../util/log.js';
import type { WorkerConfig } from './config.js';
import type { ArchivePayload } from './payload.js';
import {
  buildStep,
  checkPredictionStep,
  testStep,
  validateStep,
  type ArchiveFiles,
} from './run/build.js';
import { TaskRun } from './run/context.js';
import { finishRun } from './run/finish.js';
import { classify, TaskStop } from './run/outcome.js';
import { artifactsStep, indexStep, uploadStep, verifyStep } from './run/publish.js';
import type { ArchiveEngine, TaskDeps, TaskResult } from './run/types.js';

export {
  classify,
  TaskStop,
  type ExceptionReason,
  type Resolution,
  type Step,
} from './run/outcome.js';
export type {
  ArchiveEngine,
  ArchiveStoreLike,
  StepEvent,
  TaskDeps,
  TaskResult,
} from './run/types.js';

export const defaultEngine: ArchiveEngine = {
  buildArchive: engineBuild,
  parseSource: engineParseSource,
  unpackArchive: engineUnpack,
};

/** Steps 2–8: build, check, test, store, verify and publish the archive of payload `p`. */
async function archiveSteps(
  run: TaskRun,
  p: ArchivePayload,
  config: WorkerConfig,
  deps: TaskDeps,
): Promise<void> {
  const engine = deps.engine ?? defaultEngine;
  const files: ArchiveFiles = {
    archiveFile: path.join(run.dir, 'archive.tar.gz'),
    zipFile: path.join(run.dir, 'archive.zip'),
  };
  const archive = await buildStep(run, p, config, engine, files);
  await checkPredictionStep(run, p, archive);
  if (p.test)
    await testStep(run, { ...p, test: p.test }, config, engine, deps.isolation, files, archive);
  const stored = await uploadStep(run, p, deps.store, files, archive);
  await verifyStep(run, deps.store, stored, archive);
  await artifactsStep(run, p, stored);
  if (p.index) {
    const makeIndex =
      deps.taskIndex ?? ((credentials) => indexClient({ rootUrl: config.rootUrl, credentials }));
    await indexStep(run, { ...p, index: p.index }, makeIndex, archive);
  }
}

/**
 * Run one claimed task to its resolution. `signal` aborting means the worker is shutting down:
 * the run stops and resolves `exception/worker-shutdown`.
 */
export async function runOneClaim(
  claim: ClaimedTask,
  config: WorkerConfig,
  deps: TaskDeps,
  signal?: AbortSignal,
): Promise<TaskResult> {
  const taskId = claim.status.taskId;
  const runId = claim.runId;
  const workerLog = (deps.log ?? silentLogger).child({ taskId, runId });
  const result: TaskResult = {
    taskId,
    runId,
    resolution: { state: 'completed' },
    timings: {},
    startedAt: new Date().toISOString(),
  };
  const baseDir = config.workDir ?? os.tmpdir();
  await fs.promises.mkdir(baseDir, { recursive: true });
  const dir = await fs.promises.mkdtemp(path.join(baseDir, `mozharness-task-${taskId}-${runId}-`));
  const run = new TaskRun({
    claim,
    config,
    dir,
    result,
    workerLog,
    makeQueue:
      deps.taskQueue ?? ((credentials) => queueClient({ rootUrl: config.rootUrl, credentials })),
    onStep: deps.onStep,
  });
  const onShutdown = () =>
    run.stop(new TaskStop('worker-shutdown', 'the worker is shutting down (grace period over)'));
  if (signal?.aborted) onShutdown();
  signal?.addEventListener('abort', onShutdown, { once: true });

  let maxRunTimer: NodeJS.Timeout | undefined;
  run.begin();
  try {
    const p = await validateStep(run, config);
    maxRunTimer = setTimeout(
      () =>
        run.stop(new TaskStop('max-run-time', `task exceeded its maxRunTime of ${p.maxRunTime} s`)),
      p.maxRunTime * 1000,
    );
    await archiveSteps(run, p, config, deps);
  } catch (e) {
    const reason = run.signal.aborted ? run.signal.reason : e;
    const outcome = classify(reason, run.step, run.payload);
    result.resolution = { ...outcome.resolution, message: scrub(outcome.resolution.message) };
  } finally {
    if (maxRunTimer) clearTimeout(maxRunTimer);
    signal?.removeEventListener('abort', onShutdown);
  }
  return finishRun(run, config, deps);
}
