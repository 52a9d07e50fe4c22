// Benchmark: what a git-remote build of the harness costs on the wire, against a depth-1 fetch of
// the same commit, for a repository of 20,000 files around a small harness, served by
// `git http-backend` (uploadpack.allowFilter) on loopback. Run: node --import tsx bench/git-fetch.ts
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildArchive } from '../src/archive/index.js';
import { startGitHttp } from '../src/local/repo-server.js';
import { OTHER_FILES, SUBDIR, fastImportRepo } from '../test/helpers/big-git-repo.js';
import { git } from '../test/helpers/repos.js';

export async function run(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-git-fetch-'));
  const repo = path.join(tmp, 'firefox.git');
  fastImportRepo(repo);
  await git(repo, 'config', 'uploadpack.allowFilter', 'true');
  await git(repo, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
  const server = await startGitHttp(repo);
  try {
    const revision = (await git(repo, 'rev-parse', 'main')).trim();
    let t0 = process.hrtime.bigint();
    let b0 = server.bytesSent;
    let r0 = server.requests.length;
    await buildArchive({
      source: { kind: 'git-remote', url: server.url },
      revision,
      subdir: SUBDIR,
      policy: { allowRepos: [server.url] },
    });
    const ours = {
      ms: Number(process.hrtime.bigint() - t0) / 1e6,
      bytes: server.bytesSent - b0,
      requests: server.requests.length - r0,
    };
    const full = path.join(tmp, 'full.git');
    await git(tmp, 'init', '-q', '--bare', full);
    t0 = process.hrtime.bigint();
    b0 = server.bytesSent;
    r0 = server.requests.length;
    await git(full, 'fetch', '-q', '--depth', '1', server.url, revision);
    const base = {
      ms: Number(process.hrtime.bigint() - t0) / 1e6,
      bytes: server.bytesSent - b0,
      requests: server.requests.length - r0,
    };
    console.log(`bench/git-fetch: one commit of ${OTHER_FILES} files + a 21-entry harness`);
    console.log(
      `  buildArchive from the git remote (blob:none + the subdir's blobs): ${ours.bytes} bytes sent, ${ours.requests} HTTP requests, ${ours.ms.toFixed(0)} ms (fetch and pack)`,
    );
    console.log(
      `  baseline: git fetch --depth 1 of the same commit:               ${base.bytes} bytes sent, ${base.requests} HTTP requests, ${base.ms.toFixed(0)} ms`,
    );
    console.log(`  ratio of bytes: ${(ours.bytes / base.bytes).toFixed(3)}x`);
  } finally {
    await server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  run().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
