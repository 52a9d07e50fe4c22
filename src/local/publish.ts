// Publishing what a locally-run task wrote: every file of its `public/` directory is uploaded to
// the (embedded) S3 bucket and becomes a `reference` artifact of the run, as a real worker's
// directory artifact would. Used by the local task runners and the local action runner.
import fs from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../storage/settings.js';
import type { QueueClient } from '../taskcluster/client.js';
import type { ClaimedTask } from '../taskcluster/types.js';

/** Uploads one file and returns the URL a `reference` artifact should point at. */
export type ArtifactPublisher = (key: string, file: string, contentType: string) => Promise<string>;

export interface S3PublisherSettings {
  endpoint?: string;
  region?: string;
  bucket: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  publicBaseUrl: string;
}

/** Publish to an S3 bucket (s3rver in `local up`), readable at `${publicBaseUrl}/<key>`. */
export function s3Publisher(s: S3PublisherSettings): ArtifactPublisher {
  const client = createS3Client(s);
  return async (key, file, contentType) => {
    await client.send(
      new PutObjectCommand({
        Bucket: s.bucket,
        Key: key,
        Body: await fs.readFile(file),
        ContentType: contentType,
      }),
    );
    return `${s.publicBaseUrl.replace(/\/+$/, '')}/${key}`;
  };
}

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.yml': 'text/yaml',
  '.log': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Relative paths of the regular files under `root`, sorted ([] when it does not exist). */
export async function listFiles(root: string, rel = ''): Promise<string[]> {
  let entries;
  try {
    entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const d of entries) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...(await listFiles(root, r)));
    else if (d.isFile()) out.push(r);
  }
  return out.sort();
}

/** Publish every file under `dir` as a `public/<path>` reference artifact of the claimed run. */
export async function publishDirectory(
  queue: QueueClient,
  claim: Pick<ClaimedTask, 'status' | 'runId' | 'task'>,
  dir: string,
  opts: { publish: ArtifactPublisher; keyPrefix?: string },
): Promise<string[]> {
  const taskId = claim.status.taskId;
  const expires = claim.task.expires ?? claim.status.expires;
  const names: string[] = [];
  for (const rel of await listFiles(dir)) {
    const name = `public/${rel}`;
    const contentType = CONTENT_TYPES[path.extname(rel)] ?? 'application/octet-stream';
    const key = `${opts.keyPrefix ?? 'tasks'}/${taskId}/${claim.runId}/${name}`;
    const url = await opts.publish(key, path.join(dir, rel), contentType);
    await queue.createArtifact(taskId, claim.runId, name, {
      storageType: 'reference',
      expires,
      contentType,
      url,
    });
    names.push(name);
  }
  return names;
}
