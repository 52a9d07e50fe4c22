// The hostile-archive suite: every case of test/helpers/hostile.ts, in both formats (tar.gz and
// zip), against every consumer that unpacks an archive. Each must refuse, leave the destination as
// it was (absent) and write nothing anywhere else; each must accept the benign tree.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { unpackArchive } from '../src/archive/index.js';
import { isArchiveError } from '../src/util/errors.js';
import { installVersion } from '../src/lookup/deploy.js';
import { downloadAndUnpack } from '../src/storage/fetch-archive.js';
import { PROJECT_ROOT, spawnCli } from './helpers/cli.js';
import {
  BENIGN,
  FORMATS,
  HOSTILE,
  type Format,
  type HostileCase,
  type Item,
} from './helpers/hostile.js';

interface Consumer {
  name: string;
  /** Unpack `file` (served at `url`) into `dest`; resolves with an error message, or null. */
  run(ctx: {
    file: string;
    url: string;
    dest: string;
    sha256: string;
    size: number;
    format: Format;
  }): Promise<string | null>;
  /** Checks the ArchiveError code too (in-process consumers). */
  code?: boolean;
}

let lastCode: string | undefined;

const SCRIPT = path.join(PROJECT_ROOT, 'taskcluster/scripts/run-mozharness.sh');

function runScript(env: Record<string, string>, cwd: string) {
  return new Promise<{ code: number; stderr: string }>((resolve, reject) => {
    const child = spawn('sh', [SCRIPT, 'scripts/run.py'], {
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

async function inProcess(f: () => Promise<unknown>): Promise<string | null> {
  try {
    await f();
    return null;
  } catch (e) {
    assert.ok(isArchiveError(e), String(e));
    lastCode = e.code;
    return e.message;
  }
}

const consumers: Consumer[] = [
  {
    name: 'unpack (core)',
    code: true,
    run: ({ file, dest, sha256 }) => inProcess(() => unpackArchive(file, dest, { sha256 })),
  },
  {
    // `fetch` and the generic-worker mount both download and unpack through this one function
    name: 'fetch and mount verification (downloadAndUnpack, declared format)',
    code: true,
    run: ({ url, dest, sha256, format }) =>
      inProcess(() => downloadAndUnpack(url, dest, { sha256, format, retries: 0 })),
  },
  {
    name: 'deploy (installVersion)',
    code: true,
    async run({ url, dest, sha256, size }) {
      const message = await inProcess(() =>
        installVersion(
          dest,
          'release',
          {
            project: 'p',
            revision: 'r',
            treeDigest: 't',
            sha256,
            size,
            taskId: 'x',
            url,
          } as never,
          { manifest: 'test', retries: 0 },
        ),
      );
      if (message === null) {
        // the deployed version, where the other consumers put the tree
        const v = path.join(dest, 'versions', sha256);
        for (const n of fs.readdirSync(v)) fs.renameSync(path.join(v, n), path.join(dest, n));
        return null;
      }
      // a refused version leaves no version, no staging dir and no download behind
      assert.deepEqual(fs.readdirSync(path.join(dest, 'versions')), []);
      assert.deepEqual(fs.readdirSync(path.join(dest, '.downloads')), []);
      fs.rmSync(dest, { recursive: true });
      return message;
    },
  },
  {
    name: 'run-mozharness.sh',
    async run({ url, dest, sha256 }) {
      const r = await runScript(
        {
          MOZHARNESS_URL: url,
          MOZHARNESS_SHA256: sha256,
          MOZHARNESS_DEST: dest,
          MOZHARNESS_RETRIES: '0',
        },
        path.dirname(dest),
      );
      if (r.code === 0) return null;
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /^run-mozharness: error: /m);
      assert.doesNotMatch(r.stderr, /Traceback/);
      return r.stderr;
    },
  },
  {
    name: 'unpack (CLI)',
    async run({ file, dest, sha256, format }) {
      const r = await spawnCli(
        ['unpack', file, '--dest', dest, '--sha256', sha256, '--format', format],
        {
          PATH: process.env.PATH,
          HOME: os.tmpdir(),
        },
      );
      if (r.code === 0) return null;
      assert.equal(r.code, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /internal error|ENAMETOOLONG/);
      return r.stderr;
    },
  },
];

describe('hostile archives: every consumer refuses them alike', function () {
  this.timeout(120_000);
  let tmp: string;
  let server: http.Server;
  let base: string;
  let n = 0;
  const built = new Map<string, { bytes: Buffer; sha256: string }>();

  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'hostile-'));
    fs.mkdirSync(path.join(tmp, 'served'));
    server = http.createServer((req, res) => {
      const f = path.join(tmp, 'served', path.basename(req.url ?? ''));
      if (!fs.existsSync(f)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': fs.statSync(f).size });
      fs.createReadStream(f).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  function archive(key: string, format: Format, items: Item[]) {
    const k = `${format}:${key}`;
    let a = built.get(k);
    if (!a) {
      const bytes = FORMATS[format](items);
      a = { bytes, sha256: crypto.createHash('sha256').update(bytes).digest('hex') };
      built.set(k, a);
    }
    return a;
  }

  /** A fresh sandbox: <box>/work/dest is the destination, <box> must stay as it was. */
  function sandbox(bytes: Buffer, format: Format) {
    const box = path.join(tmp, `box-${++n}`);
    fs.mkdirSync(path.join(box, 'work'), { recursive: true });
    fs.writeFileSync(path.join(box, 'sentinel'), 'keep');
    const name = `a${n}.${format}`;
    const file = path.join(box, name);
    fs.writeFileSync(file, bytes);
    fs.writeFileSync(path.join(tmp, 'served', name), bytes);
    return { box, file, url: `${base}/${name}`, dest: path.join(box, 'work', 'dest') };
  }

  function listing(dir: string): string[] {
    const out: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const name of fs.readdirSync(d).sort()) {
        const p = path.join(d, name);
        const r = rel ? `${rel}/${name}` : name;
        out.push(r);
        if (fs.lstatSync(p).isDirectory()) walk(p, r);
      }
    };
    walk(dir, '');
    return out;
  }

  const applies = (c: HostileCase, format: Format) =>
    format === 'tar.gz' || !c.items.some((i) => i.kind === 'hardlink');

  for (const consumer of consumers) {
    for (const format of Object.keys(FORMATS) as Format[]) {
      describe(`${consumer.name}, ${format}`, () => {
        for (const c of HOSTILE.filter((h) => applies(h, format))) {
          it(`refuses: ${c.name}`, async () => {
            const a = archive(c.name, format, c.items);
            const { box, file, url, dest } = sandbox(a.bytes, format);
            const before = listing(box);
            lastCode = undefined;
            const message = await consumer.run({
              file,
              url,
              dest,
              sha256: a.sha256,
              size: a.bytes.length,
              format,
            });
            assert.notEqual(message, null, 'accepted a hostile archive');
            if (c.names) assert.ok(message!.includes(c.names), message!);
            if (consumer.code) assert.equal(lastCode, c.code, message!);
            assert.deepEqual(listing(box), before, 'nothing written anywhere, dest not created');
            assert.equal(fs.readFileSync(path.join(box, 'sentinel'), 'utf8'), 'keep');
            fs.rmSync(box, { recursive: true, force: true });
          });
        }
        it('accepts the benign tree: exec bits, chained in-tree links', async () => {
          const a = archive('benign', format, BENIGN);
          const { file, url, dest } = sandbox(a.bytes, format);
          const message = await consumer.run({
            file,
            url,
            dest,
            sha256: a.sha256,
            size: a.bytes.length,
            format,
          });
          assert.equal(message, null);
          assert.equal(fs.readlinkSync(path.join(dest, 'run')), 'link-to-scripts/run.py');
          assert.equal(fs.statSync(path.join(dest, 'scripts', 'run.sh')).mode & 0o777, 0o755);
          assert.equal(fs.statSync(path.join(dest, 'configs', 'a.py')).mode & 0o777, 0o644);
          assert.equal(fs.readFileSync(path.join(dest, 'later'), 'utf8'), 'A = 1\n');
          assert.equal(fs.readFileSync(path.join(dest, 'via'), 'utf8'), 'A = 1\n');
          assert.match(fs.readFileSync(path.join(dest, 'run'), 'utf8'), /hello from the archive/);
        });
      });
    }
  }

  it('a directory bomb is refused at --max-files, counting directories, before writing them', async () => {
    for (const format of Object.keys(FORMATS) as Format[]) {
      const items = Array.from({ length: 2000 }, (_, i) => ({
        name: `d${i}`,
        kind: 'dir' as const,
      }));
      const { box, file, dest } = sandbox(FORMATS[format](items), format);
      const before = listing(box);
      await assert.rejects(
        unpackArchive(file, dest, { limits: { maxFiles: 1000 } }),
        (e: unknown) =>
          isArchiveError(e, 'limit-exceeded') && /more than 1000 entries/.test(e.message),
      );
      assert.deepEqual(listing(box), before);
    }
  });

  it('the ratio and total limits are configurable', async () => {
    for (const format of Object.keys(FORMATS) as Format[]) {
      const items = [1, 2].map((i) => ({ name: `z${i}`, zeros: 8 * 1024 * 1024 }));
      const { file, dest } = sandbox(FORMATS[format](items), format);
      await assert.rejects(
        unpackArchive(file, dest, { limits: { maxTotalBytes: 12 * 1024 * 1024 } }),
        (e: unknown) => isArchiveError(e, 'limit-exceeded') && /"z2"/.test(e.message),
      );
      assert.deepEqual(await unpackArchive(file, dest), { files: 2, bytes: 16 * 1024 * 1024 });
    }
  });

  it('refuses a file that is neither format, and a declared format the bytes contradict', async () => {
    const { file, dest } = sandbox(Buffer.from('not an archive'), 'zip');
    await assert.rejects(unpackArchive(file, dest), (e: unknown) => isArchiveError(e, 'corrupt'));
    const z = sandbox(FORMATS.zip(BENIGN), 'zip');
    await assert.rejects(
      unpackArchive(z.file, z.dest, { format: 'tar.gz' }),
      (e: unknown) =>
        isArchiveError(e, 'corrupt') && /declared tar.gz but is a zip/.test(e.message),
    );
    await assert.rejects(unpackArchive(z.file, z.dest, { format: 'rar' }), (e: unknown) =>
      isArchiveError(e, 'usage'),
    );
  });
});
