// Files on disk are read synchronously into the packer's one reused buffer (tree.ts readSync):
// the chunks are the file's bytes in order, whatever the buffer's size, and a file whose size
// changed since it was listed is refused rather than archived short or long.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diskEntry } from '../src/archive/tree.js';

describe('synchronous reads of files on disk', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'read-sync-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const read = (rel: string, bufSize: number) => {
    const e = diskEntry(tmp, rel)!;
    const buf = Buffer.alloc(bufSize);
    const parts: Buffer[] = [];
    for (const chunk of e.readSync!(buf)) {
      assert.equal(chunk.buffer, buf.buffer, 'each chunk is a view of the buffer given');
      parts.push(Buffer.from(chunk));
    }
    return Buffer.concat(parts);
  };

  it('gives the bytes in order for sizes below, at and above the buffer size', () => {
    for (const size of [0, 1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 7]) {
      const content = crypto.randomBytes(size);
      fs.writeFileSync(path.join(tmp, `f${size}`), content);
      assert.deepEqual(read(`f${size}`, 4096), content, `size ${size}`);
    }
  });

  it('refuses a file that grew or shrank after it was listed', () => {
    for (const [name, before, after] of [
      ['grew-small', 10, 11],
      ['shrank-small', 10, 9],
      ['grew-large', 3 * 4096, 3 * 4096 + 1],
      ['shrank-large', 3 * 4096, 2 * 4096],
    ] as const) {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, Buffer.alloc(before, 1));
      const e = diskEntry(tmp, name)!;
      fs.writeFileSync(file, Buffer.alloc(after, 1));
      assert.throws(
        () => {
          for (const _ of e.readSync!(Buffer.alloc(4096))) {
            // consume
          }
        },
        (err: Error & { code?: string }) =>
          err.code === 'corrupt' && /changed size while being archived/.test(err.message),
        name,
      );
    }
  });
});
