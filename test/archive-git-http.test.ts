// git-remote over real smart HTTP: `git http-backend` (CGI) behind a loopback node:http server.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { computeTreeDigest, parseSource, resolveRevision } from '../src/archive/index.js';
import { startGitHttp, type RepoServer } from '../src/local/repo-server.js';
import { isArchiveError } from '../src/util/errors.js';
import { SAMPLE_SUBDIR, createGitRepo, git, type SampleRepo } from './helpers/repos.js';

describe('archive engine: git-remote over smart HTTP', function () {
  this.timeout(60_000);
  let tmp: string;
  let repo: SampleRepo;
  let server: RepoServer;
  let base: string;
  let remote: string;

  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'git-http-'));
    repo = await createGitRepo(path.join(tmp, 'work'), { variants: [undefined, 'two'] });
    await git(tmp, 'clone', '-q', '--bare', repo.path, path.join(tmp, 'served', 'gecko-dev.git'));
    server = await startGitHttp(path.join(tmp, 'served', 'gecko-dev.git'));
    remote = server.url;
    base = remote.replace(/\/gecko-dev\.git$/, '');
  });
  after(async () => {
    await server?.close();
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  it('fetches one revision (branch or full sha) and digests it like the local repository', async () => {
    const source = parseSource(remote);
    assert.deepEqual(source, { kind: 'git-remote', url: remote });
    const policy = { allowRepos: [remote] };
    const seen: string[] = [];
    const local = await computeTreeDigest({
      source: { kind: 'git', path: repo.path },
      revision: repo.revisions[0],
      subdir: SAMPLE_SUBDIR,
    });
    const bySha = await computeTreeDigest({
      source,
      revision: repo.revisions[0],
      subdir: SAMPLE_SUBDIR,
      policy,
      onRequest: (u) => seen.push(u),
    });
    assert.equal(bySha.treeDigest, local.treeDigest);
    assert.equal(bySha.revision, repo.revisions[0]);
    assert.deepEqual(seen, [remote]);
    const byBranch = await computeTreeDigest({
      source,
      revision: 'main',
      subdir: SAMPLE_SUBDIR,
      policy,
    });
    assert.equal(byBranch.revision, repo.revisions[1]);
    assert.notEqual(byBranch.treeDigest, local.treeDigest);
    assert.equal(await resolveRevision(source, 'main', policy), repo.revisions[1]);
  });

  it('refuses an unknown ref (not-found) and a repository off the allow-list (no request)', async () => {
    const before = server.requests.length;
    await assert.rejects(
      computeTreeDigest({
        source: { kind: 'git-remote', url: remote },
        revision: 'no-such-branch',
        subdir: SAMPLE_SUBDIR,
        policy: { allowRepos: [remote], retries: 0 },
      }),
      (e: unknown) => isArchiveError(e, 'not-found') && /no-such-branch/.test(e.message),
    );
    const after = server.requests.length;
    assert.ok(after > before);
    await assert.rejects(
      computeTreeDigest({
        source: { kind: 'git-remote', url: remote },
        revision: 'main',
        subdir: SAMPLE_SUBDIR,
        policy: { allowRepos: [`${base}/other.git`] },
      }),
      (e: unknown) => isArchiveError(e, 'not-allowed'),
    );
    assert.equal(server.requests.length, after);
  });
});
