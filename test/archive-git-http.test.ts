// git-remote over real smart HTTP: `git http-backend` (CGI) behind a loopback node:http server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { computeTreeDigest, parseSource, resolveRevision } from '../src/archive/index.js';
import { isArchiveError } from '../src/util/errors.js';
import { GIT_ENV, SAMPLE_SUBDIR, createGitRepo, git, type SampleRepo } from './helpers/repos.js';

/** Serve every bare repository under `root` with git's own smart-HTTP CGI. */
function startGitHttp(
  root: string,
): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push(u.pathname);
    const cgi = spawn('git', ['http-backend'], {
      env: {
        ...GIT_ENV,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(u.pathname),
        QUERY_STRING: u.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        CONTENT_LENGTH: req.headers['content-length'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
        else res.setHeader(k, v);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

describe('archive engine: git-remote over smart HTTP', function () {
  this.timeout(60_000);
  let tmp: string;
  let repo: SampleRepo;
  let server: Awaited<ReturnType<typeof startGitHttp>>;
  let remote: string;

  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'git-http-'));
    repo = await createGitRepo(path.join(tmp, 'work'), { variants: [undefined, 'two'] });
    await git(tmp, 'clone', '-q', '--bare', repo.path, path.join(tmp, 'served', 'gecko-dev.git'));
    server = await startGitHttp(path.join(tmp, 'served'));
    remote = `${server.url}/gecko-dev.git`;
  });
  after(async () => {
    await server?.close();
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  it('fetches one revision (branch or full sha) and digests it like the local repository', async () => {
    const source = parseSource(remote);
    assert.deepEqual(source, { kind: 'git-remote', url: remote });
    const policy = { allowRepos: [server.url + '/gecko-dev.git'] };
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
        policy: { allowRepos: [`${server.url}/other.git`] },
      }),
      (e: unknown) => isArchiveError(e, 'not-allowed'),
    );
    assert.equal(server.requests.length, after);
  });
});
