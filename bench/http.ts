// Benchmark: the project's HTTP client (util/http: keep-alive pools, vetted redirects, retry
// policy, described body errors) and verified downloads (storage/download: sha256 while
// streaming, temp file, fsync, rename), against a bare undici.request on the same loopback
// server in the same process. Run: node --import tsx bench/http.ts
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import { downloadVerified } from '../src/storage/download.js';
import { getJson, httpGet } from '../src/util/http.js';

const BIG = Buffer.alloc(64 * 1024 * 1024, 0x5a);
const BIG_SHA256 = createHash('sha256').update(BIG).digest('hex');
const SMALL = Buffer.from(JSON.stringify({ ok: true, sha256: BIG_SHA256 }));
const ROUNDS = 3;
const SMALL_REQUESTS = 2_000;
const CONCURRENCY = 16;

async function drain(body: Readable): Promise<number> {
  let n = 0;
  for await (const chunk of body) n += (chunk as Buffer).length;
  return n;
}

/** Best of ROUNDS wall times, in ms. */
async function best(fn: () => Promise<unknown>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    await fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

async function many(fn: () => Promise<unknown>): Promise<void> {
  let left = SMALL_REQUESTS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) await fn();
    }),
  );
}

const mbps = (ms: number) => (BIG.length / 1024 / 1024 / (ms / 1000)).toFixed(0);
const ratio = (ours: number, base: number) => `${(ours / base).toFixed(2)}×`;

export async function run(): Promise<void> {
  const server = http.createServer((req, res) => {
    const body = req.url === '/big' ? BIG : SMALL;
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-http-'));
  try {
    const bare = await best(async () => drain((await request(`${base}/big`)).body));
    const ours = await best(async () => drain((await httpGet(`${base}/big`)).body));
    const dl = await best(() =>
      downloadVerified(`${base}/big`, path.join(tmp, 'big'), { sha256: BIG_SHA256 }),
    );
    console.log(`64 MiB body, best of ${ROUNDS}:`);
    console.log(`  bare undici.request        ${bare.toFixed(0)} ms  ${mbps(bare)} MiB/s`);
    console.log(
      `  util/http httpGet          ${ours.toFixed(0)} ms  ${mbps(ours)} MiB/s  ${ratio(ours, bare)}`,
    );
    console.log(
      `  downloadVerified (sha256, file, fsync) ${dl.toFixed(0)} ms  ${mbps(dl)} MiB/s  ${ratio(dl, bare)}`,
    );

    const bareSmall = await best(() =>
      many(async () => JSON.parse(await (await request(`${base}/small`)).body.text())),
    );
    const oursSmall = await best(() => many(() => getJson(`${base}/small`)));
    const rps = (ms: number) => ((SMALL_REQUESTS / ms) * 1000).toFixed(0);
    console.log(
      `${SMALL_REQUESTS} small JSON GETs at concurrency ${CONCURRENCY}, best of ${ROUNDS}:`,
    );
    console.log(`  bare undici.request        ${bareSmall.toFixed(0)} ms  ${rps(bareSmall)} req/s`);
    console.log(
      `  util/http getJson          ${oursSmall.toFixed(0)} ms  ${rps(oursSmall)} req/s  ${ratio(oursSmall, bareSmall)} the time`,
    );
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
