// The fixed tree whose archive bytes are pinned (golden sha256s), written by code so nothing
// else can change it: text, pseudo-random and multi-block files, an empty file, an executable,
// non-ASCII and long names, and symlinks.
import fs from 'node:fs';
import path from 'node:path';
import { DEFLATE_BLOCK_SIZE } from '../../src/archive/deflate.js';

/** The bytes the fixture packs to with FORMAT_VERSION `formatVersion`, on any machine. */
export const GOLDEN = {
  formatVersion: 2,
  tarGz: '3ba64137ea0b15426587617b0726be1a0518d27d1e6f469661c15f72590b0d70',
  zip: 'ca798a0fb8ab33a251174019208378414d23d3b825a35be3c165129d28af33b7',
  treeDigest: '456863ce3900e4bb5745ff06338038112282ff557167bc1b3b50fd84d9fdc849',
};

/** A fixed tree, written here so nothing else can change it: text, random-looking and large files. */
export function writeGoldenFixture(root: string): void {
  const put = (rel: string, content: Buffer | string, mode = 0o644) => {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
    fs.chmodSync(abs, mode);
  };
  let seed = 7;
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16;
    return b;
  };
  const words = ['mozharness', 'self.run', 'config', 'import os', 'return', 'log.info', 'def'];
  const text = (n: number) => {
    const out: string[] = [];
    for (let len = 0, i = 0; len < n; i++) {
      const w = words[(i * 7 + (i >> 3)) % words.length] + (i % 11 === 0 ? '\n' : ' ');
      out.push(w);
      len += w.length;
    }
    return out.join('').slice(0, n);
  };
  put('README.md', 'Golden fixture of the archive format.\n');
  put('scripts/run.py', '#!/usr/bin/env python3\nprint("run")\n', 0o755);
  put('mozharness/base/script.py', text(300_000));
  put('mozharness/base/empty.py', '');
  put('data/noise.bin', bytes(3 * DEFLATE_BLOCK_SIZE + 1234));
  put('docs/Ünïcödé-名前.txt', 'non-ASCII name\n');
  put(`${'long/'.repeat(25)}file.txt`, 'a path over 100 bytes\n');
  fs.symlinkSync('run.py', path.join(root, 'scripts/alias.py'));
  fs.symlinkSync('../mozharness', path.join(root, 'docs/code'));
}
