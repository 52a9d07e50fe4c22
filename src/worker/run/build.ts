// The steps that make the archive, before anything is published: the payload, the build, the
// check against the decision task's prediction, and the harness's own tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../../util/errors.js';
import type { WorkerConfig } from '../config.js';
import { checkPayload, PAYLOAD_ERROR_ARTIFACT, type ArchivePayload } from '../payload.js';
import { chownTree, resolveIsolation, runTestCommand, type Isolation } from '../test-command.js';
import type { TaskRun } from './context.js';
import { exception, failed, TaskStop } from './outcome.js';
import type { ArchiveEngine, BuiltArchive } from './types.js';

/** Where the run writes its archives (inside its private directory). */
export interface ArchiveFiles {
  archiveFile: string;
  zipFile: string;
}

/**
 * 1. The payload, checked against its schema and the allow-list. A malformed one gets an error
 * artifact saying why, and resolves exception/malformed-payload.
 */
export async function validateStep(run: TaskRun, config: WorkerConfig): Promise<ArchivePayload> {
  const { tlog } = run;
  const check = await run.timed('validate', async () =>
    checkPayload(run.claim.task.payload, config.allowRepos),
  );
  if (!check.ok) {
    for (const line of check.errors) tlog.error('malformed-payload', { problem: line });
    const message = `malformed payload:\n${check.errors.map((l) => `- ${l}`).join('\n')}`;
    try {
      await run.createArtifact(PAYLOAD_ERROR_ARTIFACT, {
        storageType: 'error',
        expires: run.expires,
        reason: 'invalid-resource-on-worker',
        message,
      });
    } catch (e) {
      if (e instanceof TaskStop) throw e;
      tlog.warn('error-artifact-failed', { error: errorMessage(e) });
    }
    throw exception('malformed-payload', message);
  }
  const p = check.payload;
  run.payload = p;
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
  return p;
}

/** The engine's build options from the worker's configured limits. */
function buildPolicy(run: TaskRun, config: WorkerConfig) {
  const limits = config.limits ?? {};
  return {
    policy: {
      allowRepos: config.allowRepos,
      connectTimeoutMs: limits.connectTimeoutMs,
      idleTimeoutMs: limits.idleTimeoutMs,
      retries: limits.retries,
      maxRetryTimeMs: limits.maxRetryTimeMs,
      onFetchedBytes: (bytes: number) => {
        run.result.fetchedBytes = (run.result.fetchedBytes ?? 0) + bytes;
      },
    },
    limits: Object.fromEntries(
      Object.entries({
        maxFiles: limits.maxFiles,
        maxFileBytes: limits.maxFileBytes,
        maxTotalBytes: limits.maxTotalBytes,
      }).filter(([, v]) => v !== undefined),
    ),
  };
}

/** 2. Build the tar.gz and the zip of the payload's subdir. */
export async function buildStep(
  run: TaskRun,
  p: ArchivePayload,
  config: WorkerConfig,
  engine: ArchiveEngine,
  files: ArchiveFiles,
): Promise<BuiltArchive> {
  const { tlog } = run;
  return run.timed('build', async () => {
    const source = engine.parseSource(p.repository, p.repositoryType);
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
      ...buildPolicy(run, config),
      log: tlog.asLogger(),
      signal: run.signal,
      tmpDir: run.dir,
      out: files.archiveFile,
      zipOut: files.zipFile,
    });
    run.checkStopped();
    tlog.info('build-done', {
      sha256: r.sha256,
      size: r.size,
      treeDigest: r.treeDigest,
      files: r.files,
      zipSha256: r.zip?.sha256,
      zipSize: r.zip?.size,
    });
    if (!r.zip) throw new Error('the archive engine made no zip');
    return r as BuiltArchive;
  });
}

/**
 * 3. The built archive is the one the decision task predicted (tree digest, sha256 of the tar.gz
 * and of the zip). The decision task gave these to every downstream task: a different archive
 * must fail here, before it is stored or indexed, never later as downstream verify failures.
 */
export async function checkPredictionStep(
  run: TaskRun,
  p: ArchivePayload,
  archive: BuiltArchive,
): Promise<void> {
  const { tlog } = run;
  const what = `${p.subdir} of ${p.repository} at ${p.revision}`;
  await run.timed('digest-check', async () => {
    if (p.treeDigest && p.treeDigest !== archive.treeDigest) {
      throw failed(
        `tree digest mismatch for ${what}: ` +
          `the payload expects ${p.treeDigest} but the archived tree has ${archive.treeDigest}`,
      );
    }
    if (p.treeDigest) tlog.info('tree-digest-ok', { treeDigest: archive.treeDigest });
    if (p.sha256 && p.sha256 !== archive.sha256) {
      throw failed(
        `archive sha256 mismatch for ${what}: ` +
          `the decision task predicted ${p.sha256} but the worker built ${archive.sha256} ` +
          '(nothing was uploaded or indexed)',
      );
    }
    if (p.sha256) tlog.info('sha256-ok', { sha256: archive.sha256 });
    if (p.zipSha256 && p.zipSha256 !== archive.zip.sha256) {
      throw failed(
        `zip sha256 mismatch for ${what}: ` +
          `the decision task predicted ${p.zipSha256} but the worker built ${archive.zip.sha256} ` +
          '(nothing was uploaded or indexed)',
      );
    }
    if (p.zipSha256) tlog.info('zip-sha256-ok', { sha256: archive.zip.sha256 });
  });
}

/**
 * The task user's own directory, outside the worker's 0700 task directory: it holds a copy of
 * the tree (unpacked from the archive), HOME and TMPDIR, and nothing of the worker's.
 */
async function testScratch(
  run: TaskRun,
  config: WorkerConfig,
  engine: ArchiveEngine,
  archiveFile: string,
  archive: BuiltArchive,
  isolation: Isolation,
): Promise<{ scratch: string; tree: string }> {
  const testBase = config.testDir ?? os.tmpdir();
  await fs.promises.mkdir(testBase, { recursive: true });
  const scratch = await fs.promises.mkdtemp(
    path.join(testBase, `mozharness-test-${run.taskId}-${run.runId}-`),
  );
  const tree = path.join(scratch, 'tree');
  try {
    await engine.unpackArchive(archiveFile, tree, { sha256: archive.sha256 });
    await fs.promises.mkdir(path.join(scratch, 'home'));
    await fs.promises.mkdir(path.join(scratch, 'tmp'));
    if (isolation.user) await chownTree(scratch, isolation.user);
  } catch (e) {
    await fs.promises.rm(scratch, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  run.tlog.info('test-tree-unpacked', { dir: tree });
  return { scratch, tree };
}

/** 4. Run the payload's test command in a copy of the archived tree, as the task user. */
export async function testStep(
  run: TaskRun,
  p: ArchivePayload & { test: NonNullable<ArchivePayload['test']> },
  config: WorkerConfig,
  engine: ArchiveEngine,
  isolationOverride: Isolation | undefined,
  files: ArchiveFiles,
  archive: BuiltArchive,
): Promise<void> {
  const t = p.test;
  await run.timed('test', async () => {
    const isolation =
      isolationOverride ?? (await resolveIsolation(config.taskUser, config.testIsolation));
    const { scratch, tree } = await testScratch(
      run,
      config,
      engine,
      files.archiveFile,
      archive,
      isolation,
    );
    try {
      const remaining = p.maxRunTime * 1000 - (Date.now() - run.started);
      const outcome = await runTestCommand({
        command: t.command,
        cwd: tree,
        scratch,
        env: t.env,
        isolation,
        timeoutMs: Math.max(1, Math.min((t.maxRunTime ?? p.maxRunTime) * 1000, remaining)),
        log: run.tlog,
        signal: run.signal,
      });
      run.checkStopped();
      if (!outcome.ok) throw failed(`${outcome.reason}; nothing was uploaded`);
    } finally {
      await fs.promises.rm(scratch, { recursive: true, force: true }).catch(() => {});
    }
  });
}
