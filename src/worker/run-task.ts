// One claimed run of an archive task, from payload validation to resolution:
//   validate payload → allow-list → build (archive engine) → tree digest check → optional test
//   → upload (content-addressed, reused) → verify stored object → artifacts → extra index entries
//   → reportCompleted.
// Everything about the task uses the run's temporary credentials. A lost claim (409) abandons the
// run and publishes nothing; a failure uploads the task log and resolves failed/exception.
import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildArchive as engineBuild,
  parseSource as engineParseSource,
  unpackArchive as engineUnpack,
  type ArchiveMetadata,
  type ArchiveResult,
  type BuildOptions,
  type Limits,
  type SourceSpec,
} from '../archive/index.js';
import {
  indexClient,
  queueClient,
  type Credentials,
  type IndexClient,
  type QueueClient,
} from '../taskcluster/client.js';
import type { ArtifactRequest, ClaimedTask } from '../taskcluster/types.js';
import { errorMessage, isArchiveError } from '../util/errors.js';
import { scrub, silentLogger, type Logger } from '../util/log.js';
import { ClaimKeeper, statusCode } from './claim.js';
import type { WorkerConfig } from './config.js';
import type { TaskLogStore } from './log-store.js';
import {
  checkPayload,
  LIVE_LOG_ARTIFACT,
  LOG_ARTIFACT,
  METADATA_ARTIFACT,
  PAYLOAD_ERROR_ARTIFACT,
  ZIP_ARTIFACT,
  type ArchivePayload,
} from './payload.js';
import { TaskLog } from './task-log.js';
import {
  COT_ARTIFACT,
  COT_SIGNATURE_ARTIFACT,
  encodeChainOfTrust,
  readSigningKey,
  sha256Hex,
  signChainOfTrust,
} from './cot.js';
import { chownTree, resolveIsolation, runTestCommand, type Isolation } from './test-command.js';

/** What the worker needs of the S3 store (src/storage ArchiveStore satisfies it). */
export interface ArchiveStoreLike {
  put(
    file: string,
    meta: ArchiveMetadata & Record<string, unknown>,
    opts?: {
      onProgress?: (sent: number, total: number) => void;
      signal?: AbortSignal;
      zipFile?: string;
    },
  ): Promise<{
    key: string;
    url: string;
    metadataUrl: string;
    reused: boolean;
    zipKey?: string;
    zipUrl?: string;
    zipReused?: boolean;
  }>;
  verify(sha256: string, size: number, zip?: { sha256: string; size: number }): Promise<boolean>;
}

/** The archive engine functions the worker calls (the real ones by default). */
export interface ArchiveEngine {
  buildArchive(opts: BuildOptions & { out?: string; zipOut?: string }): Promise<ArchiveResult>;
  parseSource(source: string, hint?: 'hg' | 'git'): SourceSpec;
  unpackArchive(
    file: string,
    dest: string,
    opts?: { sha256?: string; limits?: Partial<Limits> },
  ): Promise<{ files: number; bytes: number }>;
}

export const defaultEngine: ArchiveEngine = {
  buildArchive: engineBuild,
  parseSource: engineParseSource,
  unpackArchive: engineUnpack,
};

export interface TaskDeps {
  store: ArchiveStoreLike;
  logs: TaskLogStore;
  log?: Logger;
  engine?: ArchiveEngine;
  /** Queue client for a run's temporary credentials (default: taskcluster-client at config.rootUrl). */
  taskQueue?: (credentials: Credentials) => QueueClient;
  /** Index client for a run's temporary credentials. */
  taskIndex?: (credentials: Credentials) => IndexClient;
  /** Called after each step (tests and the benchmark observe progress and step durations). */
  onStep?: (event: StepEvent) => void;
  /** How test commands are confined (default: resolved from config.taskUser/testIsolation). */
  isolation?: Isolation;
  /** Signs the chain of trust of completed runs (default: read from config.chainOfTrustSigningKey). */
  signingKey?: KeyObject;
}

export interface StepEvent {
  taskId: string;
  runId: number;
  step: Step;
  ms: number;
}

export type Step =
  | 'validate'
  | 'build'
  | 'digest-check'
  | 'test'
  | 'upload'
  | 'verify'
  | 'artifacts'
  | 'index'
  | 'log'
  | 'resolve';

export type Resolution =
  | { state: 'completed' }
  | { state: 'failed'; message: string }
  | { state: 'exception'; reason: ExceptionReason; message: string }
  | { state: 'abandoned'; message: string };

export type ExceptionReason =
  | 'worker-shutdown'
  | 'malformed-payload'
  | 'resource-unavailable'
  | 'internal-error'
  | 'intermittent-task';

export interface TaskResult {
  taskId: string;
  runId: number;
  resolution: Resolution;
  archive?: ArchiveResult & {
    key: string;
    url: string;
    metadataUrl: string;
    reused: boolean;
    zipKey?: string;
    zipUrl?: string;
    zipReused?: boolean;
  };
  /** Seconds spent in each step. */
  timings: Partial<Record<Step, number>>;
  /** Bytes the archive's source transferred from the network (the subdir archive, git packs). */
  fetchedBytes?: number;
  /** When the worker started on the claim, and when the run was resolved (or abandoned). */
  startedAt: string;
  finishedAt?: string;
}

/** Why a run is being stopped from outside its own steps. */
export class TaskStop extends Error {
  constructor(
    readonly kind: 'claim-lost' | 'worker-shutdown' | 'max-run-time',
    message: string,
  ) {
    super(message);
    this.name = 'TaskStop';
  }
}

class Outcome extends Error {
  constructor(readonly resolution: Exclude<Resolution, { state: 'completed' }>) {
    super(resolution.message);
  }
}

/** An artifact request as published: an error artifact's message never carries a secret. */
function publishable(body: ArtifactRequest): ArtifactRequest {
  if (body.storageType !== 'error') return body;
  const message = scrub(body.message);
  return { ...body, message: message.length > 4096 ? message.slice(0, 4093) + '...' : message };
}

const failed = (message: string) => new Outcome({ state: 'failed', message });
const exception = (reason: ExceptionReason, message: string) =>
  new Outcome({ state: 'exception', reason, message });

/** Map an error from a step to the resolution Treeherder should show. */
export function classify(e: unknown, step: Step, payload?: ArchivePayload): Outcome {
  if (e instanceof Outcome) return e;
  if (e instanceof TaskStop) {
    if (e.kind === 'claim-lost') return new Outcome({ state: 'abandoned', message: e.message });
    if (e.kind === 'worker-shutdown') return exception('worker-shutdown', e.message);
    return failed(e.message);
  }
  const msg = errorMessage(e);
  if (isArchiveError(e)) {
    switch (e.code) {
      case 'not-found': {
        const what = payload
          ? `${payload.repository} has no ${payload.subdir} at revision ${payload.revision}`
          : 'not found';
        return failed(msg.includes(payload?.revision ?? '\0') ? msg : `${what}: ${msg}`);
      }
      case 'unavailable':
      case 'corrupt':
      case 'checksum-mismatch':
        return exception('intermittent-task', msg);
      case 'not-allowed':
      case 'unsafe-path':
      case 'malformed-payload':
      case 'usage':
        return exception('malformed-payload', msg);
      case 'limit-exceeded':
        return failed(msg);
      default:
        return exception(
          step === 'upload' || step === 'verify' ? 'intermittent-task' : 'internal-error',
          msg,
        );
    }
  }
  // Unwrapped S3 SDK / network errors during storage are transient as far as we can tell.
  if (step === 'upload' || step === 'verify' || step === 'index') {
    return exception('intermittent-task', msg);
  }
  return exception('internal-error', msg);
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
  const engine = deps.engine ?? defaultEngine;
  const makeQueue =
    deps.taskQueue ?? ((credentials) => queueClient({ rootUrl: config.rootUrl, credentials }));
  const makeIndex =
    deps.taskIndex ?? ((credentials) => indexClient({ rootUrl: config.rootUrl, credentials }));
  const timings: TaskResult['timings'] = {};
  const result: TaskResult = {
    taskId,
    runId,
    resolution: { state: 'completed' },
    timings,
    startedAt: new Date().toISOString(),
  };

  const baseDir = config.workDir ?? os.tmpdir();
  await fs.promises.mkdir(baseDir, { recursive: true });
  const dir = await fs.promises.mkdtemp(path.join(baseDir, `mozharness-task-${taskId}-${runId}-`));
  const tlog = new TaskLog(path.join(dir, 'live_backing.log'), workerLog);

  const stopper = new AbortController();
  const stop = (why: TaskStop) => {
    if (!stopper.signal.aborted) stopper.abort(why);
  };
  const keeper = new ClaimKeeper({
    taskId,
    runId,
    credentials: claim.credentials,
    takenUntil: claim.takenUntil,
    makeQueue,
    timing: config,
    log: workerLog,
    onLost: (why) => stop(new TaskStop('claim-lost', `claim lost: ${why}`)),
  });
  const onShutdown = () =>
    stop(new TaskStop('worker-shutdown', 'the worker is shutting down (grace period over)'));
  if (signal?.aborted) onShutdown();
  signal?.addEventListener('abort', onShutdown, { once: true });

  const task = claim.task;
  const taskExpires = task.expires ?? claim.status.expires;
  // Artifacts and index entries never outlive the task.
  const expires = new Date(taskExpires).toISOString();
  let step: Step = 'validate';
  let payload: ArchivePayload | undefined;
  let maxRunTimer: NodeJS.Timeout | undefined;
  const started = Date.now();
  const timed = async <T>(s: Step, fn: () => Promise<T>, evenIfStopped = false): Promise<T> => {
    step = s;
    if (stopper.signal.aborted && !evenIfStopped) throw stopper.signal.reason;
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      const ms = Date.now() - t0;
      timings[s] = (timings[s] ?? 0) + ms / 1000;
      deps.onStep?.({ taskId, runId, step: s, ms });
    }
  };
  /** Fails fast when the run was stopped while a step was running. */
  const checkStopped = () => {
    if (stopper.signal.aborted) throw stopper.signal.reason;
  };
  const createArtifact = async (name: string, body: ArtifactRequest) => {
    checkStopped();
    try {
      await keeper.queue().createArtifact(taskId, runId, name, publishable(body));
      tlog.info('artifact-created', { name, storageType: body.storageType });
    } catch (e) {
      if (statusCode(e) === 409) {
        keeper.markLost(`createArtifact ${name} refused: ${errorMessage(e)}`);
        checkStopped();
      }
      throw e;
    }
  };

  keeper.start();
  tlog.info('task-start', {
    taskId,
    runId,
    workerGroup: claim.workerGroup,
    workerId: claim.workerId,
    takenUntil: claim.takenUntil,
  });
  try {
    // 1. payload
    const check = await timed('validate', async () =>
      checkPayload(task.payload, config.allowRepos),
    );
    if (!check.ok) {
      for (const line of check.errors) tlog.error('malformed-payload', { problem: line });
      const message = `malformed payload:\n${check.errors.map((l) => `- ${l}`).join('\n')}`;
      try {
        await createArtifact(PAYLOAD_ERROR_ARTIFACT, {
          storageType: 'error',
          expires,
          reason: 'invalid-resource-on-worker',
          message,
        });
      } catch (e) {
        if (e instanceof TaskStop) throw e;
        tlog.warn('error-artifact-failed', { error: errorMessage(e) });
      }
      throw exception('malformed-payload', message);
    }
    payload = check.payload;
    const p = payload;
    tlog.info('payload', {
      repository: p.repository,
      revision: p.revision,
      subdir: p.subdir,
      treeDigest: p.treeDigest,
      sha256: p.sha256,
      artifactName: p.artifactName,
      maxRunTime: p.maxRunTime,
      test: p.test ? p.test.command : undefined,
    });
    maxRunTimer = setTimeout(
      () => stop(new TaskStop('max-run-time', `task exceeded its maxRunTime of ${p.maxRunTime} s`)),
      p.maxRunTime * 1000,
    );

    // 2. build
    const archiveFile = path.join(dir, 'archive.tar.gz');
    const zipFile = path.join(dir, 'archive.zip');
    const archive = await timed('build', async () => {
      const source = engine.parseSource(p.repository, p.repositoryType);
      const limits = config.limits ?? {};
      tlog.info('build-start', {
        source: source.kind,
        repository: p.repository,
        revision: p.revision,
        subdir: p.subdir,
      });
      const r = await engine.buildArchive({
        source,
        revision: p.revision,
        subdir: p.subdir,
        policy: {
          allowRepos: config.allowRepos,
          connectTimeoutMs: limits.connectTimeoutMs,
          idleTimeoutMs: limits.idleTimeoutMs,
          retries: limits.retries,
          maxRetryTimeMs: limits.maxRetryTimeMs,
          onFetchedBytes: (bytes) => {
            result.fetchedBytes = (result.fetchedBytes ?? 0) + bytes;
          },
        },
        limits: Object.fromEntries(
          Object.entries({
            maxFiles: limits.maxFiles,
            maxFileBytes: limits.maxFileBytes,
            maxTotalBytes: limits.maxTotalBytes,
          }).filter(([, v]) => v !== undefined),
        ),
        log: tlog.asLogger(),
        signal: stopper.signal,
        tmpDir: dir,
        out: archiveFile,
        zipOut: zipFile,
      });
      checkStopped();
      tlog.info('build-done', {
        sha256: r.sha256,
        size: r.size,
        treeDigest: r.treeDigest,
        files: r.files,
        zipSha256: r.zip?.sha256,
        zipSize: r.zip?.size,
      });
      if (!r.zip) throw new Error('the archive engine made no zip');
      return r as ArchiveResult & { zip: { sha256: string; size: number } };
    });

    // 3. tree digest
    await timed('digest-check', async () => {
      if (p.treeDigest && p.treeDigest !== archive.treeDigest) {
        throw failed(
          `tree digest mismatch for ${p.subdir} of ${p.repository} at ${p.revision}: ` +
            `the payload expects ${p.treeDigest} but the archived tree has ${archive.treeDigest}`,
        );
      }
      if (p.treeDigest) tlog.info('tree-digest-ok', { treeDigest: archive.treeDigest });
      // The decision task gave this digest to every downstream task: a different archive must
      // fail here, before it is stored or indexed, never later as downstream verify failures.
      if (p.sha256 && p.sha256 !== archive.sha256) {
        throw failed(
          `archive sha256 mismatch for ${p.subdir} of ${p.repository} at ${p.revision}: ` +
            `the decision task predicted ${p.sha256} but the worker built ${archive.sha256} ` +
            '(nothing was uploaded or indexed)',
        );
      }
      if (p.sha256) tlog.info('sha256-ok', { sha256: archive.sha256 });
      if (p.zipSha256 && p.zipSha256 !== archive.zip.sha256) {
        throw failed(
          `zip sha256 mismatch for ${p.subdir} of ${p.repository} at ${p.revision}: ` +
            `the decision task predicted ${p.zipSha256} but the worker built ${archive.zip.sha256} ` +
            '(nothing was uploaded or indexed)',
        );
      }
      if (p.zipSha256) tlog.info('zip-sha256-ok', { sha256: archive.zip.sha256 });
    });

    // 4. test
    if (p.test) {
      const t = p.test;
      await timed('test', async () => {
        const isolation =
          deps.isolation ?? (await resolveIsolation(config.taskUser, config.testIsolation));
        // The task user's own directory, outside the worker's 0700 task directory: it holds a copy
        // of the tree (unpacked from the archive), HOME and TMPDIR, and nothing of the worker's.
        const testBase = config.testDir ?? os.tmpdir();
        await fs.promises.mkdir(testBase, { recursive: true });
        const scratch = await fs.promises.mkdtemp(
          path.join(testBase, `mozharness-test-${taskId}-${runId}-`),
        );
        try {
          const tree = path.join(scratch, 'tree');
          await engine.unpackArchive(archiveFile, tree, { sha256: archive.sha256 });
          const home = path.join(scratch, 'home');
          const tmp = path.join(scratch, 'tmp');
          await fs.promises.mkdir(home);
          await fs.promises.mkdir(tmp);
          if (isolation.user) await chownTree(scratch, isolation.user);
          tlog.info('test-tree-unpacked', { dir: tree });
          const remaining = p.maxRunTime * 1000 - (Date.now() - started);
          const outcome = await runTestCommand({
            command: t.command,
            cwd: tree,
            scratch,
            env: t.env,
            isolation,
            timeoutMs: Math.max(1, Math.min((t.maxRunTime ?? p.maxRunTime) * 1000, remaining)),
            log: tlog,
            signal: stopper.signal,
          });
          checkStopped();
          if (!outcome.ok) throw failed(`${outcome.reason}; nothing was uploaded`);
        } finally {
          await fs.promises.rm(scratch, { recursive: true, force: true }).catch(() => {});
        }
      });
    }

    // 5. upload
    const meta: ArchiveMetadata & Record<string, unknown> = {
      ...archive,
      repository: p.repository,
      createdAt: new Date().toISOString(),
    };
    const stored = await timed('upload', async () => {
      tlog.info('upload-start', { sha256: archive.sha256, size: archive.size });
      const s = await deps.store.put(archiveFile, meta, { signal: stopper.signal, zipFile });
      checkStopped();
      tlog.info(s.reused ? 'upload-reused' : 'upload-done', {
        key: s.key,
        url: s.url,
        zipKey: s.zipKey,
      });
      return s;
    });
    result.archive = { ...archive, ...stored };

    // 6. verify
    await timed('verify', async () => {
      const ok = await deps.store.verify(archive.sha256, archive.size, archive.zip);
      checkStopped();
      if (!ok) {
        throw exception(
          'intermittent-task',
          `the stored objects ${stored.key} and ${stored.zipKey} do not have sha256 ${archive.sha256} ` +
            `(size ${archive.size}) and ${archive.zip.sha256} (size ${archive.zip.size})`,
        );
      }
      tlog.info('verified', { key: stored.key });
    });

    // 7. artifacts
    await timed('artifacts', async () => {
      await createArtifact(p.artifactName, {
        storageType: 'reference',
        expires,
        contentType: 'application/gzip',
        url: stored.url,
      });
      if (!stored.zipUrl) throw new Error('the archive store did not store the zip');
      await createArtifact(ZIP_ARTIFACT, {
        storageType: 'reference',
        expires,
        contentType: 'application/zip',
        url: stored.zipUrl,
      });
      await createArtifact(METADATA_ARTIFACT, {
        storageType: 'reference',
        expires,
        contentType: 'application/json',
        url: stored.metadataUrl,
      });
    });

    // 8. extra index entries, with the task's own scopes
    if (p.index) {
      const ix = p.index;
      await timed('index', async () => {
        const index = makeIndex(keeper.credentials);
        for (const namespace of ix.namespaces) {
          checkStopped();
          try {
            await index.insertTask(namespace, {
              taskId,
              rank: ix.rank,
              data: {
                sha256: archive.sha256,
                size: archive.size,
                treeDigest: archive.treeDigest,
                zip: { sha256: archive.zip.sha256, size: archive.zip.size },
                repository: p.repository,
                revision: archive.revision,
                subdir: archive.subdir,
                artifact: p.artifactName,
              },
              expires,
            });
            tlog.info('indexed', { namespace, rank: ix.rank });
          } catch (e) {
            const code = statusCode(e);
            if (code === 403 || code === 401) {
              throw failed(
                `inserting index entry ${namespace} was refused: ${errorMessage(e)} ` +
                  `(the task needs index:insert-task:${namespace} in task.scopes)`,
              );
            }
            if (code !== undefined && code >= 400 && code < 500) {
              throw failed(`inserting index entry ${namespace} failed: ${errorMessage(e)}`);
            }
            throw e;
          }
        }
      });
    }
  } catch (e) {
    const reason = stopper.signal.aborted ? stopper.signal.reason : e;
    const outcome = classify(reason, step, payload);
    result.resolution = { ...outcome.resolution, message: scrub(outcome.resolution.message) };
  } finally {
    if (maxRunTimer) clearTimeout(maxRunTimer);
    signal?.removeEventListener('abort', onShutdown);
  }

  try {
    if (result.resolution.state === 'abandoned' || keeper.lost) {
      result.resolution = {
        state: 'abandoned',
        message: result.resolution.state === 'abandoned' ? result.resolution.message : 'claim lost',
      };
      tlog.warn('abandoned', { why: result.resolution.message });
      return result;
    }
    const r = result.resolution;
    if (r.state === 'completed') tlog.info('resolving', { state: 'completed' });
    else if (r.state === 'failed') tlog.error('resolving', { state: 'failed', message: r.message });
    else if (r.state === 'exception')
      tlog.error('resolving', { state: 'exception', reason: r.reason, message: r.message });

    // 9. the task log, then the resolution
    await timed(
      'log',
      async () => {
        tlog.info('task-end', { seconds: Math.round((Date.now() - started) / 100) / 10 });
        tlog.close();
        try {
          const url = await deps.logs.putTaskLog(taskId, runId, tlog.file);
          await createLogArtifact({
            storageType: 'reference',
            expires,
            contentType: 'text/plain; charset=utf-8',
            url,
          });
        } catch (e) {
          if (keeper.lost) throw e;
          workerLog.warn('task-log-upload-failed', { error: errorMessage(e) });
          await createLogArtifact({
            storageType: 'error',
            expires,
            reason: 'file-missing-on-worker',
            message: `the task log could not be stored: ${errorMessage(e)}`.slice(0, 4096),
          });
        }
        await createArtifactNoStop(LIVE_LOG_ARTIFACT, {
          storageType: 'link',
          expires,
          contentType: 'text/plain; charset=utf-8',
          artifact: LOG_ARTIFACT,
        });
        const key =
          deps.signingKey ??
          (config.chainOfTrustSigningKey
            ? readSigningKey(config.chainOfTrustSigningKey)
            : undefined);
        if (r.state === 'completed' && key && result.archive && payload) {
          await publishChainOfTrust(key, payload, result.archive);
        }
      },
      true,
    );
    await timed(
      'resolve',
      async () => {
        const q = keeper.queue();
        await keeper.stop();
        if (keeper.lost) throw new TaskStop('claim-lost', 'claim lost before resolution');
        if (r.state === 'completed') await q.reportCompleted(taskId, runId);
        else if (r.state === 'failed') await q.reportFailed(taskId, runId);
        else if (r.state === 'exception')
          await q.reportException(taskId, runId, { reason: r.reason });
        workerLog.info('resolved', {
          state: r.state,
          reason: r.state === 'exception' ? r.reason : undefined,
          message: r.state === 'completed' ? undefined : r.message,
        });
      },
      true,
    );
  } catch (e) {
    if (keeper.lost || statusCode(e) === 409 || e instanceof TaskStop) {
      result.resolution = { state: 'abandoned', message: `claim lost: ${errorMessage(e)}` };
      workerLog.warn('abandoned', { why: errorMessage(e) });
    } else {
      // Could not publish or resolve (queue unreachable): the claim will expire and the queue
      // retries the run; the archive key is content-addressed, so a rerun reuses it.
      workerLog.error('resolution-failed', { error: errorMessage(e) });
      result.resolution = { state: 'abandoned', message: `could not resolve: ${errorMessage(e)}` };
    }
  } finally {
    await keeper.stop();
    await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => {});
    result.finishedAt = new Date().toISOString();
  }
  return result;

  // The log artifacts are published even when the run was stopped for shutdown or max-run-time,
  // but never once the claim is lost.
  async function createArtifactNoStop(name: string, body: ArtifactRequest): Promise<void> {
    if (keeper.lost) throw new TaskStop('claim-lost', 'claim lost');
    try {
      await keeper.queue().createArtifact(taskId, runId, name, publishable(body));
    } catch (e) {
      if (statusCode(e) === 409)
        keeper.markLost(`createArtifact ${name} refused: ${errorMessage(e)}`);
      throw e;
    }
  }
  // generic-worker's chain of trust: the sha256 of every artifact with content, signed.
  async function publishChainOfTrust(
    key: KeyObject,
    p: ArchivePayload,
    archive: NonNullable<TaskResult['archive']>,
  ): Promise<void> {
    const metadata = await fetch(archive.metadataUrl);
    if (!metadata.ok) {
      throw new Error(
        `reading back ${archive.metadataUrl} for the chain of trust: HTTP ${metadata.status}`,
      );
    }
    const artifacts: Record<string, { sha256: string }> = {
      [p.artifactName]: { sha256: archive.sha256 },
      ...(archive.zip ? { [ZIP_ARTIFACT]: { sha256: archive.zip.sha256 } } : {}),
      [METADATA_ARTIFACT]: { sha256: sha256Hex(Buffer.from(await metadata.arrayBuffer())) },
      [LOG_ARTIFACT]: { sha256: sha256Hex(await fs.promises.readFile(tlog.file)) },
    };
    const doc = encodeChainOfTrust({
      chainOfTrustVersion: 1,
      artifacts,
      task: task as unknown as Record<string, unknown>,
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
    await createArtifactNoStop(COT_ARTIFACT, {
      storageType: 'reference',
      expires,
      contentType: 'application/json',
      url: docUrl,
    });
    await createArtifactNoStop(COT_SIGNATURE_ARTIFACT, {
      storageType: 'reference',
      expires,
      contentType: 'application/octet-stream',
      url: sigUrl,
    });
    workerLog.info('chain-of-trust', { artifacts: Object.keys(artifacts) });
  }

  async function createLogArtifact(body: ArtifactRequest): Promise<void> {
    await createArtifactNoStop(LOG_ARTIFACT, body);
  }
}
