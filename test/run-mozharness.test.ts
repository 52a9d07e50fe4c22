// taskcluster/scripts/run-mozharness.sh for real: served over loopback HTTP, run with `sh`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildArchive } from '../src/archive/index.js';
import { ArchiveStore, createS3Client, s3SettingsFromEnv } from '../src/storage/index.js';
import { startS3 } from './helpers/s3.js';

const SCRIPT = path.resolve(import.meta.dirname, '../taskcluster/scripts/run-mozharness.sh');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Entry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo';
  mode?: number;
  body?: string;
  link?: string;
}

/** A ustar archive built byte by byte, so hostile entries can be expressed exactly. */
function makeTarGz(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = Buffer.from(type === 'file' ? (e.body ?? '') : '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    h.write(octal(e.mode ?? (type === 'dir' ? 0o755 : 0o644), 8), 100, 'ascii');
    h.write(octal(0, 8), 108, 'ascii');
    h.write(octal(0, 8), 116, 'ascii');
    h.write(octal(body.length, 12), 124, 'ascii');
    h.write(octal(0, 12), 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write({ file: '0', hardlink: '1', symlink: '2', dir: '5', fifo: '6' }[type], 156, 'ascii');
    if (e.link) h.write(e.link, 157, 100, 'utf8');
    h.write('ustar\u000000', 257, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks), { level: 6 });
}

const harness: Entry[] = [
  { name: 'scripts/', type: 'dir' },
  {
    name: 'scripts/fx_desktop_build.py',
    mode: 0o755,
    body: 'import sys\nprint("mozharness build ran with", " ".join(sys.argv[1:]))\n',
  },
  { name: 'scripts/hello.sh', body: 'echo "shell script ran with $*"\n' },
  { name: 'configs/', type: 'dir' },
  { name: 'configs/builds/', type: 'dir' },
  { name: 'configs/builds/linux64.py', body: 'config = {}\n' },
  { name: 'configs/current', type: 'symlink', link: 'builds' },
];

const hostile: Array<[string, Entry[], RegExp]> = [
  ['absolute path', [{ name: '/tmp/evil', body: 'x' }], /\/tmp\/evil: absolute path/],
  ['".." component', [{ name: 'scripts/../../evil', body: 'x' }], /"\.\." component/],
  [
    'symlink escaping the tree',
    [
      { name: 'scripts/', type: 'dir' },
      { name: 'scripts/up', type: 'symlink', link: '../../outside' },
    ],
    /scripts\/up: symlink to \.\.\/\.\.\/outside points outside the tree/,
  ],
  [
    'absolute symlink',
    [{ name: 'etc', type: 'symlink', link: '/etc' }],
    /etc: symlink to \/etc points outside/,
  ],
  [
    'hard link outside',
    [{ name: 'pw', type: 'hardlink', link: '../etc/passwd' }],
    /pw: hard link to \.\.\/etc\/passwd points outside/,
  ],
  [
    'entry written through a symlink',
    [
      { name: 'sub/', type: 'dir' },
      { name: 'sub/inner', type: 'symlink', link: '.' },
      { name: 'sub/inner/file', body: 'x' },
    ],
    /sub\/inner\/file: goes through the symlink sub\/inner/,
  ],
  ['fifo', [{ name: 'pipe', type: 'fifo' }], /pipe: not a regular file, directory or link/],
  ['setuid file', [{ name: 'suid', mode: 0o4755, body: 'x' }], /suid: setuid\/setgid bit/],
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('run-mozharness.sh', function () {
  this.timeout(60_000);
  let server: http.Server;
  let base: string;
  let root: string;
  const routes = new Map<string, Buffer>();
  const hits = new Map<string, number>();
  const good = makeTarGz(harness);
  const goodSha = sha256(good);

  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'run-mozharness-'));
    routes.set('/good.tar.gz', good);
    routes.set('/tampered.tar.gz', makeTarGz([...harness, { name: 'extra', body: 'sneaky' }]));
    hostile.forEach(([, entries], i) => routes.set(`/hostile-${i}.tar.gz`, makeTarGz(entries)));
    server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      const n = (hits.get(url) ?? 0) + 1;
      hits.set(url, n);
      if (url === '/queue/artifact') {
        res.writeHead(303, { location: '/good.tar.gz' });
        return res.end();
      }
      if (url === '/flaky.tar.gz' && n === 1) return (res.writeHead(500), res.end('oops'));
      if (url === '/stall.tar.gz' && n === 1) {
        res.writeHead(200, { 'content-length': good.length });
        return res.write(good.subarray(0, 10)); // and nothing more
      }
      if (url === '/truncated.tar.gz' && n === 1) {
        res.writeHead(200, { 'content-length': good.length });
        return res.write(good.subarray(0, 100), () => res.destroy());
      }
      const body = routes.get(url) ?? (/^\/(flaky|truncated|stall)/.test(url) ? good : undefined);
      if (!body) return (res.writeHead(404), res.end('not found'));
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await fs.rm(root, { recursive: true, force: true });
  });

  let caseNo = 0;
  async function run(
    env: Record<string, string>,
    args: string[],
    cwd?: string,
  ): Promise<Run & { cwd: string }> {
    const dir = cwd ?? (await fs.mkdtemp(path.join(root, `case-${caseNo++}-`)));
    return new Promise((resolve, reject) => {
      const child = spawn('sh', [SCRIPT, ...args], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          MOZHARNESS_RETRY_DELAY: '0',
          MOZHARNESS_CONNECT_TIMEOUT: '5',
          MOZHARNESS_MAX_TIME: '30',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, cwd: dir }));
    });
  }
  const entriesOf = async (dir: string) => (await fs.readdir(dir)).sort();

  it('downloads (following the queue redirect), verifies, unpacks and runs the script', async () => {
    const r = await run(
      { MOZHARNESS_URL: `${base}/queue/artifact`, MOZHARNESS_SHA256: goodSha.toUpperCase() },
      ['scripts/fx_desktop_build.py', '--config', 'builds/linux64.py'],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'mozharness build ran with --config builds/linux64.py\n');
    assert.match(r.stderr, new RegExp(`sha256 ${goodSha}`));
    assert.deepEqual(await entriesOf(r.cwd), ['mozharness']);
    assert.deepEqual(await entriesOf(path.join(r.cwd, 'mozharness')), ['configs', 'scripts']);
    assert.equal(await fs.readlink(path.join(r.cwd, 'mozharness/configs/current')), 'builds');
    const st = await fs.stat(path.join(r.cwd, 'mozharness/scripts/fx_desktop_build.py'));
    assert.equal(st.mode & 0o777, 0o755);
  });

  it('runs .sh scripts with sh, honours MOZHARNESS_DEST and MOZHARNESS_PYTHON, replaces an old tree', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'dest-'));
    await fs.mkdir(path.join(dir, 'work/mh/stale'), { recursive: true });
    const env = {
      MOZHARNESS_URL: `${base}/good.tar.gz`,
      MOZHARNESS_SHA256: goodSha,
      MOZHARNESS_DEST: 'work/mh',
    };
    const sh = await run(env, ['scripts/hello.sh', 'a', 'b c'], dir);
    assert.equal(sh.code, 0, sh.stderr);
    assert.equal(sh.stdout, 'shell script ran with a b c\n');
    assert.deepEqual(await entriesOf(path.join(dir, 'work/mh')), ['configs', 'scripts']);
    assert.deepEqual(await entriesOf(path.join(dir, 'work')), ['mh']);

    const py = await run(
      { ...env, MOZHARNESS_PYTHON: 'cat' },
      ['scripts/fx_desktop_build.py'],
      dir,
    );
    assert.equal(py.code, 0, py.stderr);
    assert.match(py.stdout, /^import sys/);
  });

  it('refuses a tampered archive: exit 4, both digests named, nothing unpacked', async () => {
    const r = await run({ MOZHARNESS_URL: `${base}/tampered.tar.gz`, MOZHARNESS_SHA256: goodSha }, [
      'scripts/fx_desktop_build.py',
    ]);
    assert.equal(r.code, 4);
    const actual = sha256(routes.get('/tampered.tar.gz')!);
    assert.match(
      r.stderr,
      new RegExp(
        `^run-mozharness: error: sha256 mismatch for .*: expected ${goodSha}, got ${actual}$`,
        'm',
      ),
    );
    assert.equal(r.stdout, '');
    assert.deepEqual(await entriesOf(r.cwd), []);
  });

  it('retries a 500, a truncated body and a stalled transfer, then succeeds', async () => {
    for (const route of ['/flaky.tar.gz', '/truncated.tar.gz', '/stall.tar.gz']) {
      const r = await run(
        {
          MOZHARNESS_URL: `${base}${route}`,
          MOZHARNESS_SHA256: goodSha,
          // a stall ends the attempt at the low-speed limit or at the per-attempt time limit
          MOZHARNESS_STALL_TIME: '1',
          MOZHARNESS_MAX_TIME: '2',
        },
        ['scripts/hello.sh'],
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(hits.get(route), 2);
      assert.match(r.stderr, /download attempt 1 failed .*retrying/);
      assert.equal(r.stdout, 'shell script ran with \n');
    }
  });

  it('infrastructure errors exit 3: a 404 is not retried, exhausted retries give up', async () => {
    const r = await run(
      { MOZHARNESS_URL: `${base}/missing.tar.gz?signature=s3cr3t`, MOZHARNESS_SHA256: goodSha },
      ['scripts/hello.sh'],
    );
    assert.equal(r.code, 3);
    assert.match(
      r.stderr,
      /run-mozharness: error: download of .*\/missing\.tar\.gz\?\.\.\. failed: HTTP 404/,
    );
    assert.ok(!r.stderr.includes('s3cr3t'));
    assert.equal(hits.get('/missing.tar.gz?signature=s3cr3t'), 1);

    const down = await run(
      {
        MOZHARNESS_URL: 'http://127.0.0.1:1/x.tar.gz',
        MOZHARNESS_SHA256: goodSha,
        MOZHARNESS_RETRIES: '2',
      },
      ['scripts/hello.sh'],
    );
    assert.equal(down.code, 3);
    assert.match(down.stderr, /failed after 3 attempts/);
    assert.deepEqual(await entriesOf(down.cwd), []);
  });

  for (const [i, [what, , message]] of hostile.entries()) {
    it(`refuses an unsafe archive: ${what}`, async () => {
      const body = routes.get(`/hostile-${i}.tar.gz`)!;
      const r = await run(
        { MOZHARNESS_URL: `${base}/hostile-${i}.tar.gz`, MOZHARNESS_SHA256: sha256(body) },
        ['scripts/hello.sh'],
      );
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /^run-mozharness: error: unsafe archive entry refused: /m);
      assert.match(r.stderr, message);
      assert.deepEqual(await entriesOf(r.cwd), [], 'nothing unpacked, no temp dir left');
      await assert.rejects(fs.stat(path.join(root, 'outside')));
      await assert.rejects(fs.stat('/tmp/evil'));
    });
  }

  it('usage errors exit 2', async () => {
    const cases: Array<[Record<string, string>, string[], RegExp]> = [
      [{ MOZHARNESS_SHA256: goodSha }, ['scripts/hello.sh'], /MOZHARNESS_URL is not set/],
      [
        { MOZHARNESS_URL: `${base}/good.tar.gz` },
        ['scripts/hello.sh'],
        /MOZHARNESS_SHA256 is not set/,
      ],
      [
        { MOZHARNESS_URL: `${base}/good.tar.gz`, MOZHARNESS_SHA256: 'abc' },
        ['scripts/hello.sh'],
        /not a sha256 digest/,
      ],
      [{ MOZHARNESS_URL: `${base}/good.tar.gz`, MOZHARNESS_SHA256: goodSha }, [], /usage/],
      [
        { MOZHARNESS_URL: `${base}/good.tar.gz`, MOZHARNESS_SHA256: goodSha },
        ['../escape.py'],
        /must be a path inside the archive/,
      ],
      [
        { MOZHARNESS_URL: `${base}/good.tar.gz`, MOZHARNESS_SHA256: goodSha },
        ['scripts/nope.py'],
        /scripts\/nope\.py is not in the archive/,
      ],
    ];
    for (const [env, args, re] of cases) {
      const r = await run(env, args);
      assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stderr}`);
      assert.match(r.stderr, /^run-mozharness: error: /m);
      assert.match(r.stderr, re);
    }
  });

  it('end to end: an engine-built archive stored in S3, reached through a queue-style redirect', async () => {
    const checkout = await fs.mkdtemp(path.join(root, 'checkout-'));
    const mh = path.join(checkout, 'testing', 'mozharness');
    await fs.mkdir(path.join(mh, 'scripts'), { recursive: true });
    await fs.mkdir(path.join(mh, 'configs', 'builds'), { recursive: true });
    await fs.writeFile(
      path.join(mh, 'scripts', 'fx_desktop_build.py'),
      'import os, sys\nprint("built with", sys.argv[1:], os.path.exists("mozharness/configs/builds/linux64.py"))\n',
      { mode: 0o755 },
    );
    await fs.writeFile(path.join(mh, 'configs', 'builds', 'linux64.py'), 'config = {}\n');
    const out = path.join(checkout, 'mozharness.tar.gz');
    const built = await buildArchive({
      source: { kind: 'dir', path: checkout },
      revision: 'a'.repeat(40),
      subdir: 'testing/mozharness',
      out,
    });
    const s3 = await startS3();
    const queue = http.createServer((req, res) => {
      res.writeHead(303, { location: stored.url });
      res.end();
    });
    let stored: { url: string };
    try {
      const settings = s3SettingsFromEnv(s3.env, { bucket: s3.bucket, prefix: 'mozharness' });
      const store = new ArchiveStore(createS3Client(settings), settings);
      stored = await store.put(out, {
        ...built,
        repository: checkout,
        createdAt: new Date().toISOString(),
      });
      await new Promise<void>((r) => queue.listen(0, '127.0.0.1', r));
      const artifact = `http://127.0.0.1:${(queue.address() as AddressInfo).port}/api/queue/v1/task/X/artifacts/public/build/mozharness.tar.gz`;
      const r = await run({ MOZHARNESS_URL: artifact, MOZHARNESS_SHA256: built.sha256 }, [
        'scripts/fx_desktop_build.py',
        '--config',
        'builds/linux64.py',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "built with ['--config', 'builds/linux64.py'] True\n");
      assert.ok(s3.requests.includes(`GET /${s3.bucket}/${store.archiveKey(built.sha256)}`));
    } finally {
      queue.closeAllConnections();
      await new Promise<void>((r) => queue.close(() => r()));
      await s3.close();
    }
  });
});
