import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildArchive, type ArchiveResult } from '../src/archive/index.js';
import { spawnCli, type CliResult } from './helpers/cli.js';
import { startS3, type TestS3 } from './helpers/s3.js';

const SECRET = 'do-not-print-this-secret-0123456789';

function run(args: string[], env: Record<string, string>): Promise<CliResult> {
  return spawnCli(args, {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...env,
  });
}

describe('cli: upload', function () {
  this.timeout(60_000);
  let s3: TestS3;
  let dir: string;
  let env: Record<string, string>;
  let file: string;
  let data: Buffer;
  let digest: string;
  let built: ArchiveResult;

  before(async () => {
    s3 = await startS3();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upload-cli-'));
    env = { ...s3.env, AWS_SECRET_ACCESS_KEY: SECRET }; // s3rver does not check V4 signatures
    const tree = path.join(dir, 'checkout', 'testing', 'mozharness');
    await fs.mkdir(path.join(tree, 'scripts'), { recursive: true });
    await fs.writeFile(path.join(tree, 'scripts', 'fx_desktop_build.py'), 'print("hi")\n', {
      mode: 0o755,
    });
    await fs.writeFile(path.join(tree, 'README.txt'), randomBytes(20_000).toString('base64'));
    file = path.join(dir, 'mozharness.tar.gz');
    built = await buildArchive({
      source: { kind: 'dir', path: path.join(dir, 'checkout') },
      revision: '1'.repeat(40),
      subdir: 'testing/mozharness',
      out: file,
    });
    data = await fs.readFile(file);
    digest = createHash('sha256').update(data).digest('hex');
    assert.equal(digest, built.sha256);
  });
  after(async () => {
    await s3?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('uploads, prints the public URL; the second time reuses the object', async () => {
    const first = await run(['upload', file, '--bucket', s3.bucket, '--prefix', 'releng'], env);
    assert.equal(first.code, 0, first.stderr);
    const url = `${s3.publicBaseUrl}/releng/sha256/${digest}.tar.gz`;
    assert.equal(first.stdout, url + '\n');
    assert.deepEqual(Buffer.from(await (await fetch(url)).arrayBuffer()), data);
    const meta = await (await fetch(url.replace(/\.tar\.gz$/, '.json'))).json();
    // What the archive says about itself: the tree digest matches the one computed at build time.
    assert.deepEqual(meta, {
      files: 2,
      format: 'tar.gz',
      formatVersion: built.formatVersion,
      sha256: digest,
      size: data.length,
      treeDigest: built.treeDigest,
    });

    const before = s3.requests.length;
    const second = await run(
      ['upload', file, '--bucket', s3.bucket, '--prefix', 'releng', '--json'],
      env,
    );
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(JSON.parse(second.stdout), {
      url,
      metadataUrl: url.replace(/\.tar\.gz$/, '.json'),
      key: `releng/sha256/${digest}.tar.gz`,
      reused: true,
      sha256: digest,
      size: data.length,
    });
    assert.deepEqual(
      s3.requests.slice(before).filter((r) => !r.startsWith('HEAD ')),
      [],
    );
    assert.ok(!first.stderr.includes(SECRET) && !second.stderr.includes(SECRET));
  });

  it('stores a metadata document given with --metadata, and refuses one for another file', async () => {
    const metaFile = path.join(dir, 'meta.json');
    const meta = {
      ...built,
      repository: 'https://hg.example.test/mozilla-central',
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    await fs.writeFile(metaFile, JSON.stringify(meta));
    const r = await run(
      ['upload', file, '--bucket', s3.bucket, '--prefix', 'with-meta', '--metadata', metaFile],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const stored = await (await fetch(r.stdout.trim().replace(/\.tar\.gz$/, '.json'))).json();
    assert.deepEqual(stored, meta);

    await fs.writeFile(metaFile, JSON.stringify({ ...meta, sha256: 'e'.repeat(64) }));
    const bad = await run(['upload', file, '--bucket', s3.bucket, '--metadata', metaFile], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`says sha256 e{64}, the archive has ${digest}`));

    const { revision: _omitted, ...incomplete } = meta;
    await fs.writeFile(metaFile, JSON.stringify({ ...incomplete, subdir: '../up' }));
    const invalid = await run(['upload', file, '--bucket', s3.bucket, '--metadata', metaFile], env);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /not a valid archive metadata document: .*revision/);
    assert.match(invalid.stderr, /subdir must match pattern/);
  });

  it('refuses a file that is not gzip, a missing bucket, and reports an unreachable S3', async () => {
    const plain = path.join(dir, 'plain.txt');
    await fs.writeFile(plain, 'not an archive');
    const notGzip = await run(['upload', plain, '--bucket', s3.bucket], env);
    assert.equal(notGzip.code, 2);
    assert.match(notGzip.stderr, /is not a gzip file/);

    const notTar = path.join(dir, 'random.tar.gz');
    const junk = gzipSync(randomBytes(1000));
    await fs.writeFile(notTar, junk);
    const junkSha = createHash('sha256').update(junk).digest('hex');
    const r = await run(['upload', notTar, '--bucket', s3.bucket], env);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /mozharness-archive: error: .*random\.tar\.gz is not a usable archive: /,
    );
    assert.ok(!s3.requests.some((x) => x.includes(junkSha)), 'nothing sent for a broken archive');

    const noBucket = await run(['upload', file], env);
    assert.equal(noBucket.code, 1);
    assert.match(noBucket.stderr, /no S3 bucket configured/);

    const down = await run(
      ['upload', file, '--bucket', s3.bucket, '--endpoint', 'http://127.0.0.1:1'],
      {
        ...env,
        AWS_MAX_ATTEMPTS: '1',
      },
    );
    assert.equal(down.code, 1);
    assert.match(down.stderr, /mozharness-archive: error: HEAD s3:\/\/mozharness-archive-test\//);
    assert.ok(!down.stderr.includes(SECRET));
  });
});
