// Benchmark: buildArchive from a directory (~2,000 files, ~20 MB) against the shell baseline
// `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - DIR | gzip -n -6`.
// Prints both wall times, the ratio, and peak memory (RSS sampled for ours, /usr/bin/time -v for
// the baseline when available). Run: node --import tsx bench/pack.ts
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildArchive } from '../src/archive/index.js';

const FILES = 2000;
const TARGET_BYTES = 20 * 1024 * 1024;

/** A deterministic tree: nested dirs, text-like (compressible) and random (incompressible) files. */
function generateTree(root: string): { files: number; bytes: number } {
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const words = [
    'mozharness',
    'config',
    'script',
    'self',
    'return',
    'import',
    'def',
    'os.path',
    'log',
    'platform',
  ];
  let bytes = 0;
  const avg = TARGET_BYTES / FILES;
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(root, `d${i % 17}`, `sub${i % 5}`, i % 3 ? 'python' : 'configs');
    fs.mkdirSync(dir, { recursive: true });
    const size = Math.max(16, Math.round(avg * (0.2 + 1.6 * rand())));
    let content: Buffer;
    if (i % 4 === 0) content = crypto.randomBytes(size);
    else {
      const parts: string[] = [];
      let n = 0;
      while (n < size) {
        const w = words[Math.floor(rand() * words.length)] + (rand() < 0.1 ? '\n' : ' ');
        parts.push(w);
        n += w.length;
      }
      content = Buffer.from(parts.join('')).subarray(0, size);
    }
    const file = path.join(dir, `file_${i}.py`);
    fs.writeFileSync(file, content);
    if (i % 50 === 0) fs.chmodSync(file, 0o755);
    bytes += size;
  }
  return { files: FILES, bytes };
}

function baseline(dir: string, out: string): { ms: number; peakKb?: number } {
  const script = `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C "${dir}" . | gzip -n -6 > "${out}"`;
  const hasTime = fs.existsSync('/usr/bin/time');
  const t0 = process.hrtime.bigint();
  const r = hasTime
    ? spawnSync('/usr/bin/time', ['-v', 'sh', '-c', script], { encoding: 'utf8' })
    : spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
  // /usr/bin/time -v reports the largest child's peak (tar or gzip)
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  return { ms, peakKb: m ? Number(m[1]) : undefined };
}

async function ours(
  dir: string,
  out: string,
): Promise<{ ms: number; peakRssMb: number; baseRssMb: number; sha256: string }> {
  if (global.gc) global.gc();
  const baseRss = process.memoryUsage().rss;
  let peak = baseRss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  const t0 = process.hrtime.bigint();
  const r = await buildArchive({
    source: { kind: 'dir', path: path.dirname(dir) },
    revision: '0'.repeat(40),
    subdir: path.basename(dir),
    out,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { ms, peakRssMb: peak / 2 ** 20, baseRssMb: baseRss / 2 ** 20, sha256: r.sha256 };
}

export async function run(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pack-'));
  try {
    const tree = path.join(tmp, 'src', 'mozharness');
    const gen = generateTree(tree);
    console.log(`bench/pack: tree of ${gen.files} files, ${(gen.bytes / 2 ** 20).toFixed(1)} MB`);
    // warm the page cache for both contestants
    execFileSync('tar', ['-cf', '/dev/null', '-C', tree, '.']);
    const runs = 3;
    const b: number[] = [];
    const o: number[] = [];
    let basePeak: number | undefined;
    let ourPeak = 0;
    let ourBase = 0;
    let sha = '';
    for (let i = 0; i < runs; i++) {
      const bl = baseline(tree, path.join(tmp, `baseline-${i}.tar.gz`));
      b.push(bl.ms);
      basePeak = bl.peakKb ?? basePeak;
      const r = await ours(tree, path.join(tmp, `ours-${i}.tar.gz`));
      o.push(r.ms);
      ourPeak = Math.max(ourPeak, r.peakRssMb);
      ourBase = r.baseRssMb;
      if (sha && sha !== r.sha256) throw new Error('buildArchive is not reproducible across runs');
      sha = r.sha256;
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const bm = median(b);
    const om = median(o);
    const size = (f: string) => fs.statSync(path.join(tmp, f)).size;
    console.log(
      `  baseline (tar --sort=name | gzip -n -6): median ${bm.toFixed(0)} ms of ${runs}, archive ${size('baseline-0.tar.gz')} bytes` +
        (basePeak
          ? `, peak RSS ${(basePeak / 1024).toFixed(1)} MB (largest process, /usr/bin/time -v)`
          : ''),
    );
    console.log(
      `  buildArchive (dir source):               median ${om.toFixed(0)} ms of ${runs}, archive ${size('ours-0.tar.gz')} bytes, peak RSS ${ourPeak.toFixed(1)} MB (process at start ${ourBase.toFixed(1)} MB)`,
    );
    console.log(`  ratio buildArchive / baseline: ${(om / bm).toFixed(2)}x`);
    console.log(`  sha256 (same on every run): ${sha}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  run().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
