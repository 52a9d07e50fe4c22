// The deploy agent against real archives in s3rver (made through the embedded services): deploy and
// switch, --watch picking up a promotion and a rollback, ETag polling of an http manifest, and the
// failures that must leave `current` untouched: a corrupted download, a hostile archive, a manifest
// failing its schema, a second agent (lock), and a deploy killed in the middle.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  acquireLock,
  currentVersion,
  deploy,
  deployOnce,
  LOCK_FILE,
  readStamp,
  STAMP_FILE,
  watch,
  type DeployResult,
} from '../src/lookup/deploy.js';
import { parseManifestLocation, type ChannelEntry, type Manifest } from '../src/lookup/manifest.js';
import { promote, rollback } from '../src/lookup/promote.js';
import { isArchiveError } from '../src/util/errors.js';
import { SAMPLE_EXECUTABLE } from './helpers/repos.js';
import { waitFor } from './helpers/wait.js';
import {
  PROJECT,
  startLookupWorld,
  type BuiltArchive,
  type LookupWorld,
} from './lookup-fixture.js';

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** One raw ustar entry (for hostile archives the engine would never make). */
function tarEntry(name: string, content: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(content.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return Buffer.concat([h, content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
}

interface FileServer {
  url: string;
  requests: Array<{ path: string; status: number; ifNoneMatch?: string }>;
  routes: Map<string, { body: Buffer; etag?: string; stallAfter?: number }>;
  close(): Promise<void>;
}

/** A loopback HTTP server for manifests and (corrupted / hostile / stalling) archives. */
async function startFileServer(): Promise<FileServer> {
  const routes: FileServer['routes'] = new Map();
  const requests: FileServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const r = routes.get(req.url ?? '');
    const inm = req.headers['if-none-match'] as string | undefined;
    if (!r) {
      requests.push({ path: req.url ?? '', status: 404 });
      res.writeHead(404).end();
      return;
    }
    if (r.etag && inm === r.etag) {
      requests.push({ path: req.url!, status: 304, ifNoneMatch: inm });
      res.writeHead(304, { etag: r.etag }).end();
      return;
    }
    requests.push({ path: req.url!, status: 200, ...(inm ? { ifNoneMatch: inm } : {}) });
    res.writeHead(200, {
      'content-length': String(r.body.length),
      ...(r.etag ? { etag: r.etag } : {}),
    });
    if (r.stallAfter !== undefined) {
      res.write(r.body.subarray(0, r.stallAfter)); // then never finish
      return;
    }
    res.end(r.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('deploy', function () {
  this.timeout(120_000);
  let w: LookupWorld;
  let a: BuiltArchive;
  let b: BuiltArchive;
  let files: FileServer;
  let manifestFile: string;
  let root: string;
  const promoteDeps = () => ({ index: w.anon.index, queue: w.lookup.queue, io: {} });

  const entryFor = (x: BuiltArchive, over: Partial<ChannelEntry> = {}): ChannelEntry => ({
    project: PROJECT,
    revision: x.revision,
    treeDigest: x.treeDigest,
    url: x.url,
    sha256: x.sha256,
    size: x.size,
    taskId: x.taskId,
    promotedAt: new Date().toISOString(),
    promotedBy: 'tests',
    ...over,
  });
  const writeManifest = (file: string, entry: unknown) =>
    fs.writeFileSync(file, JSON.stringify({ version: 1, channels: { release: entry } }));
  const listing = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

  before(async () => {
    w = await startLookupWorld(['a', 'b']);
    a = await w.archive(w.repo.revisions[0]!);
    b = await w.archive(w.repo.revisions[1]!);
    files = await startFileServer();
    manifestFile = path.join(w.tmp, 'known-good.json');
    root = path.join(w.tmp, 'deploy-root');
    await promote(promoteDeps(), {
      channel: 'release',
      manifest: parseManifestLocation(manifestFile),
      project: PROJECT,
      revision: a.revision,
    });
  });
  after(async () => {
    await files?.close();
    await w?.close();
  });

  it('deploys into versions/<sha256> with a stamp and switches current', async () => {
    const r = await deploy({
      manifest: parseManifestLocation(manifestFile),
      channel: 'release',
      root,
    });
    assert.equal(r.outcome, 'deployed');
    assert.equal(await currentVersion(root), a.sha256);
    assert.equal(fs.readlinkSync(path.join(root, 'current')), path.join('versions', a.sha256));
    assert.ok(fs.statSync(path.join(root, 'current', SAMPLE_EXECUTABLE)).mode & 0o100);
    const stamp = await readStamp(path.join(root, 'versions', a.sha256));
    assert.equal(stamp?.revision, a.revision);
    assert.equal(stamp?.treeDigest, a.treeDigest);
    assert.equal(stamp?.sha256, a.sha256);
    assert.ok(Date.parse(stamp!.deployedAt) > 0);
    assert.ok(fs.existsSync(path.join(root, 'current', STAMP_FILE)));
    assert.ok(!fs.existsSync(path.join(root, LOCK_FILE)), 'lock released');
    const again = await deploy({
      manifest: parseManifestLocation(manifestFile),
      channel: 'release',
      root,
    });
    assert.equal(again.outcome, 'unchanged');
  });

  it('--watch picks up a promotion and a rollback', async () => {
    const ac = new AbortController();
    const passes: Array<DeployResult | Error> = [];
    const running = watch({
      manifest: parseManifestLocation(manifestFile),
      channel: 'release',
      root,
      intervalMs: 100,
      signal: ac.signal,
      onPass: (r) => passes.push(r),
    });
    try {
      const idle = () => passes.some((p) => !(p instanceof Error) && p.outcome === 'not-modified');
      await waitFor('an idle poll (manifest unchanged)', async () => idle());
      await promote(promoteDeps(), {
        channel: 'release',
        manifest: parseManifestLocation(manifestFile),
        project: PROJECT,
        revision: b.revision,
      });
      await waitFor('switch to b', async () => (await currentVersion(root)) === b.sha256);
      await rollback(
        { io: {} },
        { channel: 'release', manifest: parseManifestLocation(manifestFile) },
      );
      await waitFor('rollback to a', async () => (await currentVersion(root)) === a.sha256);
    } finally {
      ac.abort();
      await running;
    }
    const outcomes = passes.map((p) => (p instanceof Error ? 'error' : p.outcome));
    assert.ok(!outcomes.includes('error'), outcomes.join(', '));
    // after the idle polls: b deployed, then a again (the rollback)
    const deployed = passes
      .filter((p): p is DeployResult => !(p instanceof Error) && p.outcome === 'deployed')
      .map((p) => p.sha256);
    assert.deepEqual(deployed.slice(-2), [b.sha256, a.sha256]);
    assert.deepEqual(listing(path.join(root, 'versions')), [a.sha256, b.sha256].sort());
    assert.ok(!fs.existsSync(path.join(root, LOCK_FILE)));
  });

  it('polls an http manifest with If-None-Match and reacts only to a change', async () => {
    const body = fs.readFileSync(manifestFile);
    files.routes.set('/manifest.json', { body, etag: '"v1"' });
    const loc = parseManifestLocation(`${files.url}/manifest.json`);
    const state: { etag?: string } = {};
    const first = await deployOnce({ manifest: loc, channel: 'release', root }, state);
    assert.equal(first.outcome, 'unchanged');
    state.etag = first.etag;
    const second = await deployOnce({ manifest: loc, channel: 'release', root }, state);
    assert.equal(second.outcome, 'not-modified');
    const seen = files.requests.filter((r) => r.path === '/manifest.json');
    assert.deepEqual(
      seen.map((r) => [r.status, r.ifNoneMatch]),
      [
        [200, undefined],
        [304, '"v1"'],
      ],
    );
  });

  it('keeps current when the download is corrupted, and leaves nothing half-written', async () => {
    const bytes = Buffer.from(await (await fetch(b.url)).arrayBuffer());
    bytes[bytes.length >> 1] ^= 0xff;
    files.routes.set('/corrupt.tar.gz', { body: bytes });
    const bad = path.join(w.tmp, 'bad.json');
    writeManifest(bad, entryFor(b, { url: `${files.url}/corrupt.tar.gz` }));
    fs.rmSync(path.join(root, 'versions', b.sha256), { recursive: true });
    await assert.rejects(
      deploy({ manifest: parseManifestLocation(bad), channel: 'release', root, retries: 0 }),
      (e: unknown) => isArchiveError(e, 'checksum-mismatch'),
    );
    assert.equal(await currentVersion(root), a.sha256);
    assert.deepEqual(listing(path.join(root, 'versions')), [a.sha256]);
    assert.deepEqual(listing(path.join(root, '.downloads')), []);
  });

  it('keeps current for a hostile archive and for a manifest failing its schema', async () => {
    const tar = Buffer.concat([
      tarEntry('ok.txt', Buffer.from('fine\n')),
      tarEntry('../escaped.txt', Buffer.from('evil\n')),
      Buffer.alloc(1024),
    ]);
    const gz = gzipSync(tar);
    const sha = createHash('sha256').update(gz).digest('hex');
    files.routes.set('/hostile.tar.gz', { body: gz });
    const hostile = path.join(w.tmp, 'hostile.json');
    writeManifest(
      hostile,
      entryFor(b, { url: `${files.url}/hostile.tar.gz`, sha256: sha, size: gz.length }),
    );
    await assert.rejects(
      deploy({ manifest: parseManifestLocation(hostile), channel: 'release', root }),
      (e: unknown) => isArchiveError(e, 'unsafe-path'),
    );
    assert.equal(await currentVersion(root), a.sha256);
    assert.ok(!fs.existsSync(path.join(root, 'versions', 'escaped.txt')));
    assert.ok(!fs.existsSync(path.join(root, 'escaped.txt')));
    assert.deepEqual(listing(path.join(root, 'versions')), [a.sha256]);

    const invalid = path.join(w.tmp, 'invalid.json');
    writeManifest(invalid, { ...entryFor(b), sha256: 'not-a-digest' });
    await assert.rejects(
      deploy({ manifest: parseManifestLocation(invalid), channel: 'release', root }),
      (e: unknown) =>
        isArchiveError(e, 'invalid-config') &&
        /fails its schema: channels\.release\.sha256 must match pattern/.test((e as Error).message),
    );
    assert.equal(await currentVersion(root), a.sha256);
  });

  it('refuses a second agent on the same root', async () => {
    const release = await acquireLock(root);
    try {
      await assert.rejects(
        deploy({ manifest: parseManifestLocation(manifestFile), channel: 'release', root }),
        (e: unknown) =>
          isArchiveError(e, 'conflict') &&
          new RegExp(`another deploy agent holds .*pid ${process.pid}`).test((e as Error).message),
      );
    } finally {
      await release();
    }
  });

  it('survives a deploy killed in the middle: current untouched, stale lock and leftovers cleaned', async () => {
    const bytes = Buffer.from(await (await fetch(b.url)).arrayBuffer());
    files.routes.set('/stall.tar.gz', { body: bytes, stallAfter: bytes.length >> 1 });
    const stalling = path.join(w.tmp, 'stalling.json');
    writeManifest(stalling, entryFor(b, { url: `${files.url}/stall.tar.gz` }));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'deploy',
        '--manifest',
        stalling,
        '--channel',
        'release',
        '--root',
        root,
      ],
      {
        cwd: repoRoot,
        stdio: 'ignore',
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      },
    );
    try {
      await waitFor(
        'the download to start',
        async () =>
          files.requests.some((r) => r.path === '/stall.tar.gz') &&
          listing(path.join(root, '.downloads')).length > 0,
        { timeoutMs: 60_000 },
      );
      assert.ok(fs.existsSync(path.join(root, LOCK_FILE)), 'the agent holds the lock');
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    assert.equal(await currentVersion(root), a.sha256, 'current untouched');
    assert.equal(fs.readlinkSync(path.join(root, 'current')), path.join('versions', a.sha256));
    assert.ok(fs.existsSync(path.join(root, LOCK_FILE)), 'the dead agent left its lock');
    // the next agent takes over the stale lock, cleans up and deploys
    const good = path.join(w.tmp, 'good.json');
    writeManifest(good, entryFor(b));
    const r = await deploy({ manifest: parseManifestLocation(good), channel: 'release', root });
    assert.equal(r.outcome, 'deployed');
    assert.equal(await currentVersion(root), b.sha256);
    assert.deepEqual(listing(path.join(root, '.downloads')), []);
    assert.ok(!listing(path.join(root, 'versions')).some((n) => n.startsWith('.staging-')));
    assert.ok(!fs.existsSync(path.join(root, LOCK_FILE)));
  });

  it('--watch logs a failed pass, keeps current, and retries until the manifest is fixed', async () => {
    const m = path.join(w.tmp, 'watch-retry.json');
    writeManifest(m, entryFor(a, { url: `${files.url}/missing.tar.gz`, sha256: 'f'.repeat(64) }));
    const before = await currentVersion(root);
    const ac = new AbortController();
    const passes: Array<DeployResult | Error> = [];
    const warnings: string[] = [];
    const running = watch({
      manifest: parseManifestLocation(m),
      channel: 'release',
      root,
      intervalMs: 50,
      retries: 0,
      signal: ac.signal,
      onPass: (r) => passes.push(r),
      log: {
        debug() {},
        info() {},
        warn: (e, f) => warnings.push(`${e} ${JSON.stringify(f)}`),
        error() {},
        child() {
          return this;
        },
      },
    });
    try {
      await waitFor(
        'two failed passes',
        async () => passes.filter((p) => p instanceof Error).length >= 2,
      );
      assert.equal(await currentVersion(root), before, 'current untouched while failing');
      writeManifest(m, entryFor(a));
      await waitFor(
        'the fixed manifest is deployed',
        async () => (await currentVersion(root)) === a.sha256,
      );
    } finally {
      ac.abort();
      await running;
    }
    assert.ok(
      warnings.some((l) => /deploy\.failed .*missing\.tar\.gz/.test(l)),
      warnings.join('\n'),
    );
  });

  it('CLI deploy --watch prints one JSON line per change and stops cleanly on SIGTERM', async () => {
    const m = path.join(w.tmp, 'cli-watch.json');
    writeManifest(m, entryFor(a));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'deploy',
        '--manifest',
        m,
        '--channel',
        'release',
        '--root',
        root,
        '--watch',
        '--interval',
        '200ms',
        '--json',
      ],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    try {
      await waitFor('the first pass', async () => stdout.includes('\n'), {
        timeoutMs: 60_000,
      });
      assert.ok(fs.existsSync(path.join(root, LOCK_FILE)), 'the watching agent holds the lock');
      writeManifest(m, entryFor(b));
      await waitFor('the switch to b', async () => (await currentVersion(root)) === b.sha256);
      await waitFor('its line', async () => stdout.trim().split('\n').length >= 2);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    const passes = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(passes.at(-1).outcome, 'deployed');
    assert.equal(passes.at(-1).sha256, b.sha256);
    assert.ok(!fs.existsSync(path.join(root, LOCK_FILE)), 'lock released on SIGTERM');
  });

  it('keeps the last N versions, and always the current one', async () => {
    const m = path.join(w.tmp, 'm-a.json');
    writeManifest(m, entryFor(a));
    assert.deepEqual(listing(path.join(root, 'versions')), [a.sha256, b.sha256].sort());
    const r = await deploy({
      manifest: parseManifestLocation(m),
      channel: 'release',
      root,
      keep: 1,
    });
    assert.equal(r.outcome, 'deployed');
    assert.deepEqual(listing(path.join(root, 'versions')), [a.sha256]);
    const raw = JSON.parse(fs.readFileSync(m, 'utf8')) as Manifest;
    assert.equal(raw.channels.release!.sha256, a.sha256);
  });
});
