// Start-up of the installed command (dist/, as `npm ci` builds it), whole-process wall time, the
// median of several runs each:
//   --help                         against a bare `node -e 0` (the floor any Node command pays)
//   digest of a small tree         goal: within about 300 ms
//   build of a harness-sized tree  (~1,000 files, 10 MB) against buildArchive() in this process;
//                                  goal: whole process within 1.3x of in-process
//
//   npx tsx bench/startup.ts        (or: npm run bench -- startup)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildArchive } from '../src/archive/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'mozharness-archive.js');
const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeProcess(args: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    execFileSync(process.execPath, args, {
      stdio: 'ignore',
      env: { ...process.env, MOZHARNESS_ARCHIVE_LOG_LEVEL: 'warn' },
    });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return median(times);
}

async function timeInProcess(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return median(times);
}

function harnessTree(dir: string, files: number, bytes: number): void {
  const per = Math.floor(bytes / files);
  for (let i = 0; i < files; i++) {
    const d = path.join(dir, `mozharness/d${i % 40}`);
    fs.mkdirSync(d, { recursive: true });
    // compressible text, like Python sources and configs
    const line = `    self.run_command(["python", "step_${i}.py", "--flag", "${i % 97}"])\n`;
    fs.writeFileSync(path.join(d, `f${i}.py`), line.repeat(Math.ceil(per / line.length)));
  }
}

export async function run(): Promise<void> {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-startup-'));
  try {
    const small = path.join(tmp, 'small');
    harnessTree(small, 20, 40_000);
    const big = path.join(tmp, 'big');
    harnessTree(big, 1000, 10_000_000);
    const rev = 'ab'.repeat(20);
    console.log(
      `startup: median of ${RUNS} runs, node ${process.version}, ${os.cpus().length} cpus`,
    );
    const bare = timeProcess(['-e', '0']);
    const help = timeProcess([BIN, '--help']);
    console.log(
      `  --help                            ${help.toFixed(0).padStart(6)} ms   baseline bare node -e 0 ${bare.toFixed(0)} ms   ratio ${(help / bare).toFixed(2)}   (goal: about 150 ms)`,
    );
    const digest = timeProcess([
      BIN,
      'digest',
      '--source',
      small,
      '--revision',
      rev,
      '--subdir',
      'mozharness',
    ]);
    console.log(
      `  digest, 20 files                  ${digest.toFixed(0).padStart(6)} ms   ratio to bare node ${(digest / bare).toFixed(2)}   (goal: about 300 ms)`,
    );
    const out = path.join(tmp, 'out.tar.gz');
    const whole = timeProcess([
      BIN,
      'build',
      '--source',
      big,
      '--revision',
      rev,
      '--subdir',
      'mozharness',
      '--out',
      out,
    ]);
    const inProcess = await timeInProcess(() =>
      buildArchive({
        source: { kind: 'dir', path: big },
        revision: rev,
        subdir: 'mozharness',
        out,
      }),
    );
    console.log(
      `  build, 1,000 files / 10 MB        ${whole.toFixed(0).padStart(6)} ms   baseline buildArchive() in process ${inProcess.toFixed(0)} ms   ratio ${(whole / inProcess).toFixed(2)}   (goal: <= 1.30)`,
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
