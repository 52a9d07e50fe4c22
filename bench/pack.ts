// Benchmark: buildArchive from a directory (2,000 files / 20 MB, and 20,000 files / 200 MB)
// against the shell baseline over the same files,
// `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - DIR | gzip -n -6`,
// and `pigz -p N` in its place when pigz is installed. Each of our runs is a fresh child process
// (plain node running the built dist/, as the installed command does; the bench builds it first)
// that times buildArchive in process and reports its CPU time and peak RSS (getrusage maxrss),
// so memory is not inherited from earlier runs nor inflated by a TypeScript loader. Prints
// medians, ratios (wall and CPU) and whether the bytes were the same for every thread count.
// A floor row shows what Node's zlib alone costs: the same tar stream, already in memory,
// deflated on the same pool with every core and no tree work, in a fresh process: no engine
// built on Node's zlib packs faster than that.
// Run: node --import tsx bench/pack.ts
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultThreads } from '../src/archive/deflate.js';
import { ROOT, runScript } from './child.js';

/** A deterministic tree: nested dirs, text-like (compressible) and random (incompressible) files. */
export function generateTree(
  root: string,
  FILES = 2000,
  TARGET_BYTES = 20 * 1024 * 1024,
): { files: number; bytes: number } {
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

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const hasCmd = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

function shell(script: string): { ms: number; cpuMs?: number; peakKb?: number } {
  const hasTime = fs.existsSync('/usr/bin/time');
  const t0 = process.hrtime.bigint();
  const r = hasTime
    ? spawnSync('/usr/bin/time', ['-v', 'sh', '-c', script], { encoding: 'utf8' })
    : spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
  // /usr/bin/time -v reports the largest child's peak (tar or gzip) and everyone's CPU
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  const user = /User time \(seconds\): ([\d.]+)/.exec(r.stderr ?? '');
  const sys = /System time \(seconds\): ([\d.]+)/.exec(r.stderr ?? '');
  const cpuMs = user && sys ? (Number(user[1]) + Number(sys[1])) * 1000 : undefined;
  return { ms, cpuMs, peakKb: m ? Number(m[1]) : undefined };
}

const tarCmd = (dir: string) =>
  `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C "${dir}" .`;

interface ChildResult {
  ms: number;
  cpuMs: number;
  peakRssMb: number;
  sha256: string;
  zipSha256?: string;
  size: number;
}

/** The child: buildArchive from dist/ in a bare node, timed in process, with its CPU and peak. */
const CHILD = `
const [dir, out, threads, zip] = process.argv.slice(1);
const path = await import('node:path');
const { buildArchive } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'archive', 'index.js'))});
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const r = await buildArchive({
  source: { kind: 'dir', path: path.dirname(dir) },
  revision: '0'.repeat(40),
  subdir: path.basename(dir),
  out,
  zipOut: zip === 'true' ? out + '.zip' : undefined,
  zip: zip === 'true',
  threads: Number(threads),
});
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ ms, cpuMs: (c.user + c.system) / 1000,
  peakRssMb: process.resourceUsage().maxRSS / 1024, sha256: r.sha256, zipSha256: r.zip?.sha256,
  size: r.size }));
`;

/**
 * The floor for any engine on Node's zlib: a fresh process deflates the tar stream (already read
 * into memory) on `threads` deflate threads, as buildArchive's pool does, and nothing else.
 */
const FLOOR_CHILD = `
const [tarFile, threads] = process.argv.slice(1);
const fs = await import('node:fs');
const { DeflatePool } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'archive', 'deflate.js'))});
const { BlockDeflater } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'archive', 'deflate-stream.js'))});
const data = fs.readFileSync(tarFile);
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const pool = new DeflatePool(Number(threads));
const pending = [];
const d = new BlockDeflater(pool, async (p) => {
  pending.push(p);
  if (pending.length > 16) pool.release(await pending.shift());
});
for (let o = 0; o < data.length; o += 65536) await d.write(data.subarray(o, o + 65536));
await d.end();
for (const p of pending) pool.release(await p);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const c = process.cpuUsage(c0);
await pool.close();
console.log(JSON.stringify({ ms, cpuMs: (c.user + c.system) / 1000, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
`;

function floor(tarFile: string, threads: number): { ms: number; cpuMs: number; peakRssMb: number } {
  return runScript('deflate floor', FLOOR_CHILD, [tarFile, String(threads)]);
}

/** One buildArchive in a fresh process: in-process time, CPU and the process's peak RSS. */
function ours(dir: string, out: string, threads: number, zip: boolean): ChildResult {
  return runScript('buildArchive', CHILD, [dir, out, String(threads), String(zip)]);
}

/** Build dist/ (incrementally) so the children run what `npm ci` installs. */
function buildDist(): void {
  execFileSync(
    process.execPath,
    [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    { cwd: ROOT, stdio: 'inherit' },
  );
}

interface Row {
  name: string;
  ms: number[];
  cpu: number[];
  peak: number;
  what: string;
}

const row = (name: string, what: string): Row => ({ name, ms: [], cpu: [], peak: 0, what });

function report(r: Row, base: Row, runs: number): void {
  const ms = median(r.ms);
  const cpu = r.cpu.length ? median(r.cpu) : NaN;
  const baseCpu = base.cpu.length ? median(base.cpu) : NaN;
  console.log(
    `  ${r.name.padEnd(52)} median ${ms.toFixed(0).padStart(6)} ms of ${runs}, ratio ${(ms / median(base.ms)).toFixed(2)}x;` +
      ` CPU ${cpu.toFixed(0)} ms (${(cpu / baseCpu).toFixed(2)}x); peak RSS ${r.peak.toFixed(0)} MB (${r.what})`,
  );
}

async function measure(label: string, files: number, bytes: number, runs: number, tmp: string) {
  const tree = path.join(tmp, label, 'mozharness');
  const gen = generateTree(tree, files, bytes);
  console.log(`\n### ${label}: ${gen.files} files, ${(gen.bytes / 2 ** 20).toFixed(1)} MB`);
  // warm the page cache for every contestant
  execFileSync('tar', ['-cf', '/dev/null', '-C', tree, '.']);
  const cores = defaultThreads();
  const out = (n: string) => path.join(tmp, label, n);
  const base = row('baseline: tar --sort=name | gzip -n -6', 'largest process');
  const pigz = hasCmd('pigz')
    ? row(`baseline: tar --sort=name | pigz -p ${cores} -6`, 'largest process')
    : null;
  const ourRow = (name: string, threads: number, zip: boolean) => ({
    ...row(name, 'whole process'),
    threads,
    zip,
  });
  const mine = [
    ourRow('buildArchive tar.gz, 1 deflate thread', 1, false),
    ourRow(`buildArchive tar.gz, ${cores} deflate threads (all cores)`, cores, false),
    ourRow(`buildArchive tar.gz + zip, ${cores} threads`, cores, true),
  ];
  const floorRow = {
    ...row(`floor: Node's zlib alone on the tar, ${cores} threads (no tree work)`, 'whole process'),
  };
  const tarShas = new Set<string>();
  const addShell = (r: Row, script: string) => {
    const b = shell(script);
    r.ms.push(b.ms);
    if (b.cpuMs !== undefined) r.cpu.push(b.cpuMs);
    r.peak = Math.max(r.peak, (b.peakKb ?? 0) / 1024);
  };
  const tarFile = out('baseline.tar');
  execFileSync('sh', ['-c', `${tarCmd(tree)} > "${tarFile}"`]);
  for (let i = 0; i < runs; i++) {
    addShell(base, `${tarCmd(tree)} | gzip -n -6 > "${out('baseline.tar.gz')}"`);
    const f = floor(tarFile, cores);
    floorRow.ms.push(f.ms);
    floorRow.cpu.push(f.cpuMs);
    floorRow.peak = Math.max(floorRow.peak, f.peakRssMb);
    if (pigz) addShell(pigz, `${tarCmd(tree)} | pigz -n -6 -p ${cores} > "${out('pigz.tar.gz')}"`);
    for (const m of mine) {
      const r = ours(tree, out('ours.tar.gz'), m.threads, m.zip);
      m.ms.push(r.ms);
      m.cpu.push(r.cpuMs);
      m.peak = Math.max(m.peak, r.peakRssMb);
      tarShas.add(r.sha256);
    }
  }
  for (const r of [base, ...(pigz ? [pigz] : []), floorRow, ...mine]) report(r, base, runs);
  console.log(
    `  archive: ours ${fs.statSync(out('ours.tar.gz')).size} bytes, gzip -6 ${fs.statSync(out('baseline.tar.gz')).size} bytes; ` +
      `tar.gz sha256 the same for every thread count and run: ${tarShas.size === 1 ? 'yes' : 'NO'} (${[...tarShas][0]})`,
  );
  fs.rmSync(path.join(tmp, label), { recursive: true, force: true });
}

export async function run(): Promise<void> {
  buildDist();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pack-'));
  try {
    console.log(
      `bench/pack: ${os.availableParallelism()} cores, load average ${os.loadavg()[0].toFixed(1)} at start` +
        (hasCmd('pigz') ? '' : ' (pigz not installed: no pigz baseline)'),
    );
    const runs = Number(process.env.BENCH_PACK_RUNS ?? 3);
    await measure('20 MB tree', 2000, 20 * 2 ** 20, runs, tmp);
    if (process.env.BENCH_PACK_SMALL_ONLY !== '1') {
      await measure('200 MB tree', 20_000, 200 * 2 ** 20, 1, tmp);
    }
    console.log(`  load average ${os.loadavg()[0].toFixed(1)} at the end`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain) {
  run().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
