// Fault injection on the hgweb path with nock (faults a real hg serve cannot easily produce): a 500
// then success, stalls, truncation, corruption, 404s, redirects. The good bodies are real answers
// recorded from a real `hg serve` first. Only loopback addresses are used.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import nock from 'nock';
import { buildArchive, type BuildOptions } from '../src/archive/index.js';
import { isArchiveError } from '../src/util/errors.js';
import { httpGet, backoffDelay } from '../src/util/http.js';
import { createLogger } from '../src/util/log.js';
import { SAMPLE_SUBDIR, createHgRepo, startHgServe } from './helpers/repos.js';

// nock intercepts every request of the process once active: keep it off except inside this file's
// tests, so the real servers of other test files are never proxied through it.
nock.restore();

// Port 9 (discard) on loopback: nothing real answers there; nock does.
const FAKE = 'http://127.0.0.1:9/mozilla-central';

describe('archive engine: hgweb fault injection', function () {
  this.timeout(60_000);
  let tmp: string;
  let work: string;
  let node: string;
  let jsonRev: string;
  let archive: Buffer;
  let expected: string;
  let archivePath: string;

  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'faults-test-'));
    const repo = await createHgRepo(path.join(tmp, 'mozilla-central'));
    node = repo.revisions[0];
    const server = await startHgServe(repo.path);
    try {
      jsonRev = await (await fetch(`${server.url}/json-rev/tip`)).text();
      archivePath = `/mozilla-central/archive/${node}.tar.gz/${SAMPLE_SUBDIR}`;
      archive = Buffer.from(
        await (await fetch(`${server.url}/archive/${node}.tar.gz/${SAMPLE_SUBDIR}`)).arrayBuffer(),
      );
    } finally {
      await server.close();
    }
    expected = (
      await buildArchive({
        source: { kind: 'hg', path: repo.path },
        revision: node,
        subdir: SAMPLE_SUBDIR,
      })
    ).sha256;
  });

  before(() => {
    if (!nock.isActive()) nock.activate();
  });

  beforeEach(async () => {
    work = await fs.promises.mkdtemp(path.join(tmp, 'work-'));
  });

  afterEach(async () => {
    const leftovers = fs.readdirSync(work);
    nock.cleanAll();
    assert.deepEqual(leftovers, [], 'no staging directory left behind');
  });

  after(async () => {
    nock.cleanAll();
    nock.restore();
    await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  function options(extra: Partial<BuildOptions> = {}) {
    const requests: string[] = [];
    const lines: string[] = [];
    const opts: BuildOptions = {
      source: { kind: 'hgweb', url: FAKE },
      revision: 'tip',
      subdir: SAMPLE_SUBDIR,
      policy: {
        allowRepos: [FAKE],
        retries: 2,
        maxRetryTimeMs: 20_000,
        idleTimeoutMs: 400,
        connectTimeoutMs: 2000,
      },
      tmpDir: work,
      onRequest: (u) => requests.push(new URL(u).pathname),
      log: createLogger({ json: true, level: 'debug', write: (l) => lines.push(l) }),
      ...extra,
    };
    return {
      opts,
      requests,
      retries: () => lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'http.retry'),
    };
  }

  async function rejects(p: Promise<unknown>, code: string, pattern?: RegExp) {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isArchiveError(e), String(e));
      assert.equal(e.code, code, e.message);
      if (pattern) assert.match(e.message, pattern);
      return true;
    });
  }

  it('retries a 500, then succeeds with the same bytes as a local build', async () => {
    const scope = nock('http://127.0.0.1:9')
      .get('/mozilla-central/json-rev/tip')
      .reply(500, 'oops')
      .get('/mozilla-central/json-rev/tip')
      .reply(200, jsonRev)
      .get(archivePath)
      .reply(503)
      .get(archivePath)
      .reply(200, archive, { 'content-length': String(archive.length) });
    const { opts, requests, retries } = options();
    const r = await buildArchive({ ...opts, out: path.join(tmp, 'retried.tar.gz') });
    assert.equal(r.sha256, expected);
    assert.equal(r.revision, node);
    assert.ok(scope.isDone());
    assert.equal(requests.length, 4);
    assert.deepEqual(
      retries().map((l) => l.reason),
      ['HTTP 500', 'HTTP 503'],
    );
  });

  it('gives up after the bounded number of retries', async () => {
    nock('http://127.0.0.1:9').get('/mozilla-central/json-rev/tip').times(3).reply(502);
    const { opts, requests } = options();
    await rejects(buildArchive(opts), 'unavailable', /after 3 attempt\(s\): HTTP 502/);
    assert.equal(requests.length, 3);
  });

  it('times out a stall before the response, retries, and succeeds', async () => {
    nock('http://127.0.0.1:9')
      .get('/mozilla-central/json-rev/tip')
      .delay(3000)
      .reply(200, jsonRev)
      .get('/mozilla-central/json-rev/tip')
      .reply(200, jsonRev)
      .get(archivePath)
      .reply(200, archive);
    const { opts, retries } = options();
    const r = await buildArchive(opts);
    assert.equal(r.sha256, expected);
    assert.match(retries()[0].reason, /idle timeout/);
  });

  it('times out a body that stalls halfway and archives nothing', async () => {
    nock('http://127.0.0.1:9')
      .get('/mozilla-central/json-rev/tip')
      .reply(200, jsonRev)
      .get(archivePath)
      .reply(200, () => {
        const body = new PassThrough();
        body.write(archive.subarray(0, Math.floor(archive.length / 2)));
        return body; // never ends
      });
    const { opts } = options();
    const out = path.join(tmp, 'stalled.tar.gz');
    await rejects(buildArchive({ ...opts, out }), 'unavailable', /idle timeout/);
    assert.ok(!fs.existsSync(out));
  });

  it('detects a truncated download (short body against Content-Length)', async () => {
    nock('http://127.0.0.1:9')
      .get('/mozilla-central/json-rev/tip')
      .reply(200, jsonRev)
      .get(archivePath)
      .reply(200, archive.subarray(0, archive.length - 100), {
        'content-length': String(archive.length),
      });
    const { opts } = options();
    const out = path.join(tmp, 'truncated.tar.gz');
    await rejects(buildArchive({ ...opts, out }), 'corrupt', /truncated|corrupt/);
    assert.ok(!fs.existsSync(out));
  });

  it('detects a truncated download without Content-Length, and corrupt bytes', async () => {
    const flipped = Buffer.from(archive);
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    nock('http://127.0.0.1:9')
      .get('/mozilla-central/json-rev/tip')
      .twice()
      .reply(200, jsonRev)
      .get(archivePath)
      .reply(200, archive.subarray(0, archive.length - 30))
      .get(archivePath)
      .reply(200, flipped);
    const { opts } = options();
    await rejects(
      buildArchive(opts),
      'corrupt',
      new RegExp(`download of ${FAKE}.*(truncated|corrupt)`),
    );
    await rejects(buildArchive(opts), 'corrupt');
  });

  it('treats a 404 for the revision as permanent: one request, repository, revision and subdir named', async () => {
    nock('http://127.0.0.1:9')
      .get('/mozilla-central/json-rev/deadbeef')
      .reply(404, '{"error": "unknown revision"}');
    const { opts, requests } = options({ revision: 'deadbeef' });
    await rejects(
      buildArchive(opts),
      'not-found',
      new RegExp(`repository ${FAKE}, revision deadbeef, subdir ${SAMPLE_SUBDIR}`),
    );
    assert.deepEqual(requests, ['/mozilla-central/json-rev/deadbeef']);
  });

  it('treats a 404 for the subdir archive as permanent', async () => {
    nock('http://127.0.0.1:9')
      .get(`/mozilla-central/archive/${node}.tar.gz/testing/nothing`)
      .reply(404, 'not found');
    const { opts, requests } = options({ revision: node, subdir: 'testing/nothing' });
    await rejects(buildArchive(opts), 'not-found', /subdir testing\/nothing/);
    assert.equal(requests.length, 1, 'a full node is not re-resolved, and a 404 is not retried');
  });

  it('refuses a redirect to a repository that is not allowed', async () => {
    nock('http://127.0.0.1:9')
      .get('/mozilla-central/json-rev/tip')
      .reply(302, '', { location: 'http://127.0.0.1:9/elsewhere/json-rev/tip' });
    const { opts, requests } = options();
    await rejects(buildArchive(opts), 'not-allowed', /elsewhere/);
    assert.equal(requests.length, 1);
  });

  it('refuses a hostile archive from the server (entry escaping the subdir)', async () => {
    const { default: zlib } = await import('node:zlib');
    const { entryHeader, END_OF_ARCHIVE } = await import('../src/archive/tar.js');
    const evil = zlib.gzipSync(
      Buffer.concat([
        entryHeader({
          path: `mozilla-central-${node.slice(0, 12)}/${SAMPLE_SUBDIR}/../../../evil`,
          type: 'file',
          mode: 0o644,
          size: 0,
        }),
        END_OF_ARCHIVE,
      ]),
    );
    nock('http://127.0.0.1:9').get(archivePath).reply(200, evil);
    const { opts } = options({ revision: node });
    await rejects(buildArchive(opts), 'unsafe-path', /evil/);
  });

  it('backoff delays are jittered, exponential and capped', () => {
    for (let a = 0; a < 8; a++) {
      const cap = Math.min(10_000, 500 * 2 ** a);
      for (let i = 0; i < 20; i++) {
        const d = backoffDelay(a);
        assert.ok(d >= cap / 2 && d <= cap, `${d} for attempt ${a}`);
      }
    }
  });

  it('httpGet returns 4xx as they are, without retrying', async () => {
    nock('http://127.0.0.1:9').get('/x').reply(410, 'gone');
    const seen: string[] = [];
    const res = await httpGet('http://127.0.0.1:9/x', { onRequest: (u) => seen.push(u) });
    assert.equal(res.status, 410);
    res.body.resume();
    assert.equal(seen.length, 1);
  });
});
