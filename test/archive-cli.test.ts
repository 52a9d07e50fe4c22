// CLI contract of build / digest / unpack, run as a real process.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../src/cli/main.js';
import { spawnCli, type CliResult } from './helpers/cli.js';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import {
  SAMPLE_SUBDIR,
  createGitRepo,
  createHgRepo,
  startHgServe,
  type HgServer,
  type SampleRepo,
} from './helpers/repos.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function cli(...args: string[]): Promise<CliResult> {
  return spawnCli(args, { ...process.env, MOZHARNESS_ARCHIVE_LOG_LEVEL: 'warn' });
}

describe('archive CLI: build, digest, unpack', function () {
  this.timeout(120_000);
  let tmp: string;
  let hgRepo: SampleRepo;
  let gitRepo: SampleRepo;
  let server: HgServer;

  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'archive-cli-'));
    [hgRepo, gitRepo] = await Promise.all([
      createHgRepo(path.join(tmp, 'mozilla-central')),
      createGitRepo(path.join(tmp, 'gecko-dev')),
    ]);
    server = await startHgServe(hgRepo.path);
  });
  after(async () => {
    await server?.close();
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  it('build --json prints the metadata document; hgweb and git agree', async () => {
    const schema = JSON.parse(
      fs.readFileSync(path.join(root, 'schemas/archive-metadata.json'), 'utf8'),
    );
    const ajv = new Ajv({ strict: true });
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    const validate = ajv.compile(schema);
    const docs: Array<Record<string, any>> = [];
    for (const [source, revision] of [
      [server.url, 'tip'],
      [gitRepo.path, 'HEAD'],
    ]) {
      const out = path.join(tmp, `cli-${docs.length}.tar.gz`);
      const r = await cli(
        'build',
        '--source',
        source,
        '--revision',
        revision,
        '--subdir',
        SAMPLE_SUBDIR,
        '--out',
        out,
        '--zip-out',
        out.replace(/\.tar\.gz$/, '.zip'),
        '--json',
      );
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as Record<string, any>;
      assert.ok(validate(doc), JSON.stringify(validate.errors));
      assert.deepEqual(Object.keys(doc).sort(), [
        'files',
        'format',
        'formatVersion',
        'repository',
        'revision',
        'sha256',
        'size',
        'subdir',
        'treeDigest',
        'zip',
      ]);
      assert.equal(
        doc.sha256,
        crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex'),
      );
      const zipped = fs.readFileSync(out.replace(/\.tar\.gz$/, '.zip'));
      assert.deepEqual(doc.zip, {
        sha256: crypto.createHash('sha256').update(zipped).digest('hex'),
        size: zipped.length,
      });
      assert.equal(doc.size, fs.statSync(out).size);
      assert.equal(doc.repository, source);
      docs.push(doc);
    }
    assert.equal(docs[0].revision, hgRepo.revisions[0]);
    assert.equal(docs[1].revision, gitRepo.revisions[0]);
    assert.equal(docs[0].sha256, docs[1].sha256);
    assert.deepEqual(docs[0].zip, docs[1].zip);
    assert.equal(docs[0].treeDigest, docs[1].treeDigest);

    const d = await cli(
      'digest',
      '--source',
      hgRepo.path,
      '--revision',
      'tip',
      '--subdir',
      SAMPLE_SUBDIR,
      '--json',
    );
    assert.equal(d.code, 0, d.stderr);
    const digest = JSON.parse(d.stdout) as Record<string, any>;
    assert.equal(digest.treeDigest, docs[0].treeDigest);
    assert.equal(digest.files, docs[0].files);
    assert.equal(digest.revision, hgRepo.revisions[0]);
  });

  it('unpack: exit 0 on success, non-zero with a clear message on refusal', async () => {
    const out = path.join(tmp, 'cli-0.tar.gz');
    const sha = crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex');
    const dest = path.join(tmp, 'unpacked');
    const ok = await cli('unpack', out, '--dest', dest, '--sha256', sha);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /unpacked 15 files/);
    assert.ok(fs.existsSync(path.join(dest, 'scripts/desktop_unittest.py')));

    const [bad, again, limited] = await Promise.all([
      cli('unpack', out, '--dest', path.join(tmp, 'bad'), '--sha256', '0'.repeat(64)),
      cli('unpack', out, '--dest', dest),
      cli('unpack', out, '--dest', path.join(tmp, 'limited'), '--max-files', '2'),
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /error: archive .* has sha256 [0-9a-f]{64}, expected 0{64}/);
    assert.ok(!fs.existsSync(path.join(tmp, 'bad')));

    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists and is not an empty directory/);

    assert.equal(limited.code, 1);
    assert.match(limited.stderr, /more than 2/);
  });

  it('build refusals: unknown revision, unsafe subdir, repository not allowed; usage errors exit 2', async () => {
    const [unknown, unsafe, missing] = await Promise.all([
      cli(
        'build',
        '--source',
        server.url,
        '--revision',
        'nonexistent',
        '--subdir',
        SAMPLE_SUBDIR,
        '--out',
        path.join(tmp, 'x.tar.gz'),
      ),
      cli('digest', '--source', gitRepo.path, '--revision', 'HEAD', '--subdir', '../etc'),
      cli('build', '--source', gitRepo.path, '--revision', 'HEAD'),
    ]);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      new RegExp(`repository ${server.url}, revision nonexistent, subdir ${SAMPLE_SUBDIR}`),
    );
    assert.ok(!fs.existsSync(path.join(tmp, 'x.tar.gz')));

    assert.equal(unsafe.code, 1);
    assert.match(unsafe.stderr, /unsafe subdir "\.\.\/etc"/);

    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--subdir/);
  });

  it('has help for each command', async () => {
    const program = await buildProgram();
    for (const cmd of ['build', 'digest', 'unpack']) {
      const sub = program.commands.find((c) => c.name() === cmd);
      assert.ok(sub, cmd);
      assert.match(sub.helpInformation(), cmd === 'unpack' ? /--sha256 <hex>/ : /--revision <rev>/);
    }
  });
});
