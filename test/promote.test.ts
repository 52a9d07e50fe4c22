// promote / rollback against the embedded services and s3rver: a verified promotion writes a
// manifest that validates against schemas/manifest.json and keeps `previous`; an unverified
// archive (task not completed, object bytes not the recorded sha256) is refused and the manifest
// is left as it was; s3:// manifests; http(s) manifests are read only.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { revisionNamespace } from '../src/contract/index.js';
import {
  parseManifestLocation,
  readManifest,
  validateManifest,
  writeManifest,
  type Manifest,
} from '../src/lookup/manifest.js';
import { promote, rollback } from '../src/lookup/promote.js';
import { createS3Client } from '../src/storage/index.js';
import { isArchiveError } from '../src/util/errors.js';
import {
  PREFIX,
  PROJECT,
  runCli,
  startLookupWorld,
  type BuiltArchive,
  type LookupWorld,
} from './lookup-fixture.js';

describe('promote', function () {
  this.timeout(120_000);
  let w: LookupWorld;
  let a: BuiltArchive;
  let b: BuiltArchive;
  let file: string;
  const deps = () => ({ index: w.anon.index, queue: w.lookup.queue, io: {} });

  before(async () => {
    w = await startLookupWorld(['a', 'b', 'c', 'd']);
    a = await w.archive(w.repo.revisions[0]!);
    b = await w.archive(w.repo.revisions[1]!);
    file = path.join(w.tmp, 'manifests', 'known-good.json');
  });
  after(async () => {
    await w?.close();
  });

  it('writes a verified entry that validates against the manifest schema', async () => {
    const r = await promote(deps(), {
      channel: 'release',
      manifest: parseManifestLocation(file),
      project: PROJECT,
      revision: a.revision.slice(0, 12),
      promotedBy: 'releng@example.com',
    });
    assert.equal(r.previous, undefined);
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
    validateManifest(doc);
    const e = doc.channels.release!;
    assert.equal(e.revision, a.revision);
    assert.equal(e.sha256, a.sha256);
    assert.equal(e.size, a.size);
    assert.equal(e.taskId, a.taskId);
    assert.equal(e.treeDigest, a.treeDigest);
    assert.equal(e.url, a.url);
    assert.equal(e.project, PROJECT);
    assert.equal(e.promotedBy, 'releng@example.com');
    assert.ok(Date.parse(e.promotedAt) > 0);
    assert.deepEqual(
      fs.readdirSync(path.dirname(file)),
      ['known-good.json'],
      'no temp file left beside it',
    );
  });

  it('keeps the replaced entry as previous, and rolls back with one call', async () => {
    const r = await promote(deps(), {
      channel: 'release',
      manifest: parseManifestLocation(file),
      project: PROJECT,
      revision: b.revision,
    });
    assert.equal(r.entry.sha256, b.sha256);
    assert.equal(r.previous?.sha256, a.sha256);
    const back = await rollback(
      { io: {} },
      { channel: 'release', manifest: parseManifestLocation(file) },
    );
    assert.equal(back.entry.sha256, a.sha256);
    assert.equal(
      back.entry.previous?.sha256,
      b.sha256,
      'rolling back again would undo the rollback',
    );
    const doc = validateManifest(JSON.parse(fs.readFileSync(file, 'utf8')));
    assert.equal(doc.channels.release!.revision, a.revision);
    await assert.rejects(
      rollback({ io: {} }, { channel: 'beta', manifest: parseManifestLocation(file) }),
      /channel beta is not in/,
    );
  });

  it('refuses an archive whose task has not completed', async () => {
    const rev = w.repo.revisions[2]!;
    const taskId = await w.createArchiveTask(rev, []);
    await w.workOne({ complete: false }); // artifacts exist, the run is still running
    await w.root.index.insertTask(revisionNamespace(PREFIX, PROJECT, rev), {
      taskId,
      rank: 0,
      data: {},
      expires: new Date(Date.now() + 86400_000).toISOString(),
    });
    const before = fs.readFileSync(file, 'utf8');
    await assert.rejects(
      promote(deps(), {
        channel: 'release',
        manifest: parseManifestLocation(file),
        project: PROJECT,
        revision: rev,
      }),
      (e: unknown) =>
        isArchiveError(e, 'not-allowed') &&
        /task .* is running, not completed/.test((e as Error).message),
    );
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'manifest untouched');
  });

  it('refuses an archive whose object does not have the recorded sha256', async () => {
    const c = await w.archive(w.repo.revisions[3]!);
    const s3 = createS3Client(w.s3Settings);
    await s3.send(
      new PutObjectCommand({
        Bucket: w.s3Settings.bucket,
        Key: w.store.archiveKey(c.sha256),
        Body: Buffer.alloc(c.size, 7),
      }),
    );
    const before = fs.readFileSync(file, 'utf8');
    await assert.rejects(
      promote(deps(), {
        channel: 'release',
        manifest: parseManifestLocation(file),
        project: PROJECT,
        revision: c.revision,
      }),
      (e: unknown) =>
        isArchiveError(e, 'checksum-mismatch') &&
        new RegExp(`has sha256 [0-9a-f]{64} .*recorded ${c.sha256}`).test((e as Error).message),
    );
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'manifest untouched');
  });

  it('promotes into s3://bucket/key through the CLI, and refuses to write an http(s) manifest', async () => {
    const s3 = w.emb.s3!;
    const env = {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_REGION: s3.region,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      TASKCLUSTER_ROOT_URL: w.emb.rootUrl,
      TASKCLUSTER_CLIENT_ID: w.emb.credentials.clientId,
      TASKCLUSTER_ACCESS_TOKEN: w.emb.credentials.accessToken,
    };
    const where = `s3://${s3.bucket}/manifests/known-good.json`;
    const r = await runCli(
      [
        'promote',
        '--channel',
        'nightly',
        '--manifest',
        where,
        '--project',
        PROJECT,
        '--revision',
        b.revision,
        '--json',
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).entry.sha256, b.sha256);
    assert.ok(!r.stderr.includes(w.emb.credentials.accessToken), 'no credential in the log');
    const read = await readManifest(parseManifestLocation(where), {
      s3: createS3Client(w.s3Settings),
    });
    assert.equal(read.status, 'ok');
    if (read.status === 'ok') assert.equal(read.manifest.channels.nightly!.sha256, b.sha256);

    const rb = await runCli(
      ['promote', '--rollback', '--channel', 'nightly', '--manifest', where],
      env,
    );
    assert.equal(rb.code, 1);
    assert.match(rb.stderr, /no previous entry to roll back to/);

    // a second promotion (a conditional PUT on the ETag read) and a rollback
    const second = await runCli(
      [
        'promote',
        '--channel',
        'nightly',
        '--manifest',
        where,
        '--project',
        PROJECT,
        '--revision',
        a.revision,
        '--json',
      ],
      env,
    );
    assert.equal(second.code, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout).previous.sha256, b.sha256);
    const back = await runCli(
      ['promote', '--rollback', '--channel', 'nightly', '--manifest', where, '--json'],
      env,
    );
    assert.equal(back.code, 0, back.stderr);
    assert.equal(JSON.parse(back.stdout).entry.sha256, b.sha256);

    const http = await runCli(
      [
        'promote',
        '--channel',
        'x',
        '--manifest',
        'http://127.0.0.1:9/m.json',
        '--project',
        PROJECT,
        '--revision',
        a.revision,
      ],
      env,
    );
    assert.equal(http.code, 2);
    assert.match(http.stderr, /http\(s\) manifests are read only/);
  });

  it('refuses to overwrite a file manifest that changed since it was read', async () => {
    const loc = parseManifestLocation(path.join(w.tmp, 'race.json'));
    await writeManifest(loc, { version: 1, channels: {} });
    const read = await readManifest(loc);
    assert.equal(read.status, 'ok');
    const etag = read.status === 'ok' ? read.etag : '';
    fs.writeFileSync(
      (loc as { path: string }).path,
      JSON.stringify({ version: 1, channels: {} }, null, 4),
    );
    await assert.rejects(
      writeManifest(loc, { version: 1, channels: {} }, {}, { ifMatch: etag }),
      (e: unknown) =>
        isArchiveError(e, 'conflict') &&
        /changed while it was being updated/.test((e as Error).message),
    );
    await assert.rejects(
      writeManifest(loc, { version: 1, channels: { 'bad channel': {} } } as unknown as Manifest),
      (e: unknown) => isArchiveError(e, 'invalid-config'),
    );
  });
});
