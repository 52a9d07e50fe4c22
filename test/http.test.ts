// The one HTTP client (util/http on undici) and the one retry policy (util/retry), against a real
// loopback server: keep-alive reuse, the allow-list at every redirect hop, what is retried and
// what never is, idle timeouts that spare a slow reader, and URLs that never leak their secrets.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { isArchiveError } from '../src/util/errors.js';
import { getBuffer, getJson, httpGet, readBody } from '../src/util/http.js';
import { createLogger } from '../src/util/log.js';
import { TransientError, retrying } from '../src/util/retry.js';

describe('util/http: the one HTTP client', function () {
  this.timeout(30_000);
  let server: http.Server;
  let base: string;
  let connections = 0;
  const hits = new Map<string, number>();
  const big = Buffer.alloc(8 * 1024 * 1024, 7);

  before(async () => {
    server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      const n = (hits.get(url) ?? 0) + 1;
      hits.set(url, n);
      const path = url.split('?')[0];
      if (path === '/json') return res.end(JSON.stringify({ n }));
      if (path === '/hop1') return res.writeHead(302, { location: '/hop2' }).end();
      if (path === '/hop2') return res.writeHead(307, { location: '/json' }).end();
      if (path === '/hop-away') {
        return res.writeHead(302, { location: 'http://elsewhere.invalid/json' }).end();
      }
      if (path === '/loop') return res.writeHead(302, { location: '/loop' }).end();
      if (path === '/flaky') return n === 1 ? res.writeHead(503).end() : res.end('ok');
      if (path === '/always-503') return res.writeHead(503).end();
      if (path === '/big') return res.writeHead(200, { 'content-length': big.length }).end(big);
      if (path === '/stall') return; // never answers
      res.writeHead(404).end('no such thing');
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const fast = { baseDelayMs: 5, retries: 3 };

  it('reuses keep-alive connections for requests in turn', async () => {
    const before = connections;
    for (let i = 0; i < 10; i++) await getJson(`${base}/json`);
    // undici's pool may open a second connection while the first finishes its response, then
    // reuses both; without keep-alive each request would open its own.
    assert.ok(connections - before <= 2, `${connections - before} connections for 10 requests`);
  });

  it('follows redirects, vetting the first URL and every hop; a refused hop is never requested', async () => {
    const here = new URL(base).host;
    const seen: string[] = [];
    const allowUrl = (u: URL) => u.host === here;
    const doc = await getJson<{ n: number }>(`${base}/hop1`, {
      allowUrl,
      onRequest: (u) => seen.push(new URL(u).pathname),
    });
    assert.ok(doc.n >= 1);
    assert.deepEqual(seen, ['/hop1', '/hop2', '/json']);
    await assert.rejects(
      httpGet(`${base}/hop-away`, { allowUrl }),
      (e: unknown) => isArchiveError(e, 'not-allowed') && /elsewhere\.invalid/.test(String(e)),
    );
    await assert.rejects(
      httpGet(`${base}/json`, { allowUrl: () => false, onRequest: (u) => seen.push(u) }),
      (e: unknown) => isArchiveError(e, 'not-allowed'),
    );
    assert.equal(seen.length, 3, 'a URL refused up front is not requested');
    await assert.rejects(httpGet('file:///etc/passwd'), (e: unknown) =>
      isArchiveError(e, 'not-allowed'),
    );
    await assert.rejects(
      httpGet(`${base}/loop`, { maxRedirects: 3 }),
      (e: unknown) => isArchiveError(e, 'unavailable') && /too many redirects/.test(String(e)),
    );
  });

  it('retries a 503 with backoff, never a 404', async () => {
    const retried: string[] = [];
    const res = await getBuffer(`${base}/flaky`, { ...fast, onRetry: (_n, r) => retried.push(r) });
    assert.equal(res.body.toString(), 'ok');
    assert.deepEqual(retried, ['HTTP 503']);
    const missing = await getBuffer(`${base}/missing`, fast);
    assert.equal(missing.status, 404);
    assert.equal(hits.get('/missing'), 1);
    await assert.rejects(getJson(`${base}/missing`, fast), (e: unknown) =>
      isArchiveError(e, 'not-found'),
    );
    await assert.rejects(
      httpGet(`${base}/always-503`, { ...fast, retries: 2 }),
      (e: unknown) =>
        isArchiveError(e, 'unavailable') && /after 3 attempt\(s\): HTTP 503/.test(String(e)),
    );
  });

  it('never times out a reader that is the slow side; a stalled server is', async () => {
    const res = await httpGet(`${base}/big`, { idleTimeoutMs: 200 });
    const it = res.body[Symbol.asyncIterator]();
    const first = (await it.next()).value as Buffer;
    // Far longer than the idle timeout, with the body paused behind full buffers.
    await new Promise((r) => setTimeout(r, 1000));
    let n = first.length;
    for (let c = await it.next(); !c.done; c = await it.next()) n += (c.value as Buffer).length;
    assert.equal(n, big.length);
    await assert.rejects(
      httpGet(`${base}/stall`, { idleTimeoutMs: 200, retries: 0 }),
      (e: unknown) => isArchiveError(e, 'unavailable') && /idle timeout/.test(String(e)),
    );
  });

  it('bounds the whole call with timeoutMs', async () => {
    await assert.rejects(
      httpGet(`${base}/stall`, { timeoutMs: 300 }),
      (e: unknown) => isArchiveError(e, 'unavailable') && /took over 300 ms/.test(String(e)),
    );
  });

  it('never logs or reports a query string (signed URLs carry credentials there)', async () => {
    const lines: string[] = [];
    const log = createLogger({ json: true, level: 'debug', write: (l) => lines.push(l) });
    const secret = 'sig=s3cr3t-token';
    await assert.rejects(
      httpGet(`${base}/always-503?${secret}`, { ...fast, retries: 1, log }),
      (e) => {
        assert.ok(!String(e).includes('s3cr3t'), String(e));
        return true;
      },
    );
    await httpGet(`${base}/hop1?${secret}`, { log }).then((r) => readBody(r.body));
    assert.ok(lines.some((l) => l.includes('http.retry')));
    assert.ok(lines.some((l) => l.includes('http.redirect')));
    for (const l of lines) assert.ok(!l.includes('s3cr3t'), l);
  });
});

describe('util/retry: the one retry policy', () => {
  it('retries only TransientError, within the count, then reports the last reason', async () => {
    let calls = 0;
    await assert.rejects(
      retrying(
        async () => {
          calls++;
          throw new TransientError(`try ${calls}`);
        },
        { retries: 2, baseDelayMs: 1 },
        { exhausted: (e, attempts) => new Error(`${attempts}: ${e.message}`) },
      ),
      /^Error: 3: try 3$/,
    );
    calls = 0;
    await assert.rejects(
      retrying(async () => {
        calls++;
        throw new Error('permanent');
      }),
      /permanent/,
    );
    assert.equal(calls, 1);
    const got = await retrying(
      async (n) => {
        if (n < 2) throw new TransientError('again');
        return n;
      },
      { baseDelayMs: 1 },
    );
    assert.equal(got, 2);
  });

  it('stops waiting when the signal aborts', async () => {
    const stop = new AbortController();
    const p = retrying(
      async () => {
        throw new TransientError('down');
      },
      { retries: 5, baseDelayMs: 60_000, maxRetryTimeMs: 600_000, signal: stop.signal },
      { aborted: () => new Error('stopped') },
    );
    stop.abort();
    await assert.rejects(p, /stopped/);
  });

  it('gives up rather than wait past maxRetryTimeMs', async () => {
    let calls = 0;
    await assert.rejects(
      retrying(
        async () => {
          calls++;
          throw new TransientError('down');
        },
        { retries: 10, baseDelayMs: 60_000, maxRetryTimeMs: 1000 },
      ),
      /down/,
    );
    assert.equal(calls, 1);
  });
});

describe('one network stack', () => {
  // Code that is not this project's HTTP client: the dashboard's page script runs in the browser,
  // and paging's `fetch` is a parameter.
  const notClients = new Set(['src/local/dashboard-views.ts', 'src/local/paging.ts']);
  const forbidden: Array<[RegExp, string]> = [
    [/(?<![\w.])fetch\(/, 'global fetch (use util/http)'],
    [/\bhttps?\.(get|request)\(/, 'a node:http(s) client (use util/http)'],
    [/from 'node:https'/, 'node:https (use util/http)'],
    [/agent: false/, 'a connection per request (util/http pools them)'],
    [
      /new Promise\(\s*\(?\s*\w+\s*\)?\s*=>\s*setTimeout\(/,
      'a hand-written sleep (use util/retry)',
    ],
  ];

  function sources(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
      const p = path.join(dir, d.name);
      return d.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
    });
  }

  it('src/ has no HTTP client, retry wait or sleep outside util/http and util/retry', () => {
    const found: string[] = [];
    for (const file of sources('src')) {
      if (notClients.has(file) || file === 'src/util/http.ts' || file === 'src/util/retry.ts') {
        continue;
      }
      fs.readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const [re, what] of forbidden) {
            if (re.test(line)) found.push(`${file}:${i + 1}: ${what}`);
          }
        });
    }
    assert.deepEqual(found, []);
  });
});
