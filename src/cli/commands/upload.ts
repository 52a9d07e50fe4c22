// `mozharness-archive upload <file>`: store an archive and its metadata document in S3 under its
// sha256, once. Thin: parse flags, call the ArchiveStore, print the public URL (or JSON).
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import type { StoredMetadata } from '../../storage/index.js';
import { ArchiveError, errorMessage } from '../../util/errors.js';
import { createLogger } from '../../util/log.js';
import { createProgress } from '../../util/progress.js';
import { printResult } from '../output.js';

/** The storage stage (and the AWS SDK) loads only when an upload runs. */
const loadStorage = () => import('../../storage/index.js');

interface UploadFlags {
  bucket?: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  publicBaseUrl?: string;
  metadata?: string;
  json?: boolean;
}

export interface UploadOutput {
  url: string;
  metadataUrl: string;
  key: string;
  reused: boolean;
  sha256: string;
  size: number;
}

/** Read a metadata document and check it describes this file. */
export async function readMetadataFile(
  metadataFile: string,
  actual: { sha256: string; size: number },
): Promise<StoredMetadata> {
  let doc: unknown;
  try {
    doc = JSON.parse(await fs.promises.readFile(metadataFile, 'utf8'));
  } catch (e) {
    throw new ArchiveError('usage', `cannot read metadata ${metadataFile}: ${errorMessage(e)}`, {
      file: metadataFile,
    });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ArchiveError('usage', `metadata ${metadataFile} is not a JSON object`);
  }
  const m = doc as Record<string, unknown>;
  if (m.sha256 !== actual.sha256) {
    throw new ArchiveError(
      'checksum-mismatch',
      `metadata ${metadataFile} says sha256 ${String(m.sha256)}, the archive has ${actual.sha256}`,
      { expected: m.sha256, actual: actual.sha256 },
    );
  }
  if (m.size !== actual.size) {
    throw new ArchiveError(
      'checksum-mismatch',
      `metadata ${metadataFile} says size ${String(m.size)}, the archive has ${actual.size} bytes`,
      { expected: m.size, actual: actual.size },
    );
  }
  const { validateArchiveMetadata } = await loadStorage();
  return validateArchiveMetadata(m, `metadata ${metadataFile}`);
}

export async function uploadArchive(file: string, flags: UploadFlags): Promise<UploadOutput> {
  const { ArchiveStore, createS3Client, describeArchiveFile, hashArchiveFile, s3SettingsFromEnv } =
    await loadStorage();
  const settings = s3SettingsFromEnv(process.env, {
    bucket: flags.bucket,
    prefix: flags.prefix,
    endpoint: flags.endpoint,
    region: flags.region,
    publicBaseUrl: flags.publicBaseUrl,
  });
  // Without a metadata document, store what the archive says about itself (checked by a safe
  // unpack): sha256, size, format, tree digest and file count.
  const meta: StoredMetadata = flags.metadata
    ? await readMetadataFile(flags.metadata, await hashArchiveFile(file))
    : await describeArchiveFile(file);
  const actual = { sha256: meta.sha256, size: meta.size };
  const log = createLogger();
  const store = new ArchiveStore(createS3Client(settings), settings, log);
  const bar = createProgress({ label: `upload ${path.basename(file)}`, total: actual.size });
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await store.put(file, meta, {
      onProgress: (sent, total) => bar.update(sent, total),
      signal: ac.signal,
    });
    bar.finish();
    return {
      url: r.url,
      metadataUrl: r.metadataUrl,
      key: r.key,
      reused: r.reused,
      sha256: actual.sha256,
      size: actual.size,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function register(program: Command): void {
  program
    .command('upload')
    .description(
      'Store an archive in S3 under <prefix>/sha256/<hex>.tar.gz with its metadata document\n' +
        '(<hex>.json), unless an identical object is already there; print its public URL.\n' +
        'Credentials, region and endpoint come from the standard AWS configuration\n' +
        '(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3, profiles...).',
    )
    .argument('<file>', 'the .tar.gz archive (e.g. from `mozharness-archive build --out`)')
    .option('--bucket <bucket>', 'S3 bucket (default $MOZHARNESS_ARCHIVE_BUCKET)')
    .option('--prefix <prefix>', 'key prefix (default $MOZHARNESS_ARCHIVE_PREFIX, or none)')
    .option('--endpoint <url>', 'S3-compatible endpoint (default $AWS_ENDPOINT_URL_S3)')
    .option('--region <region>', 'region (default $AWS_REGION)')
    .option('--public-base-url <url>', 'public URL of the bucket or CDN the URLs are built on')
    .option(
      '--metadata <file.json>',
      'metadata document (schemas/archive-metadata.json, e.g. from `build --json`); default:\n' +
        'what the archive says about itself (sha256, size, format, treeDigest, files)',
    )
    .option('--json', 'print {url, metadataUrl, key, reused, sha256, size} as JSON')
    .action(async (file: string, flags: UploadFlags) => {
      const out = await uploadArchive(file, flags);
      printResult(flags.json, out, () => [out.url]);
    });
}
