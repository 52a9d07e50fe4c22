// A git remote at Firefox's shape: a commit of 20,000+ files around a small harness. The engine
// fetches the commit and trees without blobs, then only the subdir's blobs, so `git http-backend`
// sends a small fraction of what a depth-1 fetch of the same commit costs; the tree digest and the
// archive bytes are those of the local repository.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildArchive } from '../src/archive/index.js';
import { startGitHttp, type GitHttpServer } from '../src/local/repo-server.js';
import type { Logger } from '../src/util/log.js';
import { SUBDIR, fastImportRepo } from './helpers/big-git-repo.js';
import { git } from './helpers/repos.js';

function memoryLogger(lines: Array<{ event: string; fields?: Record<string, unknown> }>): Logger {
  const log: Logger = {
    debug: () => {},
    info: (event, fields) => void lines.push({ event, fields }),
    warn: (event, fields) => void lines.push({ event, fields }),
    error: (event, fields) => void lines.push({ event, fields }),
    child: () => log,
  };
  return log;
}

describe('archive engine: git remote, only the subdir is fetched', function () {
  this.timeout(300_000);
  let tmp: string;
  let repo: string;
  let server: GitHttpServer;

  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'git-partial-'));
    repo = path.join(tmp, 'firefox.git');
    fastImportRepo(repo);
    await git(repo, 'config', 'uploadpack.allowFilter', 'true');
    await git(repo, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
    server = await startGitHttp(repo);
  });
  after(async () => {
    await server?.close();
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  it('costs a small fraction of a depth-1 fetch, with the same bytes as the local repository', async () => {
    const local = await buildArchive({
      source: { kind: 'git', path: repo },
      revision: 'main',
      subdir: SUBDIR,
    });
    const lines: Array<{ event: string; fields?: Record<string, unknown> }> = [];
    const before = server.bytesSent;
    const remote = await buildArchive({
      source: { kind: 'git-remote', url: server.url },
      revision: local.revision,
      subdir: SUBDIR,
      policy: { allowRepos: [server.url] },
      log: memoryLogger(lines),
    });
    const partialBytes = server.bytesSent - before;
    assert.equal(remote.treeDigest, local.treeDigest);
    assert.equal(remote.sha256, local.sha256);
    assert.equal(remote.zip?.sha256, local.zip?.sha256);
    assert.equal(remote.files, 21);
    const fetched = lines.find((l) => l.event === 'git.fetched');
    assert.ok(fetched, 'the fetch is logged');
    assert.equal(fetched.fields?.fetches, 2);
    assert.equal(fetched.fields?.blobs, 21);

    // what the whole commit costs: a plain depth-1 fetch through the same server
    const full = path.join(tmp, 'full.git');
    await git(tmp, 'init', '-q', '--bare', full);
    const start = server.bytesSent;
    await git(full, 'fetch', '-q', '--depth', '1', server.url, local.revision);
    const fullBytes = server.bytesSent - start;
    console.log(
      `      git http-backend sent ${partialBytes} bytes for the subdir, ${fullBytes} for a depth-1 fetch (${((100 * partialBytes) / fullBytes).toFixed(1)}%)`,
    );
    assert.ok(partialBytes < fullBytes / 10, `${partialBytes} bytes vs ${fullBytes}`);
  });
});
