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
import { buildArchive, FORMAT_VERSION, unpackArchive } from '../src/archive/index.js';
import { DEFLATE_BLOCK_SIZE } from '../src/archive/deflate.js';
import { DEFAULT_LIMITS } from '../src/archive/index.js';
import { packEntries } from '../src/archive/pack.js';
import type { TreeEntry } from '../src/archive/tree.js';
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

/** A fixed tree, written here so nothing else can change it: text, random-looking and large files. */
function writeGoldenFixture(root: string): void {
  const put = (rel: string, content: Buffer | string, mode = 0o644) => {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
    fs.chmodSync(abs, mode);
  };
  let seed = 7;
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16;
    return b;
  };
  const words = ['mozharness', 'self.run', 'config', 'import os', 'return', 'log.info', 'def'];
  const text = (n: number) => {
    const out: string[] = [];
    for (let len = 0, i = 0; len < n; i++) {
      const w = words[(i * 7 + (i >> 3)) % words.length] + (i % 11 === 0 ? '\n' : ' ');
      out.push(w);
      len += w.length;
    }
    return out.join('').slice(0, n);
  };
  put('README.md', 'Golden fixture of the archive format.\n');
  put('scripts/run.py', '#!/usr/bin/env python3\nprint("run")\n', 0o755);
  put('mozharness/base/script.py', text(300_000));
  put('mozharness/base/empty.py', '');
  put('data/noise.bin', bytes(3 * DEFLATE_BLOCK_SIZE + 1234));
  put('docs/Ünïcödé-名前.txt', 'non-ASCII name\n');
  put(`${'long/'.repeat(25)}file.txt`, 'a path over 100 bytes\n');
  fs.symlinkSync('run.py', path.join(root, 'scripts/alias.py'));
  fs.symlinkSync('../mozharness', path.join(root, 'docs/code'));
}

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
    // src/archive/index.ts and update the three values together.
    assert.equal(FORMAT_VERSION, 2);
    assert.deepEqual(
      { tarGz: r.sha256, zip: r.zip?.sha256, treeDigest: r.treeDigest },
      {
        tarGz: '3ba64137ea0b15426587617b0726be1a0518d27d1e6f469661c15f72590b0d70',
        zip: 'ca798a0fb8ab33a251174019208378414d23d3b825a35be3c165129d28af33b7',
        treeDigest: '456863ce3900e4bb5745ff06338038112282ff557167bc1b3b50fd84d9fdc849',
      },
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
