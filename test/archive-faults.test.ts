// Fault injection on the hgweb path with a real local HTTP server that plays scripted faults: a
// 500 then success, stalls, truncation, corruption, 404s, redirects. The good bodies are real
// answers recorded from a real `hg serve` first. Only loopback addresses are used.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildArchive, type BuildOptions } from '../src/archive/index.js';
import { isArchiveError } from '../src/util/errors.js';
import { httpGet } from '../src/util/http.js';
import { createLogger } from '../src/util/log.js';
import { backoffDelay } from '../src/util/retry.js';
import { SAMPLE_SUBDIR, createHgRepo, startHgServe } from './helpers/repos.js';

type Reply = (res: http.ServerResponse) => void;

/** Answer with `status`, `body` and `headers` (a Content-Length unless told otherwise). */
const reply =
  (status: number, body: string | Buffer = '', headers: Record<string, string> = {}): Reply =>
  (res) => {
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };

/** Never answer (the client's idle timeout must end it). */
const stall: Reply = () => {};

/** Send the headers and `head` of the body, then nothing more. */
const stallAfter =
  (head: Buffer): Reply =>
  (res) => {
    res.writeHead(200);
    res.write(head);
  };

/** Send `body` and close the connection: with `length`, fewer bytes than announced. */
const closeAfter =
  (body: Buffer, length?: number): Reply =>
  (res) => {
    res.writeHead(
      200,
      length === undefined ? { connection: 'close' } : { 'content-length': String(length) },
    );
    res.write(body, () => res.destroy());
  };

/**
 * A loopback server answering each path with its scripted replies in order; a request nobody
 * scripted is answered 599 and counted, so a test sees it.
 */
class FaultServer {
  private readonly scripts = new Map<string, Reply[]>();
  unexpected: string[] = [];
  private readonly server = http.createServer((req, res) => {
    const next = this.scripts.get(req.url ?? '')?.shift();
    if (next) return next(res);
    this.unexpected.push(req.url ?? '');
    res.writeHead(599);
    res.end();
  });
  origin = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  on(pathname: string, ...replies: Reply[]): this {
    this.scripts.set(pathname, [...(this.scripts.get(pathname) ?? []), ...replies]);
    return this;
  }

  isDone(): boolean {
    return [...this.scripts.values()].every((r) => r.length === 0) && this.unexpected.length === 0;
  }

  reset(): void {
    this.scripts.clear();
    this.unexpected = [];
    this.server.closeAllConnections();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('archive engine: hgweb fault injection', function () {
  this.timeout(60_000);
  let tmp: string;
  let work: string;
  let node: string;
  let jsonRev: string;
  let archive: Buffer;
  let expected: string;
  let archivePath: string;
  const faults = new FaultServer();
  let FAKE: string;

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
    await faults.start();
    FAKE = `${faults.origin}/mozilla-central`;
  });

  beforeEach(async () => {
    work = await fs.promises.mkdtemp(path.join(tmp, 'work-'));
  });

  afterEach(async () => {
    const leftovers = fs.readdirSync(work);
    faults.reset();
    assert.deepEqual(leftovers, [], 'no staging directory left behind');
  });

  after(async () => {
    await faults.close();
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
    faults
      .on('/mozilla-central/json-rev/tip', reply(500, 'oops'), reply(200, jsonRev))
      .on(archivePath, reply(503), reply(200, archive));
    const { opts, requests, retries } = options();
    const r = await buildArchive({ ...opts, out: path.join(tmp, 'retried.tar.gz') });
    assert.equal(r.sha256, expected);
    assert.equal(r.revision, node);
    assert.ok(faults.isDone());
    assert.equal(requests.length, 4);
    assert.deepEqual(
      retries().map((l) => l.reason),
      ['HTTP 500', 'HTTP 503'],
    );
  });

  it('gives up after the bounded number of retries', async () => {
    faults.on('/mozilla-central/json-rev/tip', reply(502), reply(502), reply(502));
    const { opts, requests } = options();
    await rejects(buildArchive(opts), 'unavailable', /after 3 attempt\(s\): HTTP 502/);
    assert.equal(requests.length, 3);
    assert.ok(faults.isDone());
  });

  it('times out a stall before the response, retries, and succeeds', async () => {
    faults
      .on('/mozilla-central/json-rev/tip', stall, reply(200, jsonRev))
      .on(archivePath, reply(200, archive));
    const { opts, retries } = options();
    const r = await buildArchive(opts);
    assert.equal(r.sha256, expected);
    assert.match(retries()[0].reason, /idle timeout/);
    assert.ok(faults.isDone());
  });

  it('times out a body that stalls halfway and archives nothing', async () => {
    faults
      .on('/mozilla-central/json-rev/tip', reply(200, jsonRev))
      .on(archivePath, stallAfter(archive.subarray(0, Math.floor(archive.length / 2))));
    const { opts } = options();
    const out = path.join(tmp, 'stalled.tar.gz');
    await rejects(buildArchive({ ...opts, out }), 'unavailable', /idle timeout/);
    assert.ok(!fs.existsSync(out));
  });

  it('detects a truncated download (short body against Content-Length)', async () => {
    faults
      .on('/mozilla-central/json-rev/tip', reply(200, jsonRev))
      .on(archivePath, closeAfter(archive.subarray(0, archive.length - 100), archive.length));
    const { opts } = options();
    const out = path.join(tmp, 'truncated.tar.gz');
    await rejects(buildArchive({ ...opts, out }), 'corrupt', /truncated|corrupt/);
    assert.ok(!fs.existsSync(out));
  });

  it('detects a truncated download without Content-Length, and corrupt bytes', async () => {
    const flipped = Buffer.from(archive);
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    faults
      .on('/mozilla-central/json-rev/tip', reply(200, jsonRev), reply(200, jsonRev))
      .on(archivePath, closeAfter(archive.subarray(0, archive.length - 30)), reply(200, flipped));
    const { opts } = options();
    await rejects(
      buildArchive(opts),
      'corrupt',
      new RegExp(`download of ${FAKE}.*(truncated|corrupt)`),
    );
    await rejects(buildArchive(opts), 'corrupt');
    assert.ok(faults.isDone());
  });

  it('treats a 404 for the revision as permanent: one request, repository, revision and subdir named', async () => {
    faults.on('/mozilla-central/json-rev/deadbeef', reply(404, '{"error": "unknown revision"}'));
    const { opts, requests } = options({ revision: 'deadbeef' });
    await rejects(
      buildArchive(opts),
      'not-found',
      new RegExp(`repository ${FAKE}, revision deadbeef, subdir ${SAMPLE_SUBDIR}`),
    );
    assert.deepEqual(requests, ['/mozilla-central/json-rev/deadbeef']);
  });

  it('treats a 404 for the subdir archive as permanent', async () => {
    faults.on(`/mozilla-central/archive/${node}.tar.gz/testing/nothing`, reply(404, 'not found'));
    const { opts, requests } = options({ revision: node, subdir: 'testing/nothing' });
    await rejects(buildArchive(opts), 'not-found', /subdir testing\/nothing/);
    assert.equal(requests.length, 1, 'a full node is not re-resolved, and a 404 is not retried');
  });

  it('refuses a redirect to a repository that is not allowed', async () => {
    faults.on(
      '/mozilla-central/json-rev/tip',
      reply(302, '', { location: `${faults.origin}/elsewhere/json-rev/tip` }),
    );
    const { opts, requests } = options();
    await rejects(buildArchive(opts), 'not-allowed', /elsewhere/);
    assert.equal(requests.length, 1);
    assert.deepEqual(faults.unexpected, [], 'the refused target is never requested');
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
    faults.on(archivePath, reply(200, evil));
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
    faults.on('/x', reply(410, 'gone'));
    const seen: string[] = [];
    const res = await httpGet(`${faults.origin}/x`, { onRequest: (u) => seen.push(u) });
    assert.equal(res.status, 410);
    res.body.resume();
    assert.equal(seen.length, 1);
  });
});
