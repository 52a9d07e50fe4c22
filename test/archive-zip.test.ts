// The zip beside the tar.gz, and the determinism of both: Info-ZIP's unzip restores modes and
// symlinks, every thread count gives the same bytes, and a fixed fixture has pinned sha256s.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { buildArchive, FORMAT_VERSION, packArchive, unpackArchive } from '../src/archive/index.js';
import { DEFAULT_LIMITS } from '../src/archive/index.js';
import { packEntries } from '../src/archive/pack.js';
import type { TreeEntry } from '../src/archive/tree.js';
import { GOLDEN, writeGoldenFixture } from './helpers/golden-fixture.js';
import {
  SAMPLE_EXECUTABLE,
  SAMPLE_SUBDIR,
  SAMPLE_SYMLINK,
  SAMPLE_SYMLINK_TARGET,
  SAMPLE_UNICODE_PATH,
  writeSampleTree,
} from './helpers/repos.js';

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const hasUnzip = spawnSync('unzip', ['-v']).status === 0;

describe('archive zip and determinism', function () {
  this.timeout(120_000);
  let tmp: string;
  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'archive-zip-'));
  });
  after(async () => {
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  it('pins the tar.gz and zip bytes of a fixed fixture (a change bumps FORMAT_VERSION)', async () => {
    const root = path.join(tmp, 'golden');
    writeGoldenFixture(path.join(root, 'h'));
    const r = await buildArchive({
      source: { kind: 'dir', path: root },
      revision: 'a'.repeat(40),
      subdir: 'h',
    });
    // If these change on purpose (engine, block size, level or layout), bump FORMAT_VERSION in
    // src/archive/index.ts and update GOLDEN in test/helpers/golden-fixture.ts.
    assert.equal(FORMAT_VERSION, GOLDEN.formatVersion);
    assert.deepEqual(
      { tarGz: r.sha256, zip: r.zip?.sha256, treeDigest: r.treeDigest },
      { tarGz: GOLDEN.tarGz, zip: GOLDEN.zip, treeDigest: GOLDEN.treeDigest },
    );
  });

  it('gives identical bytes with 0, 1, 2 and 4 deflate threads', async () => {
    const root = path.join(tmp, 'threads');
    writeGoldenFixture(path.join(root, 'h'));
    const seen = new Set<string>();
    for (const threads of [0, 1, 2, 4]) {
      const r = await buildArchive({
        source: { kind: 'dir', path: root },
        revision: 'b'.repeat(40),
        subdir: 'h',
        threads,
        out: path.join(tmp, `t${threads}.tar.gz`),
        zipOut: path.join(tmp, `t${threads}.zip`),
      });
      assert.equal(r.sha256, sha256(fs.readFileSync(path.join(tmp, `t${threads}.tar.gz`))));
      assert.equal(r.zip?.sha256, sha256(fs.readFileSync(path.join(tmp, `t${threads}.zip`))));
      assert.equal(r.zip?.size, fs.statSync(path.join(tmp, `t${threads}.zip`)).size);
      seen.add(`${r.sha256} ${r.zip?.sha256}`);
    }
    assert.equal(seen.size, 1, [...seen].join('\n'));
    // the block-parallel stream is one ordinary gzip member: gunzip reads it back
    const tarBytes = zlib.gunzipSync(fs.readFileSync(path.join(tmp, 't2.tar.gz')));
    assert.equal(tarBytes.length % 512, 0);
  });

  it('reuses its buffers without mixing bytes: a file and a plain stream get the same bytes', async () => {
    // many small files (the small buffers), multi-block random and text files (the block-sized
    // ones, and results that barely fit), compressed on threads whose results come back in reused
    // buffers; a sink that keeps every chunk it is given would see any chunk reused too early
    const root = path.join(tmp, 'reuse');
    let seed = 11;
    const random = (n: number) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16;
      return b;
    };
    for (let i = 0; i < 300; i++) {
      const size = 1 + ((i * 997) % 20_000);
      const content =
        i % 3 ? Buffer.from(`line ${i} of the harness\n`.repeat(size / 20 + 1)) : random(size);
      fs.mkdirSync(path.join(root, 'h', `d${i % 7}`), { recursive: true });
      fs.writeFileSync(path.join(root, 'h', `d${i % 7}`, `f${i}`), content.subarray(0, size));
    }
    fs.writeFileSync(path.join(root, 'h', 'big-random'), random(700_000));
    fs.writeFileSync(path.join(root, 'h', 'big-text'), Buffer.from('abc\n'.repeat(300_000)));
    const opts = {
      source: { kind: 'dir' as const, path: root },
      revision: 'c'.repeat(40),
      subdir: 'h',
    };
    const kept: Buffer[] = [];
    const keptZip: Buffer[] = [];
    const keeper = (into: Buffer[]) =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          into.push(chunk); // kept, not copied
          cb();
        },
      });
    const streamed = await packArchive({ ...opts, threads: 2 }, keeper(kept), keeper(keptZip));
    const seen = new Set<string>();
    for (const threads of [0, 2]) {
      const out = path.join(tmp, `reuse${threads}.tar.gz`);
      const r = await buildArchive({ ...opts, threads, out, zipOut: `${out}.zip` });
      seen.add(
        `${sha256(fs.readFileSync(out))} ${sha256(fs.readFileSync(`${out}.zip`))} ${r.sha256}`,
      );
    }
    seen.add(`${sha256(Buffer.concat(kept))} ${sha256(Buffer.concat(keptZip))} ${streamed.sha256}`);
    assert.equal(seen.size, 1, [...seen].join('\n'));
    const dest = path.join(tmp, 'reuse-unpacked');
    await unpackArchive(path.join(tmp, 'reuse2.tar.gz'), dest);
    for (const rel of ['big-random', 'big-text', 'd0/f0', 'd1/f1', 'd6/f293']) {
      assert.deepEqual(
        fs.readFileSync(path.join(dest, rel)),
        fs.readFileSync(path.join(root, 'h', rel)),
        rel,
      );
    }
  });

  it('is unpacked by Info-ZIP unzip with exec bits, symlinks and names intact', async function () {
    if (!hasUnzip && !process.env.CI) this.skip(); // CI installs unzip: never skipped there
    const root = path.join(tmp, 'sample');
    writeSampleTree(root);
    const zipFile = path.join(tmp, 'sample.zip');
    const tarFile = path.join(tmp, 'sample.tar.gz');
    const r = await buildArchive({
      source: { kind: 'dir', path: root },
      revision: 'c'.repeat(40),
      subdir: SAMPLE_SUBDIR,
      out: tarFile,
      zipOut: zipFile,
    });
    const listing = execFileSync('zipinfo', [zipFile], { encoding: 'utf8' });
    // made by Unix, fixed time, no extra fields ("-" after "b" in the zipinfo columns)
    for (const line of listing.split('\n').filter((l) => /^[-dl]r/.test(l))) {
      assert.match(line, / 3\.0 unx /, line);
      assert.match(line, / b- (defN|stor) 80-Jan-01 00:00 /, line);
    }
    const dest = path.join(tmp, 'unzipped');
    execFileSync('unzip', ['-q', zipFile, '-d', dest]);
    const h = (rel: string) => path.join(dest, ...rel.split('/'));
    assert.equal(fs.statSync(h(SAMPLE_EXECUTABLE)).mode & 0o777, 0o755);
    assert.ok(fs.lstatSync(h(SAMPLE_SYMLINK)).isSymbolicLink());
    assert.equal(fs.readlinkSync(h(SAMPLE_SYMLINK)), SAMPLE_SYMLINK_TARGET);
    assert.ok(fs.existsSync(h(SAMPLE_UNICODE_PATH)), 'UTF-8 name restored');
    // the same tree as the tar.gz holds, entry for entry
    const fromTar = path.join(tmp, 'untarred');
    await unpackArchive(tarFile, fromTar, { sha256: r.sha256 });
    const diff = spawnSync('diff', ['-r', '--no-dereference', fromTar, dest], { encoding: 'utf8' });
    assert.equal(diff.status, 0, diff.stdout + diff.stderr);
    const test = spawnSync('unzip', ['-t', zipFile], { encoding: 'utf8' });
    assert.equal(test.status, 0, test.stdout);
  });

  it('switches to zip64 end records only when the entry count needs them', async function () {
    if (!hasUnzip && !process.env.CI) this.skip(); // CI installs unzip: never skipped there
    const count = 66_000;
    async function* entries(): AsyncGenerator<TreeEntry> {
      for (let i = 0; i < count; i++) {
        // directories: no content to compress, so the test stays quick
        yield { path: `d${String(i).padStart(6, '0')}`, type: 'dir', mode: 0o755, size: 0 };
      }
      yield {
        path: 'z',
        type: 'file',
        mode: 0o644,
        size: 1,
        read: async function* () {
          yield Buffer.from('x');
        },
      };
    }
    const chunks: Buffer[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
    const tarSink = new Writable({ write: (_c, _e, cb) => cb() });
    await packEntries(entries(), { tarGz: tarSink, zip: sink }, FORMAT_VERSION, DEFAULT_LIMITS, {
      threads: 2,
    });
    const zip = Buffer.concat(chunks);
    assert.ok(zip.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'zip64 end record');
    const file = path.join(tmp, 'many.zip');
    fs.writeFileSync(file, zip);
    const test = spawnSync('unzip', ['-tq', file], { encoding: 'utf8' });
    assert.equal(test.status, 0, test.stdout + test.stderr);
    assert.match(test.stdout, new RegExp(`No errors detected`));
    // and a small zip has none
    const small = fs.readFileSync(path.join(tmp, 'sample.zip'));
    assert.ok(!small.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])));
  });
});
