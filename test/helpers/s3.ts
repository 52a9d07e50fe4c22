// A real S3 API server for tests: s3rver on 127.0.0.1, random port, its own temp directory, one
// bucket created up front. Objects are readable anonymously (s3rver serves GET without a signature),
// so `publicBaseUrl` (`${endpoint}/${bucket}`) works for plain HTTP downloads.
//
//   const s3 = await startS3();
//   const client = s3.client();                      // an S3Client configured for this server
//   spawn(..., { env: { ...process.env, ...s3.env } }) // standard AWS_* variables for the CLI
//   s3.requests                                       // ['PUT /bucket/key', 'HEAD /bucket/key', ...]
//   s3.fail({ method: 'PUT', match: /partNumber=2/, status: 500 }) // inject faults
//   await s3.pendingMultipartUploads()               // upload ids neither completed nor aborted
//   await s3.close();
//
// Two gaps of s3rver 3.7.1 are filled in front of it so that the SDK behaves as against S3:
// AbortMultipartUpload (DELETE ?uploadId=) is not implemented by s3rver (405); here it removes the
// pending upload and answers 204 (404 NoSuchUpload when unknown).
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import fs from 'node:fs/promises';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export interface S3Fault {
  /** HTTP method to match (any when omitted). */
  method?: string;
  /** Matched against the request path and query, e.g. /partNumber=2/ or '/bucket/key'. */
  match?: RegExp | string;
  /** Status to answer with (default 500). 0 destroys the connection instead (a network error). */
  status?: number;
  /** How many matching requests fail (default: every one until removed). */
  times?: number;
}

export interface TestS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `${endpoint}/${bucket}`: objects are served there without authentication. */
  publicBaseUrl: string;
  /** s3rver's storage directory. */
  directory: string;
  /** Every request received, in order, as `<METHOD> <path?query>` (faulted ones included). */
  requests: string[];
  /** Standard AWS variables pointing at this server (for spawned CLIs / s3SettingsFromEnv). */
  env: Record<string, string>;
  /** A new S3Client for this server (path-style, checksums only when required). */
  client(): S3Client;
  /** Inject a fault; returns a function removing it. `faulted` counts the faults served. */
  fail(fault: S3Fault): () => void;
  faulted: number;
  /** Upload ids of multipart uploads neither completed nor aborted. */
  pendingMultipartUploads(): Promise<string[]>;
  /** Keys of all stored objects in the bucket, sorted. */
  listKeys(): Promise<string[]>;
  close(): Promise<void>;
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ACCESS_KEY_ID = 'S3RVER'; // s3rver's built-in account; V4 signatures are not checked
const SECRET_ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';

export async function startS3(opts: { bucket?: string } = {}): Promise<TestS3> {
  const bucket = opts.bucket ?? 'mozharness-archive-test';
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 's3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const address = (await server.run()) as { port: number };
  const httpServer = server.httpServer as http.Server;
  const endpoint = `http://127.0.0.1:${address.port}`;
  const uploadsDir = path.join(directory, bucket, '._S3rver_uploads');

  const requests: string[] = [];
  const faults: Array<S3Fault & { left: number }> = [];
  const clients: S3Client[] = [];
  const koa = server.callback() as (req: http.IncomingMessage, res: http.ServerResponse) => void;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '/';
    const method = (req.method ?? 'GET').toUpperCase();
    requests.push(`${method} ${url}`);

    const fault = faults.find(
      (f) =>
        f.left > 0 &&
        (!f.method || f.method.toUpperCase() === method) &&
        (f.match === undefined ||
          (typeof f.match === 'string' ? url.includes(f.match) : f.match.test(url))),
    );
    if (fault) {
      fault.left--;
      api.faulted++;
      if (fault.status === 0) {
        req.socket.destroy();
        return;
      }
      req.resume();
      req.on('end', () => {
        res.writeHead(fault.status ?? 500, { 'content-type': 'application/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>' +
            '<Message>injected fault</Message></Error>',
        );
      });
      return;
    }

    const parsed = new URL(url, endpoint);
    const uploadId = parsed.searchParams.get('uploadId');
    if (method === 'DELETE' && uploadId !== null) {
      // AbortMultipartUpload, missing from s3rver.
      req.resume();
      const dir = path.join(uploadsDir, path.basename(uploadId));
      const exists = await fs.stat(dir).then(
        () => true,
        () => false,
      );
      if (exists && path.basename(uploadId) === uploadId && uploadId !== '') {
        await fs.rm(dir, { recursive: true, force: true });
        res.writeHead(204).end();
      } else {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code>' +
            '<Message>The specified upload does not exist.</Message></Error>',
        );
      }
      return;
    }
    koa(req, res);
  };

  httpServer.removeAllListeners('request');
  httpServer.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    });
  });

  const api: TestS3 = {
    endpoint,
    region: REGION,
    bucket,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    publicBaseUrl: `${endpoint}/${bucket}`,
    directory,
    requests,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    },
    faulted: 0,
    client() {
      const c = new S3Client({
        endpoint,
        region: REGION,
        forcePathStyle: true,
        credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      clients.push(c);
      return c;
    },
    fail(fault) {
      const entry = { ...fault, left: fault.times ?? Number.POSITIVE_INFINITY };
      faults.push(entry);
      return () => {
        const i = faults.indexOf(entry);
        if (i >= 0) faults.splice(i, 1);
      };
    },
    async pendingMultipartUploads() {
      try {
        return (await fs.readdir(uploadsDir)).sort();
      } catch {
        return [];
      }
    },
    async listKeys() {
      const root = path.join(directory, bucket);
      const out: string[] = [];
      const walk = async (dir: string, prefix: string): Promise<void> => {
        for (const d of await fs.readdir(dir, { withFileTypes: true })) {
          if (d.isDirectory()) {
            if (d.name !== '._S3rver_uploads')
              await walk(path.join(dir, d.name), prefix + d.name + '/');
          } else if (d.name.endsWith('._S3rver_object')) {
            out.push(prefix + d.name.slice(0, -'._S3rver_object'.length));
          }
        }
      };
      await walk(root, '');
      return out.sort();
    },
    async close() {
      for (const c of clients) c.destroy();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
  return api;
}
