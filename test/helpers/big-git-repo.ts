// A git repository shaped like Firefox's, small enough to make in seconds: one commit (written by
// `git fast-import`) of 20,000 incompressible 2 KiB files around a 21-entry harness.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';

export const SUBDIR = 'testing/mozharness';
export const OTHER_FILES = 20_000;

/** One commit written by `git fast-import`: 20,000 files of 2 KiB elsewhere and a small harness. */
export function fastImportRepo(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  assert.equal(spawnSync('git', ['init', '-q', '--bare', dir]).status, 0);
  const parts: string[] = [
    'commit refs/heads/main',
    'committer CI <ci@example.invalid> 0 +0000',
    'data 5',
    'big!',
  ];
  // incompressible, like most of a real tree's bytes are to git's pack compression
  const noise = () => crypto.randomBytes(1536).toString('base64');
  for (let i = 0; i < OTHER_FILES; i++) {
    const content = noise();
    parts.push(
      `M 100644 inline dom/d${i % 200}/file${i}.cpp`,
      `data ${Buffer.byteLength(content)}`,
      content,
    );
  }
  for (let i = 0; i < 20; i++) {
    const content = `# harness module ${i}\n` + 'print("mozharness")\n'.repeat(20);
    parts.push(
      `M ${i === 0 ? '100755' : '100644'} inline ${SUBDIR}/scripts/s${i}.py`,
      `data ${Buffer.byteLength(content)}`,
      content,
    );
  }
  parts.push(`M 120000 inline ${SUBDIR}/configs/default.py`, 'data 13', 'scripts/s1.py', '');
  const r = spawnSync('git', ['-C', dir, 'fast-import', '--quiet'], {
    input: parts.join('\n') + '\n',
  });
  assert.equal(r.status, 0, r.stderr?.toString());
}
