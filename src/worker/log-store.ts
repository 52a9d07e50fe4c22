// Where task logs go: the same bucket as the archives, under `<prefix>/logs/<taskId>/<runId>/
// live_backing.log` (text/plain), referenced by the `public/logs/live_backing.log` artifact.
import fs from 'node:fs';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, publicBaseUrl } from '../storage/settings.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import type { WorkerS3Settings } from './config.js';

export interface TaskLogStore {
  /** Store the finished log of one run; returns its public URL. */
  putTaskLog(taskId: string, runId: number, file: string): Promise<string>;
  /** Store another file of one run (the chain of trust) beside its log; returns its public URL. */
  putRunFile(
    taskId: string,
    runId: number,
    name: string,
    body: Buffer,
    contentType: string,
  ): Promise<string>;
}

export { publicBaseUrl };

export function taskLogKey(
  s: WorkerS3Settings,
  taskId: string,
  runId: number,
  name = 'live_backing.log',
): string {
  const prefix = (s.prefix ?? '').replace(/^\/+|\/+$/g, '');
  return `${prefix ? prefix + '/' : ''}logs/${taskId}/${runId}/${name}`;
}

/** An S3 client for the worker's settings (path-style with an endpoint; checksums when required). */
export function workerS3Client(s: WorkerS3Settings): S3Client {
  return createS3Client({ ...s, maxAttempts: 3 });
}

export class S3TaskLogStore implements TaskLogStore {
  constructor(
    private readonly client: S3Client,
    private readonly settings: WorkerS3Settings,
  ) {}

  async putTaskLog(taskId: string, runId: number, file: string): Promise<string> {
    const body = await fs.promises.readFile(file);
    return this.putRunFile(taskId, runId, 'live_backing.log', body, 'text/plain; charset=utf-8');
  }

  async putRunFile(
    taskId: string,
    runId: number,
    name: string,
    body: Buffer,
    contentType: string,
  ): Promise<string> {
    const key = taskLogKey(this.settings, taskId, runId, name);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ContentLength: body.length,
        }),
      );
    } catch (e) {
      throw new ArchiveError(
        'unavailable',
        `storing ${name} of task ${taskId} in S3 failed: ${errorMessage(e)}`,
        {
          key,
        },
      );
    }
    return `${publicBaseUrl(this.settings)}/${key}`;
  }
}
