// The packer writes the common ustar header itself (tar.ts plainHeader) for speed: it must be
// byte for byte what tar@7's Header writes for the same fields, for every name, mode, size and
// type the packer can give it.
import assert from 'node:assert/strict';
import { Header } from 'tar';
import { entryHeader, plainHeader, type EntryType } from '../src/archive/tar.js';

const TYPE_NAMES = { file: 'File', dir: 'Directory', symlink: 'SymbolicLink' } as const;

function tarHeader(name: string, mode: number, size: number, type: EntryType, link: string) {
  const h = new Header({
    path: name,
    mode,
    size,
    type: TYPE_NAMES[type],
    linkpath: link,
    uid: 0,
    gid: 0,
    mtime: new Date(0),
    uname: '',
    gname: '',
    devmaj: 0,
    devmin: 0,
  });
  h.encode();
  return h.block!;
}

describe('tar header fast path', () => {
  it('writes exactly what tar@7 Header writes', () => {
    let seed = 11;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const printable = () => String.fromCharCode(0x20 + rand(0x5f));
    const sizes = [0, 1, 511, 512, 4096, 0o7777777, 0o10000000, 2 ** 32, 0o77777777777];
    for (let i = 0; i < 3000; i++) {
      const type = (['file', 'dir', 'symlink'] as const)[rand(3)];
      const nameLength = 1 + rand(99);
      let name = Array.from({ length: nameLength }, printable).join('');
      if (type === 'dir') name = name.slice(0, 98) + '/';
      const link =
        type === 'symlink' ? Array.from({ length: 1 + rand(100) }, printable).join('') : '';
      const mode = type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : [0o644, 0o755][rand(2)];
      const size = type === 'file' ? (i < sizes.length ? sizes[i] : rand(2 ** 30)) : 0;
      assert.deepEqual(
        plainHeader(name, mode, size, type, link),
        tarHeader(name, mode, size, type, link),
        JSON.stringify({ name, mode, size, type, link }),
      );
    }
  });

  it('is what entryHeader gives for entries that need no PAX record', () => {
    const cases = [
      { path: 'a.py', type: 'file' as const, mode: 0o644, size: 12345 },
      { path: 'bin/run', type: 'file' as const, mode: 0o755, size: 0 },
      { path: 'configs', type: 'dir' as const, mode: 0o755, size: 0 },
      { path: 'l', type: 'symlink' as const, mode: 0o777, size: 0, linkTarget: 'x'.repeat(100) },
    ];
    for (const e of cases) {
      const name = e.type === 'dir' ? e.path + '/' : e.path;
      assert.deepEqual(
        entryHeader(e),
        tarHeader(name, e.mode, e.size, e.type, e.linkTarget ?? ''),
        e.path,
      );
    }
  });
});
