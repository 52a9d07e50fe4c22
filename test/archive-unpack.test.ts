// Safe unpack against a table of hostile tarballs built from raw headers: each is refused, the
// destination is left as it was and nothing is written outside it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { unpackArchive, type Limits } from '../src/archive/index.js';
import { readTar } from '../src/archive/untar.js';
import { isArchiveError } from '../src/util/errors.js';

interface RawEntry {
  name: string;
  /** tar type flag: '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'x' PAX, 'L' GNU long name */
  flag?: string;
  mode?: number;
  content?: string | Buffer;
  linkname?: string;
  /** Override the header's size field. */
  size?: number;
  badChecksum?: boolean;
}

function header(e: RawEntry, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(e.name, 0, 100, 'utf8');
  b.write((e.mode ?? 0o644).toString(8).padStart(7, '0') + '\0', 100, 8, 'ascii');
  b.write('0000000\0', 108, 8, 'ascii');
  b.write('0000000\0', 116, 8, 'ascii');
  b.write(size.toString(8).padStart(11, '0') + '\0', 124, 12, 'ascii');
  b.write('00000000000\0', 136, 12, 'ascii');
  b.write('        ', 148, 8, 'ascii');
  b.write(e.flag ?? '0', 156, 1, 'ascii');
  b.write(e.linkname ?? '', 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const x of b) sum += x;
  if (e.badChecksum) sum += 1;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

function paxBody(records: Record<string, string>): Buffer {
  let out = '';
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 2;
    while (String(len).length + Buffer.byteLength(body) !== len)
      len = String(len).length + Buffer.byteLength(body);
    out += `${len}${body}`;
  }
  return Buffer.from(out);
}

function rawTar(entries: RawEntry[], { end = true } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const content = Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content ?? '');
    parts.push(
      header(e, e.size ?? content.length),
      content,
      Buffer.alloc((512 - (content.length % 512)) % 512),
    );
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const gz = (b: Buffer) => zlib.gzipSync(b);

describe('archive unpack: hostile tarballs', function () {
  this.timeout(30_000);
  let tmp: string;
  let n = 0;

  before(async () => {
    tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'unpack-test-'));
  });
  after(async () => {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  });

  /** A fresh sandbox: <box>/work/dest is the destination, <box> must stay as it was. */
  function sandbox(archive: Buffer) {
    const box = path.join(tmp, `box-${++n}`);
    fs.mkdirSync(path.join(box, 'work'), { recursive: true });
    fs.writeFileSync(path.join(box, 'sentinel'), 'keep');
    const file = path.join(box, 'archive.tar.gz');
    fs.writeFileSync(file, archive);
    return { box, file, dest: path.join(box, 'work', 'dest') };
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

  const ok = 'safe/file.txt';
  const table: Array<{
    name: string;
    entries?: RawEntry[];
    raw?: Buffer;
    code: string;
    names?: string;
    limits?: Partial<Limits>;
  }> = [
    {
      name: 'absolute path',
      entries: [
        { name: ok, content: 'x' },
        { name: '/tmp/evil', content: 'x' },
      ],
      code: 'unsafe-path',
      names: '/tmp/evil',
    },
    {
      name: '.. component',
      entries: [{ name: '../evil', content: 'x' }],
      code: 'unsafe-path',
      names: '../evil',
    },
    {
      name: 'nested .. escaping',
      entries: [{ name: 'a/../../evil', content: 'x' }],
      code: 'unsafe-path',
      names: 'a/../../evil',
    },
    {
      name: 'symlink to an absolute path',
      entries: [{ name: 'etc', flag: '2', linkname: '/etc' }],
      code: 'unsafe-path',
      names: 'etc',
    },
    {
      name: 'symlink escaping with ..',
      entries: [{ name: 'sub/up', flag: '2', linkname: '../../outside' }],
      code: 'unsafe-path',
      names: 'sub/up',
    },
    {
      name: 'file written through an in-tree symlink',
      entries: [
        { name: 'sub/here', flag: '2', linkname: '..' },
        { name: 'sub/here/x', content: 'x' },
      ],
      code: 'unsafe-path',
      names: 'sub/here/x',
    },
    {
      name: 'hardlink escaping',
      entries: [{ name: 'h', flag: '1', linkname: '../../sentinel' }],
      code: 'unsafe-path',
      names: 'h',
    },
    {
      name: 'hardlink to an absolute path',
      entries: [{ name: 'h', flag: '1', linkname: '/etc/passwd' }],
      code: 'unsafe-path',
      names: 'h',
    },
    {
      name: 'character device',
      entries: [{ name: 'null', flag: '3' }],
      code: 'unsafe-path',
      names: 'null',
    },
    {
      name: 'block device',
      entries: [{ name: 'sda', flag: '4' }],
      code: 'unsafe-path',
      names: 'sda',
    },
    { name: 'FIFO', entries: [{ name: 'pipe', flag: '6' }], code: 'unsafe-path', names: 'pipe' },
    {
      name: 'setuid file',
      entries: [{ name: 'suid', mode: 0o4755, content: '#!/bin/sh\n' }],
      code: 'unsafe-path',
      names: 'suid',
    },
    {
      name: 'setgid directory',
      entries: [{ name: 'sgid/', flag: '5', mode: 0o2755 }],
      code: 'unsafe-path',
      names: 'sgid',
    },
    {
      name: 'PAX path escaping behind an innocent name',
      entries: [
        { name: 'PaxHeaders/x', flag: 'x', content: paxBody({ path: '../../pax-evil' }) },
        { name: 'innocent', content: 'x' },
      ],
      code: 'unsafe-path',
      names: '../../pax-evil',
    },
    {
      name: 'GNU long name escaping',
      entries: [
        { name: '././@LongLink', flag: 'L', content: '../../gnu-evil\0' },
        { name: 'innocent', content: 'x' },
      ],
      code: 'unsafe-path',
      names: '../../gnu-evil',
    },
    {
      name: 'unsupported entry type (GNU sparse file)',
      entries: [{ name: 'sparse', flag: 'S', content: 'x' }],
      code: 'unsafe-path',
      names: 'sparse',
    },
    {
      name: 'unknown entry type',
      entries: [
        { name: ok, content: 'x' },
        { name: 'odd', flag: 'Z' },
      ],
      code: 'unsafe-path',
      names: 'odd',
    },
    {
      name: 'oversized PAX header',
      entries: [
        {
          name: 'PaxHeaders/x',
          flag: 'x',
          content: paxBody({ comment: 'x'.repeat(1024 * 1024 + 10) }),
        },
        { name: 'innocent', content: 'x' },
      ],
      code: 'corrupt',
    },
    {
      name: 'file entry with a link target',
      entries: [{ name: 'f', content: 'x', linkname: '/etc/passwd' }],
      code: 'corrupt',
      names: 'f',
    },
    {
      name: 'too many entries',
      entries: [1, 2, 3].map((i) => ({ name: `f${i}`, content: 'x' })),
      code: 'limit-exceeded',
      limits: { maxFiles: 2 },
    },
    {
      name: 'entry over the size limit',
      entries: [{ name: 'big', content: 'x'.repeat(2000) }],
      code: 'limit-exceeded',
      names: 'big',
      limits: { maxFileBytes: 1000 },
    },
    {
      name: 'total over the limit',
      entries: [1, 2, 3].map((i) => ({ name: `f${i}`, content: 'x'.repeat(400) })),
      code: 'limit-exceeded',
      limits: { maxTotalBytes: 1000 },
    },
    {
      name: 'duplicate entry',
      entries: [
        { name: 'dup', content: 'a' },
        { name: 'dup', content: 'b' },
      ],
      code: 'corrupt',
    },
    {
      name: 'bad header checksum',
      entries: [{ name: 'x', content: 'x', badChecksum: true }],
      code: 'corrupt',
    },
    {
      name: 'missing end-of-archive marker',
      raw: gz(rawTar([{ name: 'x', content: 'x' }], { end: false })),
      code: 'corrupt',
    },
    {
      name: 'size field larger than the data',
      raw: gz(rawTar([{ name: 'x', content: 'x', size: 4096 }], { end: false })),
      code: 'corrupt',
    },
    {
      name: 'truncated gzip',
      raw: gz(rawTar([{ name: ok, content: crypto.randomBytes(20000) }])).subarray(0, 5000),
      code: 'corrupt',
    },
    { name: 'not gzip at all', raw: rawTar([{ name: ok, content: 'x' }]), code: 'corrupt' },
    {
      name: 'gzip inside the gzip stream',
      raw: gz(gz(rawTar([{ name: ok, content: 'x' }]))),
      code: 'corrupt',
    },
    {
      name: 'bad header checksum after a good entry',
      entries: [
        { name: ok, content: 'x'.repeat(700) },
        { name: 'later', content: 'x', badChecksum: true },
      ],
      code: 'corrupt',
      names: 'later',
    },
  ];

  for (const t of table) {
    it(`refuses: ${t.name}`, async () => {
      const archive = t.raw ?? gz(rawTar(t.entries!));
      const { box, file, dest } = sandbox(archive);
      const before = listing(box);
      await assert.rejects(unpackArchive(file, dest, { limits: t.limits }), (e: unknown) => {
        assert.ok(isArchiveError(e), String(e));
        assert.equal(e.code, t.code, e.message);
        if (t.names)
          assert.ok(
            e.message.includes(JSON.stringify(t.names)) || e.message.includes(t.names),
            e.message,
          );
        return true;
      });
      assert.deepEqual(listing(box), before, 'nothing written anywhere, dest not created');
      assert.equal(fs.readFileSync(path.join(box, 'sentinel'), 'utf8'), 'keep');
    });
  }

  it('refuses a wrong sha256 before anything becomes visible, and leaves an empty dest empty', async () => {
    const archive = gz(rawTar([{ name: ok, content: 'hello' }]));
    const { box, file, dest } = sandbox(archive);
    fs.mkdirSync(dest);
    const before = listing(box);
    await assert.rejects(
      unpackArchive(file, dest, { sha256: 'ab'.repeat(32) }),
      (e: unknown) => isArchiveError(e, 'checksum-mismatch') && /expected abab/.test(e.message),
    );
    assert.deepEqual(listing(box), before);
    await assert.rejects(unpackArchive(file, dest, { sha256: 'not-a-sha' }), (e: unknown) =>
      isArchiveError(e, 'usage'),
    );
    const sha = crypto.createHash('sha256').update(archive).digest('hex');
    assert.deepEqual(await unpackArchive(file, dest, { sha256: sha.toUpperCase() }), {
      files: 1,
      bytes: 5,
    });
    assert.equal(fs.readFileSync(path.join(dest, ok), 'utf8'), 'hello');
  });

  it('refuses a destination that exists and is not empty, leaving it untouched', async () => {
    const { box, file, dest } = sandbox(gz(rawTar([{ name: ok, content: 'hello' }])));
    fs.mkdirSync(dest);
    fs.writeFileSync(path.join(dest, 'mine'), 'mine');
    const before = listing(box);
    await assert.rejects(unpackArchive(file, dest), (e: unknown) => isArchiveError(e, 'conflict'));
    assert.deepEqual(listing(box), before);
    await assert.rejects(
      unpackArchive(path.join(box, 'missing.tar.gz'), path.join(box, 'work', 'd2')),
      (e: unknown) => isArchiveError(e, 'not-found'),
    );
  });

  it('accepts an archive of nothing but its end marker, and ignores padding after the marker', async () => {
    const { file, dest } = sandbox(gz(Buffer.alloc(10240)));
    assert.deepEqual(await unpackArchive(file, dest), { files: 0, bytes: 0 });
    assert.deepEqual(fs.readdirSync(dest), []);
    const padded = sandbox(
      gz(Buffer.concat([rawTar([{ name: ok, content: 'hi' }]), Buffer.alloc(9216)])),
    );
    assert.deepEqual(await unpackArchive(padded.file, padded.dest), { files: 1, bytes: 2 });
    assert.equal(fs.readFileSync(path.join(padded.dest, ok), 'utf8'), 'hi');
  });

  it('reads a tar stream that arrives in chunks shorter than a block, with a slow reader', async () => {
    const big = crypto.randomBytes(70_000);
    const tarBytes = rawTar([
      { name: 'a', content: 'first' },
      { name: 'big', content: big },
      { name: 'd/', flag: '5', mode: 0o755 },
      { name: 'z', content: 'last' },
    ]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < tarBytes.length; i += 100) chunks.push(tarBytes.subarray(i, i + 100));
    const seen: Array<[string, string, number]> = [];
    let bigBack = Buffer.alloc(0);
    for await (const e of readTar(Readable.from(chunks), 'test stream')) {
      const parts: Buffer[] = [];
      for await (const c of e.content) {
        parts.push(c);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const body = Buffer.concat(parts);
      if (e.path === 'big') bigBack = body;
      seen.push([e.path, e.type, body.length]);
    }
    assert.deepEqual(seen, [
      ['a', 'file', 5],
      ['big', 'file', big.length],
      ['d/', 'dir', 0],
      ['z', 'file', 4],
    ]);
    assert.ok(bigBack.equals(big));
  });

  it('accepts ordinary archives: ./ prefixes, in-tree links, and ignores ownership', async () => {
    const src = path.join(tmp, 'gnu-src');
    fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(src, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    fs.writeFileSync(path.join(src, 'data.txt'), 'data');
    fs.symlinkSync('bin/run.sh', path.join(src, 'run'));
    fs.linkSync(path.join(src, 'data.txt'), path.join(src, 'data-link.txt'));
    const file = path.join(tmp, 'gnu.tar.gz');
    execFileSync('tar', ['-czf', file, '--owner=1234', '--group=5678', '-C', src, '.']);
    const dest = path.join(tmp, 'gnu-dest');
    const r = await unpackArchive(file, dest);
    assert.equal(r.files, 4);
    assert.equal(fs.readlinkSync(path.join(dest, 'run')), 'bin/run.sh');
    assert.equal(fs.statSync(path.join(dest, 'bin', 'run.sh')).mode & 0o777, 0o755);
    assert.equal(fs.readFileSync(path.join(dest, 'data-link.txt'), 'utf8'), 'data');
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.includes('.unpack-')),
      [],
    );
  });
});
