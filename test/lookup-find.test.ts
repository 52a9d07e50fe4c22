// find / fetch against the embedded services: full and short revisions, digest, latest,
// ambiguity, unknown; the CLI contract (exit codes, --json) and a verified, atomic fetch.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { revisionNamespace } from '../src/contract/index.js';
import { findArchive, checkRevision } from '../src/lookup/find.js';
import { isArchiveError } from '../src/util/errors.js';
import { spawnCli, type CliResult } from './helpers/cli.js';
import { assertUpstream } from './helpers/upstream.js';
import { SAMPLE_EXECUTABLE } from './helpers/repos.js';
import {
  PREFIX,
  PROJECT,
  runCli,
  startLookupWorld,
  type BuiltArchive,
  type LookupWorld,
} from './lookup-fixture.js';

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return spawnCli(args, {
    ...process.env,
    TASKCLUSTER_ROOT_URL: '',
    TASKCLUSTER_CLIENT_ID: '',
    TASKCLUSTER_ACCESS_TOKEN: '',
    ...env,
  });
}

describe('lookup: find and fetch', function () {
  this.timeout(120_000);
  let w: LookupWorld;
  let a: BuiltArchive;
  let b: BuiltArchive;

  before(async () => {
    w = await startLookupWorld();
    a = await w.archive(w.repo.revisions[0]!, { rank: 1 });
    b = await w.archive(w.repo.revisions[1]!, { rank: 2 });
  });
  after(async () => {
    await w?.close();
  });

  it('finds by full revision, anonymously, with artifact URL, sha256, size and expiry', async () => {
    const f = await findArchive(w.anon, { project: PROJECT, revision: a.revision });
    assert.equal(f.taskId, a.taskId);
    assert.equal(f.sha256, a.sha256);
    assert.equal(f.size, a.size);
    assert.equal(f.revision, a.revision);
    assert.equal(f.treeDigest, a.treeDigest);
    assert.equal(f.objectUrl, a.url);
    assert.equal(f.namespace, revisionNamespace(PREFIX, PROJECT, a.revision));
    assert.match(
      f.url,
      /\/api\/queue\/v1\/task\/.+\/artifacts\/public%2Fbuild%2Fmozharness\.tar\.gz$/,
    );
    assert.ok(Date.parse(f.expires) > Date.now());
    assert.ok(f.created && Date.parse(f.created) > 0);
    // the index entry behind it is an upstream-shaped indexed task
    assertUpstream(
      '/schemas/index/v1/indexed-task-response.json',
      await w.anon.index.findTask(f.namespace),
    );
  });

  it('finds by a 12-hex short revision (upper case too), by digest and latest', async () => {
    const short = await findArchive(w.anon, {
      project: PROJECT,
      revision: b.revision.slice(0, 12).toUpperCase(),
    });
    assert.equal(short.taskId, b.taskId);
    assert.equal(short.revision, b.revision);
    const byDigest = await findArchive(w.anon, { project: PROJECT, digest: a.treeDigest });
    assert.equal(byDigest.taskId, a.taskId);
    const latest = await findArchive(w.anon, { project: PROJECT, latest: true });
    assert.equal(latest.taskId, b.taskId, 'latest is the higher rank');
  });

  it('reports a revision indexed onto a reused archive under the revision asked for', async () => {
    const other = 'f'.repeat(40);
    await w.root.index.insertTask(revisionNamespace(PREFIX, PROJECT, other), {
      taskId: a.taskId,
      rank: 5,
      data: {},
      expires: new Date(Date.now() + 86400_000).toISOString(),
    });
    const f = await findArchive(w.anon, { project: PROJECT, revision: other });
    assert.equal(f.revision, other);
    assert.equal(f.archiveRevision, a.revision);
    assert.equal(f.sha256, a.sha256);
  });

  it('refuses an ambiguous short revision, naming the matches', async () => {
    const base = 'abcdef012345';
    for (const tail of ['1', '2']) {
      await w.root.index.insertTask(revisionNamespace(PREFIX, PROJECT, base + tail.repeat(28)), {
        taskId: a.taskId,
        rank: 0,
        data: {},
        expires: new Date(Date.now() + 86400_000).toISOString(),
      });
    }
    await assert.rejects(
      findArchive(w.anon, { project: PROJECT, revision: base }),
      (e: unknown) => {
        assert.ok(isArchiveError(e, 'usage'));
        assert.match((e as Error).message, /ambiguous.*abcdef0123451{28}.*abcdef0123452{28}/);
        return true;
      },
    );
  });

  it('says clearly what is wrong with bad input, and not-found for unknown revisions', async () => {
    assert.throws(() => checkRevision('xyz'), /must be hexadecimal/);
    assert.throws(() => checkRevision('abc123'), /6 hex characters, need 12 to 40/);
    await assert.rejects(
      findArchive(w.anon, { project: 'bad project', latest: true }),
      /invalid project/,
    );
    await assert.rejects(findArchive(w.anon, { project: PROJECT }), /exactly one of/);
    await assert.rejects(
      findArchive(w.anon, { project: PROJECT, revision: '0'.repeat(40) }),
      (e: unknown) =>
        isArchiveError(e, 'not-found') &&
        /no archive of mozilla-central revision 0{40}/.test((e as Error).message),
    );
    await assert.rejects(
      findArchive(w.anon, { project: 'unknown-project', latest: true }),
      (e: unknown) => isArchiveError(e, 'not-found'),
    );
  });

  it('CLI find --json prints one document (as a subprocess); unknown exits 1 with a clear message', async () => {
    const ok = await cli([
      'find',
      '--project',
      PROJECT,
      '--revision',
      a.revision.slice(0, 14),
      '--json',
      '--root-url',
      w.emb.rootUrl,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const doc = JSON.parse(ok.stdout);
    assert.equal(doc.taskId, a.taskId);
    assert.equal(doc.sha256, a.sha256);
    const human = await runCli(['find', '--project', PROJECT, '--latest'], {
      TASKCLUSTER_ROOT_URL: w.emb.rootUrl,
    });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`taskId: +${b.taskId}`));
    assert.match(human.stdout, /expires: +\d{4}-/);
    const missing = await runCli([
      'find',
      '--project',
      PROJECT,
      '--revision',
      '1'.repeat(40),
      '--root-url',
      w.emb.rootUrl,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error: no archive of mozilla-central revision 1{40}/);
    assert.equal(missing.stdout, '');
    const bad = await runCli([
      'find',
      '--project',
      PROJECT,
      '--revision',
      'zz',
      '--root-url',
      w.emb.rootUrl,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /must be hexadecimal/);
  });

  it('CLI fetch downloads, verifies and unpacks atomically', async () => {
    const dest = path.join(w.tmp, 'fetched', 'mozharness');
    const r = await runCli([
      'fetch',
      '--project',
      PROJECT,
      '--revision',
      a.revision,
      '--dest',
      dest,
      '--json',
      '--root-url',
      w.emb.rootUrl,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.sha256, a.sha256);
    assert.ok(doc.files > 5);
    const st = fs.statSync(path.join(dest, SAMPLE_EXECUTABLE));
    assert.ok(st.mode & 0o100, 'executable bit kept');
    // nothing left beside it
    assert.deepEqual(fs.readdirSync(path.dirname(dest)), ['mozharness']);
    // a second fetch into the same, non-empty dest is refused and leaves it as it was
    const again = await runCli([
      'fetch',
      '--project',
      PROJECT,
      '--revision',
      b.revision,
      '--dest',
      dest,
      '--root-url',
      w.emb.rootUrl,
    ]);
    assert.notEqual(again.code, 0);
    assert.deepEqual(fs.readdirSync(path.dirname(dest)), ['mozharness']);
  });
});
