import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  ArchiveStore,
  createS3Client,
  downloadVerified,
  s3SettingsFromEnv,
  type StoredMetadata,
} from '../src/storage/index.js';
import { isArchiveError } from '../src/util/errors.js';
import { createLogger } from '../src/util/log.js';
import { renderProgress, createProgress } from '../src/util/progress.js';
import { startS3, type TestS3 } from './helpers/s3.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function writeArchive(dir: string, name: string, bytes: number) {
  const data = randomBytes(bytes);
  const file = path.join(dir, name);
  await fs.writeFile(file, data);
  const meta: StoredMetadata = {
    sha256: sha256(data),
    size: data.length,
    format: 'tar.gz',
    formatVersion: 1,
    treeDigest: 'a'.repeat(64),
    files: 3,
    revision: 'b'.repeat(40),
    subdir: 'testing/mozharness',
    repository: 'https://hg.example.test/mozilla-central',
    createdAt: '2026-01-01T00:00:00.000Z',
  };
  return { file, data, meta };
}

const rejectsWith = async (p: Promise<unknown>, code: string, re?: RegExp) => {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isArchiveError(e), `expected ArchiveError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
};

describe('storage: settings', () => {
  it('reads the standard AWS variables, flags win', () => {
    const s = s3SettingsFromEnv(
      {
        AWS_DEFAULT_REGION: 'eu-west-1',
        AWS_ENDPOINT_URL: 'http://127.0.0.1:9/',
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'very-secret-key',
        MOZHARNESS_ARCHIVE_BUCKET: 'from-env',
      },
      { bucket: 'flag-bucket', prefix: '/releng/mozharness/' },
    );
    assert.equal(s.bucket, 'flag-bucket');
    assert.equal(s.prefix, 'releng/mozharness');
    assert.equal(s.region, 'eu-west-1');
    assert.equal(s.endpoint, 'http://127.0.0.1:9');
    assert.equal(s.forcePathStyle, true);
    const store = new ArchiveStore(createS3Client(s), s);
    const hex = 'c'.repeat(64);
    assert.equal(store.archiveKey(hex), `releng/mozharness/sha256/${hex}.tar.gz`);
    assert.equal(store.metadataKey(hex), `releng/mozharness/sha256/${hex}.json`);
    assert.equal(
      store.archiveUrl(hex),
      `http://127.0.0.1:9/flag-bucket/releng/mozharness/sha256/${hex}.tar.gz`,
    );
  });

  it('derives public URLs for AWS and honours a CDN base', () => {
    const aws = s3SettingsFromEnv({}, { bucket: 'mh-archives', region: 'us-west-2' });
    const hex = 'd'.repeat(64);
    const store = new ArchiveStore(createS3Client(aws), aws);
    assert.equal(store.archiveKey(hex), `sha256/${hex}.tar.gz`);
    assert.equal(
      store.archiveUrl(hex),
      `https://mh-archives.s3.us-west-2.amazonaws.com/sha256/${hex}.tar.gz`,
    );
    const cdn = s3SettingsFromEnv(
      {},
      { bucket: 'mh-archives', publicBaseUrl: 'https://cdn.example.test/mh/' },
    );
    assert.equal(
      new ArchiveStore(createS3Client(cdn), cdn).metadataUrl(hex),
      `https://cdn.example.test/mh/sha256/${hex}.json`,
    );
  });

  it('refuses bad bucket names, prefixes, URLs and digests', () => {
    assert.throws(() => s3SettingsFromEnv({}), /no S3 bucket configured/);
    assert.throws(() => s3SettingsFromEnv({}, { bucket: 'Bad_Bucket' }), /invalid S3 bucket/);
    assert.throws(() => s3SettingsFromEnv({}, { bucket: 'ok-bucket', prefix: 'a/../b' }), /\.\./);
    assert.throws(() => s3SettingsFromEnv({}, { bucket: 'ok-bucket', prefix: 'a//b' }), /prefix/);
    assert.throws(
      () => s3SettingsFromEnv({}, { bucket: 'ok-bucket', endpoint: 'ftp://x' }),
      /http or https/,
    );
    assert.throws(
      () => s3SettingsFromEnv({}, { bucket: 'ok-bucket', accessKeyId: 'only-the-id' }),
      /both/,
    );
    const s = s3SettingsFromEnv({}, { bucket: 'ok-bucket' });
    const store = new ArchiveStore(createS3Client(s), s);
    assert.throws(() => store.archiveKey('../../etc/passwd'), /not a sha256/);
    assert.throws(() => store.archiveKey('A'.repeat(64)), /not a sha256/);
  });
});

describe('storage: ArchiveStore against s3rver', function () {
  this.timeout(60_000);
  let s3: TestS3;
  let dir: string;
  let store: ArchiveStore;
  const lines: string[] = [];

  before(async () => {
    s3 = await startS3();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'storage-test-'));
    const settings = s3SettingsFromEnv(s3.env, { bucket: s3.bucket, prefix: 'mozharness' });
    const log = createLogger({ json: true, level: 'debug', write: (l) => lines.push(l) });
    store = new ArchiveStore(createS3Client(settings), settings, log);
  });
  after(async () => {
    await s3?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('round trip: uploads archive + metadata, serves them publicly, dedups the second time', async () => {
    const { file, data, meta } = await writeArchive(dir, 'small.tar.gz', 64 * 1024);
    assert.equal(await store.has(meta.sha256, meta.size), false);
    const progress: number[] = [];
    const first = await store.put(file, meta, { onProgress: (sent) => progress.push(sent) });
    assert.equal(first.reused, false);
    assert.equal(first.key, `mozharness/sha256/${meta.sha256}.tar.gz`);
    assert.equal(first.url, `${s3.publicBaseUrl}/mozharness/sha256/${meta.sha256}.tar.gz`);
    assert.equal(progress.at(-1), meta.size);

    const res = await fetch(first.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/gzip');
    assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
    const doc = (await (await fetch(first.metadataUrl)).json()) as StoredMetadata;
    assert.deepEqual(doc, meta);
    assert.deepEqual(await store.readMetadata(meta.sha256), meta);
    assert.equal(await store.verify(meta.sha256, meta.size), true);
    assert.equal(await store.verify(meta.sha256, meta.size + 1), false);

    const before = s3.requests.length;
    const second = await store.put(file, meta);
    assert.equal(second.reused, true);
    assert.equal(second.url, first.url);
    const later = s3.requests.slice(before);
    assert.ok(later.length > 0);
    assert.deepEqual(
      later.filter((r) => !r.startsWith('HEAD ')),
      [],
      `only HEADs the second time, got ${later.join(', ')}`,
    );
    assert.ok(lines.some((l) => JSON.parse(l).event === 'archive-reused'));
    assert.ok(!lines.join('\n').includes(s3.secretAccessKey));
  });

  it('an object of another size under the same key is not taken for the archive', async () => {
    const { file, meta } = await writeArchive(dir, 'differs.tar.gz', 3000);
    await s3.client().send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: store.archiveKey(meta.sha256),
        Body: 'short',
        Metadata: { sha256: meta.sha256 },
      }),
    );
    assert.equal(await store.has(meta.sha256, meta.size), false);
    assert.ok(lines.some((l) => JSON.parse(l).event === 'archive-object-differs'));
    const r = await store.put(file, meta);
    assert.equal(r.reused, false);
    assert.equal(await store.verify(meta.sha256, meta.size), true);
  });

  it('a 403 on HEAD (no s3:ListBucket) counts as absent; a 403 on PUT is not-allowed', async () => {
    const { file, meta } = await writeArchive(dir, 'forbidden.tar.gz', 1500);
    const stopHead = s3.fail({ method: 'HEAD', status: 403 });
    try {
      const r = await store.put(file, meta);
      assert.equal(r.reused, false);
      assert.ok(lines.some((l) => JSON.parse(l).event === 'head-refused'));
    } finally {
      stopHead();
    }
    const other = await writeArchive(dir, 'forbidden-put.tar.gz', 1500);
    const stopPut = s3.fail({ method: 'PUT', status: 403 });
    try {
      await rejectsWith(store.put(other.file, other.meta), 'not-allowed', /refused/);
    } finally {
      stopPut();
    }
  });

  it('restores a missing metadata document without re-uploading the archive', async () => {
    const { file, meta } = await writeArchive(dir, 'meta-missing.tar.gz', 1024);
    await store.put(file, meta);
    await s3
      .client()
      .send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: store.metadataKey(meta.sha256) }));
    assert.equal(await store.verify(meta.sha256, meta.size), false);
    const before = s3.requests.length;
    const r = await store.put(file, meta);
    assert.equal(r.reused, true);
    const puts = s3.requests.slice(before).filter((x) => x.startsWith('PUT '));
    assert.deepEqual(
      puts.map((p) => p.split('?')[0]),
      [`PUT /${s3.bucket}/${store.metadataKey(meta.sha256)}`],
    );
    assert.equal(await store.verify(meta.sha256, meta.size), true);
  });

  it('multipart: a 3-part upload round-trips', async () => {
    const { file, data, meta } = await writeArchive(dir, 'big.tar.gz', 11 * MiB);
    const before = s3.requests.length;
    const r = await store.put(file, meta, { partSize: 5 * MiB, queueSize: 2 });
    assert.equal(r.reused, false);
    const parts = s3.requests.slice(before).filter((x) => /[?&]partNumber=\d/.test(x));
    assert.equal(parts.length, 3);
    const got = Buffer.from(await (await fetch(r.url)).arrayBuffer());
    assert.equal(got.length, data.length);
    assert.equal(sha256(got), meta.sha256);
    assert.deepEqual(await s3.pendingMultipartUploads(), []);
  });

  it('multipart: a part failing with 500 aborts the upload; nothing becomes visible', async () => {
    const { file, meta } = await writeArchive(dir, 'fails.tar.gz', 11 * MiB);
    const keysBefore = await s3.listKeys();
    const faultsBefore = s3.faulted;
    const stop = s3.fail({ method: 'PUT', match: /[?&]partNumber=2(&|$)/, status: 500 });
    try {
      await rejectsWith(
        store.put(file, meta, { partSize: 5 * MiB, queueSize: 1 }),
        'unavailable',
        /upload s3:\/\/.*HTTP 500/,
      );
    } finally {
      stop();
    }
    assert.ok(s3.faulted - faultsBefore >= 2, 'the SDK retried the part');
    assert.ok(s3.requests.some((r) => r.startsWith('DELETE ') && r.includes('uploadId=')));
    assert.deepEqual(await s3.pendingMultipartUploads(), []);
    assert.deepEqual(await s3.listKeys(), keysBefore);
    assert.equal(await store.has(meta.sha256, meta.size), false);
  });

  it('refuses a file whose bytes do not match the metadata sha256 (single and multipart)', async () => {
    for (const size of [2048, 11 * MiB]) {
      const { file, meta } = await writeArchive(dir, `tampered-${size}.tar.gz`, size);
      const wrong = { ...meta, sha256: sha256(Buffer.from('something else')) };
      const keysBefore = await s3.listKeys();
      await rejectsWith(
        store.put(file, wrong, { partSize: 5 * MiB }),
        'checksum-mismatch',
        new RegExp(`has sha256 ${meta.sha256}, expected ${wrong.sha256}`),
      );
      assert.deepEqual(await s3.listKeys(), keysBefore);
      assert.deepEqual(await s3.pendingMultipartUploads(), []);
    }
    const { file, meta } = await writeArchive(dir, 'size.tar.gz', 100);
    const before = s3.requests.length;
    await rejectsWith(store.put(file, { ...meta, size: 99 }), 'checksum-mismatch', /100 bytes/);
    assert.equal(s3.requests.length, before, 'refused before any request');
    await rejectsWith(store.put(path.join(dir, 'missing'), meta), 'usage', /cannot read/);
  });

  it('a cancelled upload leaves nothing behind', async () => {
    const { file, meta } = await writeArchive(dir, 'cancel.tar.gz', 16 * MiB);
    const ac = new AbortController();
    const p = store.put(file, meta, {
      partSize: 5 * MiB,
      queueSize: 1,
      onProgress: (sent) => {
        if (sent > 0) ac.abort();
      },
      signal: ac.signal,
    });
    await rejectsWith(p, 'unavailable', /cancelled/);
    assert.deepEqual(await s3.pendingMultipartUploads(), []);
    assert.equal(await store.has(meta.sha256, meta.size), false);
  });

  it('an unreachable S3 endpoint is an intermittent error naming bucket and key', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const s = s3SettingsFromEnv(
      { ...s3.env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` },
      { bucket: s3.bucket, maxAttempts: 1 },
    );
    const down = new ArchiveStore(createS3Client(s), s);
    await assert.rejects(down.has('e'.repeat(64), 1), (e: unknown) => {
      assert.ok(isArchiveError(e, 'unavailable'));
      assert.match(e.message, new RegExp(`s3://${s3.bucket}/sha256/e{64}\\.tar\\.gz`));
      assert.ok(!e.message.includes(s3.secretAccessKey));
      return true;
    });
  });
});

describe('storage: downloadVerified', function () {
  this.timeout(30_000);
  let server: http.Server;
  let base: string;
  let dir: string;
  const body = randomBytes(300 * 1024);
  const digest = sha256(body);
  const hits = new Map<string, number>();

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'download-test-'));
    server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      const n = (hits.get(url) ?? 0) + 1;
      hits.set(url, n);
      const full = () => {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      };
      const truncated = () => {
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 1000), () => res.destroy());
      };
      if (url === '/good') return full();
      if (url === '/redirect') {
        res.writeHead(303, { location: '/good' });
        return res.end();
      }
      if (url === '/redirect-away') {
        res.writeHead(302, { location: 'http://elsewhere.invalid/good' });
        return res.end();
      }
      if (url === '/flaky') return n === 1 ? (res.writeHead(500), res.end('oops')) : full();
      if (url === '/always-500') return (res.writeHead(503), res.end());
      if (url === '/truncated') return truncated();
      if (url === '/truncated-once') return n === 1 ? truncated() : full();
      if (url === '/stall-once') {
        if (n === 1) {
          res.writeHead(200, { 'content-length': body.length });
          res.write(body.subarray(0, 10));
          return; // never finishes
        }
        return full();
      }
      res.writeHead(404);
      res.end('no such thing');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await fs.rm(dir, { recursive: true, force: true });
  });

  const fast = { retries: 3, baseDelayMs: 5 };
  const leftovers = async () => (await fs.readdir(dir)).filter((f) => f.endsWith('.partial'));

  it('downloads and verifies; follows redirects', async () => {
    const dest = path.join(dir, 'good.tar.gz');
    const seen: number[] = [];
    const r = await downloadVerified(`${base}/good`, dest, {
      sha256: digest,
      size: body.length,
      progress: (d) => seen.push(d),
    });
    assert.deepEqual(r, { sha256: digest, size: body.length });
    assert.deepEqual(await fs.readFile(dest), body);
    assert.equal(seen.at(-1), body.length);
    const r2 = await downloadVerified(`${base}/redirect`, path.join(dir, 'sub', 'r.tar.gz'), {
      sha256: digest.toUpperCase(),
    });
    assert.equal(r2.sha256, digest);
    assert.deepEqual(await leftovers(), []);
  });

  it('checks the allow-list at the first URL and at every redirect hop', async () => {
    const here = new URL(base).host;
    const allowUrl = (u: URL) => u.host === here;
    const dest = path.join(dir, 'allowed.tar.gz');
    assert.equal((await downloadVerified(`${base}/redirect`, dest, { allowUrl })).sha256, digest);
    await assert.rejects(
      downloadVerified(`${base}/redirect-away`, path.join(dir, 'away'), { ...fast, allowUrl }),
      (e: unknown) =>
        isArchiveError(e, 'not-allowed') && /elsewhere\.invalid/.test((e as Error).message),
    );
    await assert.rejects(
      downloadVerified(`${base}/good`, path.join(dir, 'first'), { allowUrl: () => false }),
      (e: unknown) => isArchiveError(e, 'not-allowed'),
    );
    assert.deepEqual(await leftovers(), []);
    await assert.rejects(fs.stat(path.join(dir, 'away')));
  });

  it('refuses a wrong sha256, naming both digests; dest stays as it was', async () => {
    const dest = path.join(dir, 'kept.tar.gz');
    await fs.writeFile(dest, 'previous');
    const wrong = sha256(Buffer.from('nope'));
    await rejectsWith(
      downloadVerified(`${base}/good`, dest, { sha256: wrong }),
      'checksum-mismatch',
      new RegExp(`expected ${wrong}, got ${digest}`),
    );
    assert.equal(await fs.readFile(dest, 'utf8'), 'previous');
    await rejectsWith(
      downloadVerified(`${base}/good`, dest, { size: body.length - 1 }),
      'checksum-mismatch',
      /expected/,
    );
    assert.deepEqual(await leftovers(), []);
  });

  it('retries a 500 then succeeds', async () => {
    const retries: number[] = [];
    const r = await downloadVerified(`${base}/flaky`, path.join(dir, 'flaky.tar.gz'), {
      ...fast,
      sha256: digest,
      onRetry: (a) => retries.push(a),
    });
    assert.equal(r.sha256, digest);
    assert.deepEqual(retries, [1]);
    assert.equal(hits.get('/flaky'), 2);
  });

  it('retries a truncated body and a stall; gives up on persistent truncation and 5xx', async () => {
    const r = await downloadVerified(`${base}/truncated-once`, path.join(dir, 't1.tar.gz'), {
      ...fast,
      sha256: digest,
    });
    assert.equal(r.size, body.length);
    const r2 = await downloadVerified(`${base}/stall-once`, path.join(dir, 's1.tar.gz'), {
      ...fast,
      sha256: digest,
      idleTimeoutMs: 300,
    });
    assert.equal(r2.size, body.length);
    const dest = path.join(dir, 'never.tar.gz');
    await rejectsWith(
      downloadVerified(`${base}/truncated`, dest, { ...fast, sha256: digest }),
      'corrupt',
      /gave up after 4 attempts/,
    );
    await rejectsWith(
      downloadVerified(`${base}/always-500`, dest, { ...fast, retries: 1 }),
      'unavailable',
      /HTTP 503.*2 attempts/,
    );
    await assert.rejects(fs.stat(dest), { code: 'ENOENT' });
    assert.deepEqual(await leftovers(), []);
  });

  it('a 404 is permanent and not retried', async () => {
    await rejectsWith(
      downloadVerified(`${base}/missing?sig=secret123`, path.join(dir, 'x'), fast),
      'not-found',
      /HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/missing\?…$/,
    );
    assert.equal(hits.get('/missing?sig=secret123'), 1);
  });

  it('downloads an archive stored by ArchiveStore from the public URL', async () => {
    const s3 = await startS3();
    try {
      const settings = s3SettingsFromEnv(s3.env, { bucket: s3.bucket });
      const store = new ArchiveStore(createS3Client(settings), settings);
      const { file, data, meta } = await writeArchive(dir, 'stored.tar.gz', 4096);
      const put = await store.put(file, meta);
      const dest = path.join(dir, 'fetched.tar.gz');
      const r = await downloadVerified(put.url, dest, { sha256: meta.sha256, size: meta.size });
      assert.equal(r.sha256, meta.sha256);
      assert.deepEqual(await fs.readFile(dest), data);
    } finally {
      await s3.close();
    }
  });
});

describe('progress bar', () => {
  it('renders a bar with percentage, sizes and rate', () => {
    const line = renderProgress('mozharness.tar.gz', 5 * MiB, 10 * MiB, MiB, 100);
    assert.equal(line.split('] ')[1], ' 50%  5.0 MiB / 10.0 MiB  1.0 MiB/s');
    assert.match(line, /^mozharness\.tar\.gz \[#+\.+\] /);
  });
  it('draws nothing when stderr is not a terminal', () => {
    const out: string[] = [];
    const stream = {
      isTTY: false,
      write: (s: string) => out.push(s),
    } as unknown as NodeJS.WriteStream;
    const p = createProgress({ label: 'x', stream });
    p.update(1, 2);
    p.finish();
    assert.equal(out.length, 0);
    const tty = {
      isTTY: true,
      columns: 80,
      write: (s: string) => out.push(s),
    } as unknown as NodeJS.WriteStream;
    const q = createProgress({ label: 'x', stream: tty, total: 2 });
    q.update(1);
    q.finish();
    assert.ok(out.length >= 2 && out.at(-1) === '\n');
  });
});
