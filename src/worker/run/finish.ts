// The end of a run, whatever happened: the task log (and chain of trust of a completed run) as
// artifacts, then the resolution. A lost claim publishes nothing more and resolves nothing.
import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { errorMessage } from '../../util/errors.js';
import { getBuffer } from '../../util/http.js';
import { statusCode } from '../claim.js';
import type { WorkerConfig } from '../config.js';
import {
  COT_ARTIFACT,
  COT_SIGNATURE_ARTIFACT,
  encodeChainOfTrust,
  readSigningKey,
  sha256Hex,
  signChainOfTrust,
} from '../cot.js';
import { LIVE_LOG_ARTIFACT, LOG_ARTIFACT, METADATA_ARTIFACT, ZIP_ARTIFACT } from '../payload.js';
import type { ArchivePayload } from '../payload.js';
import type { TaskRun } from './context.js';
import { TaskStop, type Resolution } from './outcome.js';
import type { StoredArchive, TaskDeps, TaskResult } from './types.js';

/** generic-worker's chain of trust: the sha256 of every artifact with content, signed. */
async function publishChainOfTrust(
  run: TaskRun,
  deps: TaskDeps,
  config: WorkerConfig,
  key: KeyObject,
  p: ArchivePayload,
  archive: StoredArchive,
): Promise<void> {
  const { taskId, runId, expires } = run;
  const metadata = await getBuffer(archive.metadataUrl);
  if (metadata.status !== 200) {
    throw new Error(
      `reading back ${archive.metadataUrl} for the chain of trust: HTTP ${metadata.status}`,
    );
  }
  const artifacts: Record<string, { sha256: string }> = {
    [p.artifactName]: { sha256: archive.sha256 },
    ...(archive.zip ? { [ZIP_ARTIFACT]: { sha256: archive.zip.sha256 } } : {}),
    [METADATA_ARTIFACT]: { sha256: sha256Hex(metadata.body) },
    [LOG_ARTIFACT]: { sha256: sha256Hex(await fs.promises.readFile(run.tlog.file)) },
  };
  const doc = encodeChainOfTrust({
    chainOfTrustVersion: 1,
    artifacts,
    task: run.claim.task as unknown as Record<string, unknown>,
    taskId,
    runId,
    workerGroup: config.workerGroup,
    workerId: config.workerId,
    environment: {},
  });
  const sig = signChainOfTrust(doc, key);
  const docUrl = await deps.logs.putRunFile(
    taskId,
    runId,
    'chain-of-trust.json',
    doc,
    'application/json',
  );
  const sigUrl = await deps.logs.putRunFile(
    taskId,
    runId,
    'chain-of-trust.json.sig',
    sig,
    'application/octet-stream',
  );
  await run.createArtifactNoStop(COT_ARTIFACT, {
    storageType: 'reference',
    expires,
    contentType: 'application/json',
    url: docUrl,
  });
  await run.createArtifactNoStop(COT_SIGNATURE_ARTIFACT, {
    storageType: 'reference',
    expires,
    contentType: 'application/octet-stream',
    url: sigUrl,
  });
  run.workerLog.info('chain-of-trust', { artifacts: Object.keys(artifacts) });
}

/** The task log as an artifact (an error artifact when it could not be stored), and its link. */
async function publishTaskLog(run: TaskRun, deps: TaskDeps): Promise<void> {
  const { tlog, expires } = run;
  tlog.info('task-end', { seconds: Math.round((Date.now() - run.started) / 100) / 10 });
  tlog.close();
  try {
    const url = await deps.logs.putTaskLog(run.taskId, run.runId, tlog.file);
    await run.createArtifactNoStop(LOG_ARTIFACT, {
      storageType: 'reference',
      expires,
      contentType: 'text/plain; charset=utf-8',
      url,
    });
  } catch (e) {
    if (run.keeper.lost) throw e;
    run.workerLog.warn('task-log-upload-failed', { error: errorMessage(e) });
    await run.createArtifactNoStop(LOG_ARTIFACT, {
      storageType: 'error',
      expires,
      reason: 'file-missing-on-worker',
      message: `the task log could not be stored: ${errorMessage(e)}`.slice(0, 4096),
    });
  }
  await run.createArtifactNoStop(LIVE_LOG_ARTIFACT, {
    storageType: 'link',
    expires,
    contentType: 'text/plain; charset=utf-8',
    artifact: LOG_ARTIFACT,
  });
}

/** Report the resolution to the queue, once the claim keeper has stopped. */
async function reportResolution(run: TaskRun, r: Resolution): Promise<void> {
  const { keeper, taskId, runId } = run;
  const q = keeper.queue();
  await keeper.stop();
  if (keeper.lost) throw new TaskStop('claim-lost', 'claim lost before resolution');
  if (r.state === 'completed') await q.reportCompleted(taskId, runId);
  else if (r.state === 'failed') await q.reportFailed(taskId, runId);
  else if (r.state === 'exception') await q.reportException(taskId, runId, { reason: r.reason });
  run.workerLog.info('resolved', {
    state: r.state,
    reason: r.state === 'exception' ? r.reason : undefined,
    message: r.state === 'completed' ? undefined : r.message,
  });
}

function logResolving(run: TaskRun, r: Resolution): void {
  const { tlog } = run;
  if (r.state === 'completed') tlog.info('resolving', { state: 'completed' });
  else if (r.state === 'failed') tlog.error('resolving', { state: 'failed', message: r.message });
  else if (r.state === 'exception')
    tlog.error('resolving', { state: 'exception', reason: r.reason, message: r.message });
}

/** 9. Publish the task log (and chain of trust), then resolve; clean up the run's directory. */
export async function finishRun(
  run: TaskRun,
  config: WorkerConfig,
  deps: TaskDeps,
): Promise<TaskResult> {
  const { result, keeper } = run;
  try {
    if (result.resolution.state === 'abandoned' || keeper.lost) {
      result.resolution = {
        state: 'abandoned',
        message: result.resolution.state === 'abandoned' ? result.resolution.message : 'claim lost',
      };
      run.tlog.warn('abandoned', { why: result.resolution.message });
      return result;
    }
    const r = result.resolution;
    logResolving(run, r);
    await run.timed(
      'log',
      async () => {
        await publishTaskLog(run, deps);
        const key =
          deps.signingKey ??
          (config.chainOfTrustSigningKey
            ? readSigningKey(config.chainOfTrustSigningKey)
            : undefined);
        if (r.state === 'completed' && key && result.archive && run.payload) {
          await publishChainOfTrust(run, deps, config, key, run.payload, result.archive);
        }
      },
      true,
    );
    await run.timed('resolve', () => reportResolution(run, r), true);
  } catch (e) {
    if (keeper.lost || statusCode(e) === 409 || e instanceof TaskStop) {
      result.resolution = { state: 'abandoned', message: `claim lost: ${errorMessage(e)}` };
      run.workerLog.warn('abandoned', { why: errorMessage(e) });
    } else {
      // Could not publish or resolve (queue unreachable): the claim will expire and the queue
      // retries the run; the archive key is content-addressed, so a rerun reuses it.
      run.workerLog.error('resolution-failed', { error: errorMessage(e) });
      result.resolution = { state: 'abandoned', message: `could not resolve: ${errorMessage(e)}` };
    }
  } finally {
    await keeper.stop();
    await fs.promises.rm(run.dir, { recursive: true, force: true }).catch(() => {});
    result.finishedAt = new Date().toISOString();
  }
  return result;
}
