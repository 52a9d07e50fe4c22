// `mozharness-archive upload <file>`: store an archive and its metadata document in S3 under its
// sha256, once. Thin: parse flags, call the ArchiveStore, print the public URL (or JSON).
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ArchiveStore,
  createS3Client,
  s3SettingsFromEnv,
  type StoredMetadata,
} from '../../storage/index.js';
import { ArchiveError, errorMessage } from '../../util/errors.js';
import { createLogger } from '../../util/log.js';
import { createProgress } from '../../util/progress.js';
import { printResult } from '../output.js';

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

/** sha256 and size of a file, streamed; refuses anything that is not a gzip file. */
export async function hashArchiveFile(file: string): Promise<{ sha256: string; size: number }> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    throw new ArchiveError('usage', `cannot read archive ${file}: ${errorMessage(e)}`);
  }
  if (!st.isFile()) throw new ArchiveError('usage', `${file} is not a regular file`);
  const hash = createHash('sha256');
  let size = 0;
  let head: Buffer | undefined;
  for await (const chunk of fs.createReadStream(file)) {
    const b = chunk as Buffer;
    head ??= b.subarray(0, 2);
    hash.update(b);
    size += b.length;
  }
  if (!head || head.length < 2 || head[0] !== 0x1f || head[1] !== 0x8b) {
    throw new ArchiveError('usage', `${file} is not a gzip file (expected a .tar.gz archive)`);
  }
  return { sha256: hash.digest('hex'), size };
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
  if (m.format !== 'tar.gz') {
    throw new ArchiveError(
      'usage',
      `metadata ${metadataFile}: format must be "tar.gz", got ${JSON.stringify(m.format)}`,
    );
  }
  return m as StoredMetadata;
}

export async function uploadArchive(file: string, flags: UploadFlags): Promise<UploadOutput> {
  const settings = s3SettingsFromEnv(process.env, {
    bucket: flags.bucket,
    prefix: flags.prefix,
    endpoint: flags.endpoint,
    region: flags.region,
    publicBaseUrl: flags.publicBaseUrl,
  });
  const actual = await hashArchiveFile(file);
  const meta: StoredMetadata = flags.metadata
    ? await readMetadataFile(flags.metadata, actual)
    : { ...actual, format: 'tar.gz' };
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
      'metadata document (from `build --json`); default: sha256, size and format only',
    )
    .option('--json', 'print {url, metadataUrl, key, reused, sha256, size} as JSON')
    .action(async (file: string, flags: UploadFlags) => {
      const out = await uploadArchive(file, flags);
      printResult(flags.json, out, () => [out.url]);
    });
}
