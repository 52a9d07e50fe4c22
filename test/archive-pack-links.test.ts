// `build` refuses a tree whose symlinks escape the subdir once resolved through each other
// (`s -> .` plus `etc -> s/s/s/../../../etc`), from every kind of source, and so do the tree
// digest and the decision task's prediction, which run the same engine check.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildArchive, computeTreeDigest, type SourceSpec } from '../src/archive/index.js';
import { computeHarnessDigest } from '../src/decision/digest.js';
import { isArchiveError } from '../src/util/errors.js';
import { git, hg, startHgServe, type HgServer } from './helpers/repos.js';

const SUBDIR = 'testing/mozharness';

/** The harness with a chain of links that resolves to the host's /etc (or a sibling dir). */
function writeTree(root: string, chain: Record<string, string>): void {
  const h = path.join(root, SUBDIR);
  fs.mkdirSync(path.join(h, 'scripts'), { recursive: true });
  fs.writeFileSync(path.join(h, 'scripts', 'run.py'), 'print("run")\n');
  fs.writeFileSync(path.join(root, 'secret.txt'), 'outside the subdir\n');
  for (const [link, target] of Object.entries(chain)) {
    fs.mkdirSync(path.dirname(path.join(h, link)), { recursive: true });
    fs.symlinkSync(target, path.join(h, link));
  }
}

async function refuses(p: Promise<unknown>, link: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isArchiveError(e), String(e));
    assert.equal(e.code, 'unsafe-path', e.message);
    assert.ok(e.message.includes(JSON.stringify(link)), `names ${link}: ${e.message}`);
    return true;
  });
}

const CHAINS: Array<[string, Record<string, string>, string]> = [
  ['s -> . then etc -> s/s/s/../../../etc', { s: '.', etc: 's/s/s/../../../etc' }, 'etc'],
  // the escaping link sorts before the link it goes through
  ['a -> z/z/../../secret.txt through a later z -> .', { a: 'z/z/../../secret.txt', z: '.' }, 'a'],
  [
    'a link in a subdirectory through one above it',
    { 'scripts/up': '../s/s/../../x', s: '.' },
    'scripts/up',
  ],
];

describe('archive build: symlink chains that escape the subdir', function () {
  this.timeout(120_000);
  let tmp: string;
  let server: HgServer | undefined;
  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'archive-links-'));
  });
  after(async () => {
    await server?.close();
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  for (const [name, chain, link] of CHAINS) {
    it(`refuses ${name} from a directory, naming the link`, async () => {
      const root = path.join(tmp, `dir-${link.replace(/\W/g, '_')}`);
      writeTree(root, chain);
      const opts = {
        source: { kind: 'dir', path: root } as SourceSpec,
        revision: 'f'.repeat(40),
        subdir: SUBDIR,
      };
      const out = path.join(tmp, 'out', `${link.replace(/\W/g, '_')}.tar.gz`);
      await refuses(buildArchive({ ...opts, out, zipOut: out + '.zip' }), link);
      await refuses(computeTreeDigest(opts), link);
      assert.ok(!fs.existsSync(out) && !fs.existsSync(out + '.zip'));
    });
  }

  it('refuses the chain from local git, git-remote, local hg and hgweb alike', async () => {
    const [, chain, link] = CHAINS[0];
    const gitRoot = path.join(tmp, 'git');
    writeTree(gitRoot, chain);
    await git(gitRoot, 'init', '-q', '-b', 'main');
    await git(gitRoot, 'add', '-A');
    await git(gitRoot, 'commit', '-q', '-m', 'links');
    const hgRoot = path.join(tmp, 'hg');
    writeTree(hgRoot, chain);
    await hg(hgRoot, 'init');
    await hg(hgRoot, 'addremove', '-q');
    await hg(hgRoot, 'commit', '-q', '-m', 'links');
    server = await startHgServe(hgRoot);
    const policy = { allowRepos: [server.url, `file://${gitRoot}`], retries: 0 };
    const sources: Array<[SourceSpec, string]> = [
      [{ kind: 'git', path: gitRoot }, 'main'],
      [{ kind: 'git-remote', url: `file://${gitRoot}` }, 'main'],
      [{ kind: 'hg', path: hgRoot }, 'tip'],
      [{ kind: 'hgweb', url: server.url }, 'tip'],
    ];
    for (const [source, revision] of sources) {
      await refuses(buildArchive({ source, revision, subdir: SUBDIR, policy }), link);
    }
  });

  it("refuses it in the decision task's prediction of the archive", async () => {
    const root = path.join(tmp, 'decision');
    writeTree(root, CHAINS[0][1]);
    await refuses(computeHarnessDigest(root, 'e'.repeat(40), SUBDIR), 'etc');
  });

  it('still packs links that chain but stay inside', async () => {
    const root = path.join(tmp, 'inside');
    writeTree(root, { s: '.', alias: 's/s/scripts/run.py', up: 'scripts/..' });
    const r = await buildArchive({
      source: { kind: 'dir', path: root },
      revision: 'd'.repeat(40),
      subdir: SUBDIR,
    });
    assert.equal(r.files, 4);
  });
});
