// The steps that publish a built and checked archive: store it by content hash, verify the
// stored objects, reference them as the task's artifacts, and insert the payload's extra index
// entries with the task's own scopes.
import type { ArchiveMetadata } from '../../archive/index.js';
import type { IndexClient } from '../../taskcluster/client.js';
import type { Credentials } from '../../taskcluster/client.js';
import { errorMessage } from '../../util/errors.js';
import { statusCode } from '../claim.js';
import { METADATA_ARTIFACT, ZIP_ARTIFACT, type ArchivePayload } from '../payload.js';
import type { ArchiveFiles } from './build.js';
import type { TaskRun } from './context.js';
import { exception, failed } from './outcome.js';
import type { ArchiveStoreLike, BuiltArchive, StoredArchive } from './types.js';

/** 5. Store the archive and its zip (content-addressed: an archive stored before is reused). */
export async function uploadStep(
  run: TaskRun,
  p: ArchivePayload,
  store: ArchiveStoreLike,
  files: ArchiveFiles,
  archive: BuiltArchive,
): Promise<StoredArchive> {
  const meta: ArchiveMetadata & Record<string, unknown> = {
    ...archive,
    repository: p.repository,
    createdAt: new Date().toISOString(),
  };
  const stored = await run.timed('upload', async () => {
    run.tlog.info('upload-start', { sha256: archive.sha256, size: archive.size });
    const s = await store.put(files.archiveFile, meta, {
      signal: run.signal,
      zipFile: files.zipFile,
    });
    run.checkStopped();
    run.tlog.info(s.reused ? 'upload-reused' : 'upload-done', {
      key: s.key,
      url: s.url,
      zipKey: s.zipKey,
    });
    return s;
  });
  run.result.archive = { ...archive, ...stored };
  return run.result.archive;
}

/** 6. The stored objects have the built archive's sha256 and size. */
export async function verifyStep(
  run: TaskRun,
  store: ArchiveStoreLike,
  stored: StoredArchive,
  archive: BuiltArchive,
): Promise<void> {
  await run.timed('verify', async () => {
    const ok = await store.verify(archive.sha256, archive.size, archive.zip);
    run.checkStopped();
    if (!ok) {
      throw exception(
        'intermittent-task',
        `the stored objects ${stored.key} and ${stored.zipKey} do not have sha256 ${archive.sha256} ` +
          `(size ${archive.size}) and ${archive.zip.sha256} (size ${archive.zip.size})`,
      );
    }
    run.tlog.info('verified', { key: stored.key });
  });
}

/** 7. The archive, its zip and its metadata as the task's (reference) artifacts. */
export async function artifactsStep(
  run: TaskRun,
  p: ArchivePayload,
  stored: StoredArchive,
): Promise<void> {
  const expires = run.expires;
  await run.timed('artifacts', async () => {
    await run.createArtifact(p.artifactName, {
      storageType: 'reference',
      expires,
      contentType: 'application/gzip',
      url: stored.url,
    });
    if (!stored.zipUrl) throw new Error('the archive store did not store the zip');
    await run.createArtifact(ZIP_ARTIFACT, {
      storageType: 'reference',
      expires,
      contentType: 'application/zip',
      url: stored.zipUrl,
    });
    await run.createArtifact(METADATA_ARTIFACT, {
      storageType: 'reference',
      expires,
      contentType: 'application/json',
      url: stored.metadataUrl,
    });
  });
}

/** An index refusal (4xx) is the task's fault: it fails, naming the scope it lacks. */
function indexRefusal(e: unknown, namespace: string): unknown {
  const code = statusCode(e);
  if (code === 403 || code === 401) {
    return failed(
      `inserting index entry ${namespace} was refused: ${errorMessage(e)} ` +
        `(the task needs index:insert-task:${namespace} in task.scopes)`,
    );
  }
  if (code !== undefined && code >= 400 && code < 500) {
    return failed(`inserting index entry ${namespace} failed: ${errorMessage(e)}`);
  }
  return e;
}

/** 8. The payload's extra index entries, inserted with the task's own scopes. */
export async function indexStep(
  run: TaskRun,
  p: ArchivePayload & { index: NonNullable<ArchivePayload['index']> },
  makeIndex: (credentials: Credentials) => IndexClient,
  archive: BuiltArchive,
): Promise<void> {
  const ix = p.index;
  await run.timed('index', async () => {
    const index = makeIndex(run.keeper.credentials);
    for (const namespace of ix.namespaces) {
      run.checkStopped();
      try {
        await index.insertTask(namespace, {
          taskId: run.taskId,
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
          expires: run.expires,
        });
        run.tlog.info('indexed', { namespace, rank: ix.rank });
      } catch (e) {
        throw indexRefusal(e, namespace);
      }
    }
  });
}
