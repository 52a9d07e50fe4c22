// The archive engine against real sources: `hg serve` on loopback, real hg and git repositories,
// checkouts and plain directories. Same tree → same bytes, whichever source.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import * as tar from 'tar';
import {
  ARCHIVE_FORMAT,
  archiveMetadata,
  DEFAULT_LIMITS,
  FORMAT_VERSION,
  buildArchive,
  computeTreeDigest,
  inspectArchive,
  packArchive,
  parseSource,
  resolveRevision,
  sourceRepository,
  unpackArchive,
  validateSubdir,
  type SourceSpec,
} from '../src/archive/index.js';
import { isArchiveError } from '../src/util/errors.js';
import { END_OF_ARCHIVE, entryHeader, padding } from '../src/archive/tar.js';
import {
  SAMPLE_EXECUTABLE,
  SAMPLE_LONG_PATH,
  SAMPLE_SUBDIR,
  SAMPLE_SYMLINK,
  SAMPLE_SYMLINK_TARGET,
  SAMPLE_UNICODE_PATH,
  createGitRepo,
  createHgRepo,
  startHgServe,
  writeSampleTree,
  git,
  hg,
  type HgServer,
  type SampleRepo,
} from './helpers/repos.js';
import { Writable } from 'node:stream';

const sha256File = (f: string) =>
  crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isArchiveError(e), `expected ArchiveError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

describe('archive engine', function () {
  this.timeout(120_000);
  let tmp: string;
  let hgRepo: SampleRepo;
  let gitRepo: SampleRepo;
  let plain: string;
  let server: HgServer;
  let policy: { allowRepos: string[]; retries: number; maxRetryTimeMs: number };

  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'archive-test-'));
    [hgRepo, gitRepo] = await Promise.all([
      createHgRepo(path.join(tmp, 'mozilla-central'), { variants: [undefined, 'second push'] }),
      createGitRepo(path.join(tmp, 'gecko-dev'), { variants: [undefined, 'second push'] }),
    ]);
    plain = path.join(tmp, 'plain');
    writeSampleTree(plain, 'second push');
    server = await startHgServe(hgRepo.path);
    policy = {
      allowRepos: [server.url, `file://${gitRepo.path}`],
      retries: 1,
      maxRetryTimeMs: 5000,
    };
  });

  after(async () => {
    await server?.close();
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  const out = (name: string) => path.join(tmp, 'out', name);

  describe('reproducibility', () => {
    it('gives the same sha256 and tree digest from hgweb, hg, git, git-remote, checkouts and a directory', async () => {
      const sources: Array<[string, SourceSpec, string]> = [
        ['hgweb', { kind: 'hgweb', url: server.url }, 'tip'],
        ['hg', { kind: 'hg', path: hgRepo.path }, hgRepo.revisions[1].slice(0, 12)],
        ['git', { kind: 'git', path: gitRepo.path }, 'main'],
        ['git-remote', { kind: 'git-remote', url: `file://${gitRepo.path}` }, 'main'],
        ['hg-checkout', { kind: 'dir', path: hgRepo.path }, '.'],
        ['git-checkout', { kind: 'dir', path: gitRepo.path }, 'HEAD'],
        ['plain', { kind: 'dir', path: plain }, 'f'.repeat(40)],
      ];
      const results = [];
      for (const [name, source, revision] of sources) {
        const r = await buildArchive({
          source,
          revision,
          subdir: SAMPLE_SUBDIR,
          policy,
          out: out(`${name}.tar.gz`),
        });
        assert.equal(r.sha256, sha256File(out(`${name}.tar.gz`)), name);
        assert.equal(r.size, fs.statSync(out(`${name}.tar.gz`)).size, name);
        assert.match(r.revision, /^[0-9a-f]{40}$/);
        const d = await computeTreeDigest({ source, revision, subdir: SAMPLE_SUBDIR, policy });
        assert.equal(d.treeDigest, r.treeDigest, `${name}: digest alone = digest while packing`);
        assert.equal(d.files, r.files);
        results.push({ name, ...r });
      }
      for (const r of results) {
        assert.equal(r.sha256, results[0].sha256, `${r.name} sha256 differs from hgweb`);
        assert.equal(r.zip?.sha256, results[0].zip?.sha256, `${r.name} zip differs from hgweb`);
        assert.equal(r.zip?.size, results[0].zip?.size);
        assert.equal(r.treeDigest, results[0].treeDigest, `${r.name} tree digest differs`);
        assert.equal(r.files, 15);
        assert.equal(r.format, ARCHIVE_FORMAT);
        assert.equal(r.formatVersion, FORMAT_VERSION);
        assert.equal(r.subdir, SAMPLE_SUBDIR);
      }
      assert.equal(results[0].revision, hgRepo.revisions[1]);
      assert.equal(results[1].revision, hgRepo.revisions[1]);
      assert.equal(results[2].revision, gitRepo.revisions[1]);
      assert.equal(results[3].revision, gitRepo.revisions[1]);
    });

    it('gives the same bytes on repeated runs, with or without an output file', async () => {
      const opts = {
        source: { kind: 'git', path: gitRepo.path } as SourceSpec,
        revision: gitRepo.revisions[0],
        subdir: SAMPLE_SUBDIR,
      };
      const a = await buildArchive({ ...opts, out: out('rep-a.tar.gz') });
      const b = await buildArchive({ ...opts, out: out('rep-b.tar.gz') });
      const c = await buildArchive(opts);
      assert.deepEqual(fs.readFileSync(out('rep-a.tar.gz')), fs.readFileSync(out('rep-b.tar.gz')));
      assert.deepEqual(a, b);
      assert.deepEqual(c, a);
      const chunks: Buffer[] = [];
      const sink = new Writable({ write: (chunk, _e, cb) => (chunks.push(chunk), cb()) });
      const p = await packArchive(opts, sink);
      assert.equal(
        p.sha256,
        crypto.createHash('sha256').update(Buffer.concat(chunks)).digest('hex'),
      );
      assert.equal(p.sha256, a.sha256);
    });

    it('changes with one byte of content, and with one mode bit', async () => {
      const dir = path.join(tmp, 'mutable');
      writeSampleTree(dir);
      const opts = {
        source: { kind: 'dir', path: dir } as SourceSpec,
        revision: '0'.repeat(40),
        subdir: SAMPLE_SUBDIR,
      };
      const base = await buildArchive(opts);
      const file = path.join(dir, SAMPLE_SUBDIR, 'mozharness/base/log.py');
      const original = fs.readFileSync(file);
      const changed = Buffer.from(original);
      changed[0] ^= 1;
      fs.writeFileSync(file, changed);
      const oneByte = await buildArchive(opts);
      fs.writeFileSync(file, original);
      fs.chmodSync(file, 0o755);
      const oneBit = await buildArchive(opts);
      fs.chmodSync(file, 0o644);
      const again = await buildArchive(opts);
      for (const r of [oneByte, oneBit]) {
        assert.notEqual(r.sha256, base.sha256);
        assert.notEqual(r.treeDigest, base.treeDigest);
      }
      assert.notEqual(oneByte.treeDigest, oneBit.treeDigest);
      assert.equal(again.sha256, base.sha256);
      assert.equal(again.treeDigest, base.treeDigest);
      // a group/other-only permission change that does not make it executable changes nothing
      fs.chmodSync(file, 0o600);
      assert.equal((await buildArchive(opts)).sha256, base.sha256);
      fs.chmodSync(file, 0o644);
    });

    it('differs between revisions of the harness', async () => {
      const source: SourceSpec = { kind: 'hg', path: hgRepo.path };
      const [a, b] = await Promise.all(
        hgRepo.revisions.map((revision) =>
          computeTreeDigest({ source, revision, subdir: SAMPLE_SUBDIR }),
        ),
      );
      assert.notEqual(a.treeDigest, b.treeDigest);
      assert.equal(a.revision, hgRepo.revisions[0]);
    });

    it('archives only what the VCS tracks in a checkout', async () => {
      const sub = (repo: string) => path.join(repo, SAMPLE_SUBDIR);
      const before = await computeTreeDigest({
        source: { kind: 'dir', path: gitRepo.path },
        revision: 'HEAD',
        subdir: SAMPLE_SUBDIR,
      });
      fs.writeFileSync(path.join(sub(gitRepo.path), 'untracked.pyc'), 'junk');
      fs.writeFileSync(path.join(sub(hgRepo.path), 'untracked.pyc'), 'junk');
      try {
        const g = await computeTreeDigest({
          source: { kind: 'dir', path: gitRepo.path },
          revision: 'HEAD',
          subdir: SAMPLE_SUBDIR,
        });
        const h = await computeTreeDigest({
          source: { kind: 'dir', path: hgRepo.path },
          revision: '.',
          subdir: SAMPLE_SUBDIR,
        });
        assert.equal(g.treeDigest, before.treeDigest);
        assert.equal(h.treeDigest, before.treeDigest);
        assert.equal(g.revision, gitRepo.revisions[1]);
        assert.equal(h.revision, hgRepo.revisions[1]);
      } finally {
        fs.rmSync(path.join(sub(gitRepo.path), 'untracked.pyc'));
        fs.rmSync(path.join(sub(hgRepo.path), 'untracked.pyc'));
      }
      // a plain directory takes every file
      const extra = path.join(tmp, 'plain-extra');
      writeSampleTree(extra, 'second push');
      fs.writeFileSync(path.join(sub(extra), 'untracked.pyc'), 'junk');
      const p = await computeTreeDigest({
        source: { kind: 'dir', path: extra },
        revision: 'f'.repeat(40),
        subdir: SAMPLE_SUBDIR,
      });
      assert.equal(p.files, 16);
    });

    it('archives from a directory inside a checkout (not its root)', async () => {
      const ref = await computeTreeDigest({
        source: { kind: 'git', path: gitRepo.path },
        revision: 'main',
        subdir: SAMPLE_SUBDIR,
      });
      for (const repo of [gitRepo.path, hgRepo.path]) {
        const inner = path.join(repo, 'testing');
        assert.equal(parseSource(inner).kind, 'dir');
        const d = await computeTreeDigest({
          source: { kind: 'dir', path: inner },
          revision: 'f'.repeat(40),
          subdir: 'mozharness',
        });
        assert.equal(d.treeDigest, ref.treeDigest, repo);
      }
    });

    it('on failure writes no archive and no temp file, and destroys a given sink', async () => {
      const dir = path.join(tmp, 'failing');
      writeSampleTree(dir);
      fs.symlinkSync('/etc/passwd', path.join(dir, SAMPLE_SUBDIR, 'zzz-last-entry'));
      const target = path.join(tmp, 'failing-out', 'a.tar.gz');
      const opts = {
        source: { kind: 'dir', path: dir } as SourceSpec,
        revision: 'c'.repeat(40),
        subdir: SAMPLE_SUBDIR,
      };
      await rejectsWith(buildArchive({ ...opts, out: target }), 'unsafe-path', /zzz-last-entry/);
      await rejectsWith(buildArchive({ ...opts, subdir: '../x', out: target }), 'unsafe-path');
      assert.deepEqual(fs.readdirSync(path.dirname(target)), []);
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      await rejectsWith(packArchive(opts, sink), 'unsafe-path');
      assert.ok(sink.destroyed);
    });

    it('writes a normalised archive: sorted, no prefix, modes, mtime 0, PAX names, fixed gzip header', async () => {
      const file = out('hgweb.tar.gz');
      const bytes = fs.readFileSync(file);
      assert.deepEqual([...bytes.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
      const entries: Array<{
        path: string;
        type: string;
        mode: number;
        mtime: number;
        uid: number;
        gid: number;
        uname?: string;
        linkpath?: string;
        pax: boolean;
      }> = [];
      await tar.t({
        file,
        onReadEntry: (e) => {
          entries.push({
            path: e.path,
            type: e.type,
            mode: e.mode ?? -1,
            mtime: e.mtime?.getTime() ?? -1,
            uid: e.uid ?? -1,
            gid: e.gid ?? -1,
            uname: e.uname,
            linkpath: e.linkpath,
            pax: !!e.extended,
          });
        },
      });
      const names = entries.map((e) => e.path.replace(/\/$/, ''));
      const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.deepEqual(names, sorted);
      assert.ok(!names.some((n) => n.startsWith(SAMPLE_SUBDIR) || n.includes('.hg_archival')));
      for (const e of entries) {
        assert.equal(e.mtime, 0);
        assert.equal(e.uid, 0);
        assert.equal(e.gid, 0);
        assert.ok(!e.uname);
      }
      const get = (p: string) => entries.find((e) => e.path.replace(/\/$/, '') === p)!;
      assert.equal(get(SAMPLE_EXECUTABLE).mode, 0o755);
      assert.equal(get('setup.py').mode, 0o644);
      assert.equal(get('mozharness/base').type, 'Directory');
      assert.equal(get('mozharness/base').mode, 0o755);
      assert.equal(get(SAMPLE_SYMLINK).type, 'SymbolicLink');
      assert.equal(get(SAMPLE_SYMLINK).linkpath, SAMPLE_SYMLINK_TARGET);
      assert.ok(get(SAMPLE_LONG_PATH).pax, 'long path uses PAX');
      assert.ok(get(SAMPLE_UNICODE_PATH).pax, 'non-ASCII path uses PAX');
      assert.ok(!get('setup.py').pax);
      // the gzip stream is a single member ending cleanly
      assert.ok(zlib.gunzipSync(bytes).length % 512 === 0);
    });

    it('inspects an archive file: same sha256, size, tree digest and count as the build', async () => {
      const file = out('git.tar.gz');
      const built = await buildArchive({
        source: { kind: 'git', path: gitRepo.path },
        revision: 'main',
        subdir: SAMPLE_SUBDIR,
      });
      const seen = await inspectArchive(file);
      assert.deepEqual(seen, {
        sha256: built.sha256,
        size: built.size,
        treeDigest: built.treeDigest,
        files: built.files,
        formatVersion: FORMAT_VERSION,
      });
      const foreign = path.join(tmp, 'foreign.tar.gz');
      await tar.c({ gzip: true, file: foreign, cwd: plain }, ['testing']);
      await rejectsWith(inspectArchive(foreign), 'corrupt', /not a normalised archive/);
      const cut = path.join(tmp, 'cut.tar.gz');
      fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, 300));
      await rejectsWith(inspectArchive(cut), 'corrupt');
    });

    it('round-trips: unpacking and re-packing as a directory gives the same bytes', async () => {
      const file = out('git.tar.gz');
      const dest = path.join(tmp, 'roundtrip', SAMPLE_SUBDIR);
      const u = await unpackArchive(file, dest, { sha256: sha256File(file) });
      assert.equal(u.files, 15);
      assert.equal(fs.readlinkSync(path.join(dest, SAMPLE_SYMLINK)), SAMPLE_SYMLINK_TARGET);
      assert.equal(fs.statSync(path.join(dest, SAMPLE_EXECUTABLE)).mode & 0o777, 0o755);
      const r = await buildArchive({
        source: { kind: 'dir', path: path.join(tmp, 'roundtrip') },
        revision: 'a'.repeat(40),
        subdir: SAMPLE_SUBDIR,
      });
      assert.equal(r.sha256, sha256File(file));
    });
  });

  describe('refusals', () => {
    it('validates subdirs', () => {
      assert.equal(validateSubdir('testing/mozharness'), 'testing/mozharness');
      assert.equal(validateSubdir('testing/mozharness/'), 'testing/mozharness');
      for (const bad of [
        '',
        '/',
        '/etc',
        '../x',
        'testing/../..',
        'a//b',
        './a',
        'a/./b',
        'a/..',
        'C:/x',
        'a\\b',
        'a\nb',
      ]) {
        assert.throws(
          () => validateSubdir(bad),
          (e: unknown) => isArchiveError(e, 'unsafe-path'),
          JSON.stringify(bad),
        );
      }
    });

    it('refuses an unsafe subdir before touching any source', async () => {
      const before = server.requests.length;
      await rejectsWith(
        buildArchive({
          source: { kind: 'hgweb', url: server.url },
          revision: 'tip',
          subdir: 'testing/../..',
          policy,
        }),
        'unsafe-path',
        /testing\/\.\.\/\.\./,
      );
      assert.equal(server.requests.length, before);
    });

    it('fetches only allow-listed repositories', async () => {
      const before = server.requests.length;
      const requested: string[] = [];
      const onRequest = (u: string) => requested.push(u);
      await rejectsWith(
        buildArchive({
          source: { kind: 'hgweb', url: server.url },
          revision: 'tip',
          subdir: SAMPLE_SUBDIR,
          onRequest,
        }),
        'not-allowed',
        /not on the allow-list/,
      );
      await rejectsWith(
        buildArchive({
          source: { kind: 'hgweb', url: `${server.url}/other` },
          revision: 'tip',
          subdir: SAMPLE_SUBDIR,
          policy: { allowRepos: [`${server.url}/mozilla`] },
          onRequest,
        }),
        'not-allowed',
      );
      await rejectsWith(
        computeTreeDigest({
          source: { kind: 'hgweb', url: `${server.url}/mozilla-evil` },
          revision: 'tip',
          subdir: SAMPLE_SUBDIR,
          policy: { allowRepos: [`${server.url}/mozilla`] },
          onRequest,
        }),
        'not-allowed',
      );
      await rejectsWith(
        buildArchive({
          source: { kind: 'git-remote', url: `file://${hgRepo.path}` },
          revision: 'main',
          subdir: SAMPLE_SUBDIR,
          policy,
          onRequest,
        }),
        'not-allowed',
      );
      await rejectsWith(resolveRevision({ kind: 'hgweb', url: server.url }, 'tip'), 'not-allowed');
      assert.deepEqual(requested, []);
      assert.equal(server.requests.length, before);
    });

    it('names repository, revision and subdir for an unknown revision, without retrying', async () => {
      const before = server.requests.length;
      for (const source of [
        { kind: 'hgweb', url: server.url },
        { kind: 'hg', path: hgRepo.path },
        { kind: 'git', path: gitRepo.path },
        { kind: 'git-remote', url: `file://${gitRepo.path}` },
      ] as SourceSpec[]) {
        await rejectsWith(
          buildArchive({ source, revision: 'no-such-rev', subdir: SAMPLE_SUBDIR, policy }),
          'not-found',
          new RegExp(
            `repository ${sourceRepository(source).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*revision no-such-rev.*subdir ${SAMPLE_SUBDIR}`,
          ),
        );
      }
      assert.deepEqual(server.requests.slice(before), ['/json-rev/no-such-rev']);
    });

    it('reports a subdir missing at that revision as not-found', async () => {
      for (const source of [
        { kind: 'hgweb', url: server.url },
        { kind: 'hg', path: hgRepo.path },
        { kind: 'git', path: gitRepo.path },
        { kind: 'dir', path: gitRepo.path },
      ] as SourceSpec[]) {
        await rejectsWith(
          computeTreeDigest({
            source,
            revision: { dir: 'HEAD', git: 'main' }[source.kind as string] ?? 'tip',
            subdir: 'testing/no-such-harness',
            policy,
          }),
          'not-found',
          /testing\/no-such-harness/,
        );
      }
    });

    it('refuses a symlink pointing outside the tree', async () => {
      const dir = path.join(tmp, 'escape');
      writeSampleTree(dir);
      fs.symlinkSync('../../browser/app/moz.build', path.join(dir, SAMPLE_SUBDIR, 'escape.py'));
      await rejectsWith(
        buildArchive({
          source: { kind: 'dir', path: dir },
          revision: 'b'.repeat(40),
          subdir: SAMPLE_SUBDIR,
          out: out('escape.tar.gz'),
        }),
        'unsafe-path',
        /escape\.py/,
      );
      assert.ok(!fs.existsSync(out('escape.tar.gz')));
      assert.deepEqual(
        fs.readdirSync(path.join(tmp, 'out')).filter((f) => f.includes('.tmp')),
        [],
      );
    });

    it('enforces size and count limits while building', async () => {
      const source: SourceSpec = { kind: 'git', path: gitRepo.path };
      await rejectsWith(
        buildArchive({ source, revision: 'main', subdir: SAMPLE_SUBDIR, limits: { maxFiles: 3 } }),
        'limit-exceeded',
        /more than 3 files/,
      );
      await rejectsWith(
        buildArchive({
          source,
          revision: 'main',
          subdir: SAMPLE_SUBDIR,
          limits: { maxFileBytes: 60 },
        }),
        'limit-exceeded',
        /over the limit of 60/,
      );
      await rejectsWith(
        buildArchive({
          source,
          revision: 'main',
          subdir: SAMPLE_SUBDIR,
          limits: { maxTotalBytes: 100 },
        }),
        'limit-exceeded',
      );
      assert.ok(DEFAULT_LIMITS.maxFiles >= 10_000);
    });

    it('a plain directory needs a full revision; checkouts resolve theirs', async () => {
      await rejectsWith(
        computeTreeDigest({
          source: { kind: 'dir', path: plain },
          revision: 'tip',
          subdir: SAMPLE_SUBDIR,
        }),
        'usage',
        /40-hex/,
      );
      await rejectsWith(
        computeTreeDigest({
          source: { kind: 'hg', path: hgRepo.path },
          revision: '--config=x',
          subdir: SAMPLE_SUBDIR,
        }),
        'usage',
      );
      assert.equal(
        await resolveRevision(
          { kind: 'git', path: gitRepo.path },
          gitRepo.revisions[0].slice(0, 10),
        ),
        gitRepo.revisions[0],
      );
      assert.equal(
        await resolveRevision({ kind: 'hgweb', url: server.url }, '0', {
          allowRepos: [server.url],
        }),
        hgRepo.revisions[0],
      );
    });
  });

  describe('sources and metadata', () => {
    it('parses --source values', async () => {
      assert.deepEqual(parseSource('https://hg.mozilla.org/mozilla-central/'), {
        kind: 'hgweb',
        url: 'https://hg.mozilla.org/mozilla-central',
      });
      assert.deepEqual(parseSource('https://github.com/mozilla/gecko-dev.git'), {
        kind: 'git-remote',
        url: 'https://github.com/mozilla/gecko-dev.git',
      });
      assert.equal(parseSource('https://example.org/repo', 'git').kind, 'git-remote');
      assert.equal(parseSource(`file://${gitRepo.path}`).kind, 'git-remote');
      assert.deepEqual(parseSource(hgRepo.path), { kind: 'hg', path: hgRepo.path });
      assert.deepEqual(parseSource(gitRepo.path), { kind: 'git', path: gitRepo.path });
      assert.deepEqual(parseSource(plain), { kind: 'dir', path: plain });
      assert.equal(parseSource(gitRepo.path, 'hg').kind, 'hg');
      assert.throws(
        () => parseSource('ftp://x/y'),
        (e: unknown) => isArchiveError(e, 'usage'),
      );
      assert.throws(
        () => parseSource('https://user:secret@hg.example/x'),
        (e: unknown) => isArchiveError(e, 'usage') && !e.message.includes('secret'),
      );
      assert.throws(
        () => parseSource(path.join(tmp, 'nope')),
        (e: unknown) => isArchiveError(e, 'not-found'),
      );
      // a bare git repository
      const bare = path.join(tmp, 'bare.git');
      await git(tmp, 'clone', '-q', '--bare', gitRepo.path, bare);
      assert.deepEqual(parseSource(bare), { kind: 'git', path: bare });
      const r = await computeTreeDigest({
        source: parseSource(bare),
        revision: 'main',
        subdir: SAMPLE_SUBDIR,
      });
      const ref = await computeTreeDigest({
        source: { kind: 'git', path: gitRepo.path },
        revision: 'main',
        subdir: SAMPLE_SUBDIR,
      });
      assert.equal(r.treeDigest, ref.treeDigest);
    });

    it('emits metadata that validates against schemas/archive-metadata.json', async () => {
      const schema = JSON.parse(
        fs.readFileSync(new URL('../schemas/archive-metadata.json', import.meta.url), 'utf8'),
      );
      const ajv = new Ajv({ strict: true, allErrors: true });
      (addFormats as unknown as (a: Ajv) => void)(ajv);
      const validate = ajv.compile(schema);
      const r = await buildArchive({
        source: { kind: 'hg', path: hgRepo.path },
        revision: 'tip',
        subdir: SAMPLE_SUBDIR,
      });
      const doc = archiveMetadata(r, sourceRepository({ kind: 'hg', path: hgRepo.path }));
      assert.ok(validate(doc), JSON.stringify(validate.errors));
      assert.ok(!validate({ ...doc, revision: 'tip' }));
      assert.ok(!validate({ ...doc, subdir: '../x' }));
      assert.ok(!validate({ ...doc, extra: 1 }));
    });

    it('leaves the repositories and checkouts unchanged', async () => {
      // building from a checkout neither changes the working copy nor the repository
      const status = await hg(hgRepo.path, 'status');
      assert.equal(status.trim(), '');
      assert.equal((await git(gitRepo.path, 'status', '--porcelain')).trim(), '');
    });
  });

  describe('tar headers (tar@7 Header and Pax)', () => {
    /** Parse header blocks back with tar@7's reader, as an archive of these entries. */
    async function readBack(blocks: Buffer[]) {
      const seen: Array<{
        path: string;
        type: string;
        linkpath?: string;
        pax: boolean;
        mode?: number;
      }> = [];
      const p = new tar.Parser({
        onReadEntry: (e) => {
          seen.push({
            path: e.path,
            type: e.type,
            linkpath: e.linkpath,
            pax: !!e.extended,
            mode: e.mode,
          });
          e.resume();
        },
      });
      const done = new Promise((resolve) => p.on('end', resolve));
      p.end(Buffer.concat([...blocks, END_OF_ARCHIVE]));
      await done;
      return seen;
    }

    it('uses PAX exactly for long or non-ASCII paths and link targets, and is stable', async () => {
      const long = `${'d'.repeat(80)}/${'f'.repeat(80)}.txt`;
      const blocks = [
        entryHeader({ path: 'plain.txt', type: 'file', mode: 0o644, size: 0 }),
        entryHeader({ path: long, type: 'file', mode: 0o755, size: 0 }),
        entryHeader({ path: 'dir/Ünï', type: 'dir', mode: 0o755, size: 0 }),
        entryHeader({ path: 'l', type: 'symlink', mode: 0o777, size: 0, linkTarget: long }),
        entryHeader({ path: 'u', type: 'symlink', mode: 0o777, size: 0, linkTarget: 'ü' }),
      ];
      assert.deepEqual(
        blocks.map((b) => b.length / 512),
        [1, 3, 3, 3, 3],
      );
      assert.deepEqual(await readBack(blocks), [
        { path: 'plain.txt', type: 'File', linkpath: undefined, pax: false, mode: 0o644 },
        { path: long, type: 'File', linkpath: undefined, pax: true, mode: 0o755 },
        { path: 'dir/Ünï/', type: 'Directory', linkpath: undefined, pax: true, mode: 0o755 },
        { path: 'l', type: 'SymbolicLink', linkpath: long, pax: true, mode: 0o777 },
        { path: 'u', type: 'SymbolicLink', linkpath: 'ü', pax: true, mode: 0o777 },
      ]);
      const again = entryHeader({ path: long, type: 'file', mode: 0o755, size: 5 });
      assert.deepEqual(again, entryHeader({ path: long, type: 'file', mode: 0o755, size: 5 }));
      assert.equal(again.length + padding(5).length + 5, 3 * 512 + 512);
      // the fallback names of the ustar fields are printable ASCII
      assert.match(blocks[2].subarray(1024, 1124).toString('latin1'), /^[\x20-\x7e]+\0*$/);
    });

    it('refuses a line break in a path or link target rather than write what readers misread', () => {
      assert.throws(
        () => entryHeader({ path: 'l', type: 'symlink', mode: 0o777, size: 0, linkTarget: 'a\nb' }),
        (e: unknown) => isArchiveError(e, 'unsafe-path') && /"l"/.test(e.message),
      );
    });
  });
});
