// Start-up of the installed command (dist/, as `npm ci` builds it), whole-process wall time, the
// median of several runs each:
//   --help                         against a bare `node -e 0` (the floor any Node command pays)
//   digest of a small tree         goal: within about 300 ms
//   build of a harness-sized tree  (~1,000 files, 10 MB) against buildArchive() in this process;
//                                  goal: whole process within 1.3x of in-process
//
// Each figure is also given in CPU time (user + system of the whole process, read at its exit):
// on a machine busy with other work, wall time mostly measures the wait for a core.
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

interface ProcessTime {
  wallMs: number;
  cpuMs: number;
}

/** Preloaded into each measured process: writes its CPU time at exit to $BENCH_STARTUP_CPU_FILE. */
const CPU_REPORTER = `process.on('exit', () => {
  const u = process.cpuUsage();
  require('node:fs').writeFileSync(process.env.BENCH_STARTUP_CPU_FILE, String((u.user + u.system) / 1000));
});`;

function timeProcess(args: string[], tmp: string): ProcessTime {
  const reporter = path.join(tmp, 'cpu-reporter.cjs');
  const cpuFile = path.join(tmp, 'cpu-ms');
  if (!fs.existsSync(reporter)) fs.writeFileSync(reporter, CPU_REPORTER);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    execFileSync(process.execPath, ['--require', reporter, ...args], {
      stdio: 'ignore',
      env: {
        ...process.env,
        MOZHARNESS_ARCHIVE_LOG_LEVEL: 'warn',
        BENCH_STARTUP_CPU_FILE: cpuFile,
      },
    });
    wall.push(Number(process.hrtime.bigint() - t) / 1e6);
    cpu.push(Number(fs.readFileSync(cpuFile, 'utf8')));
  }
  return { wallMs: median(wall), cpuMs: median(cpu) };
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
    const bare = timeProcess(['-e', '0'], tmp);
    const help = timeProcess([BIN, '--help'], tmp);
    const figures = (t: ProcessTime) =>
      `${t.wallMs.toFixed(0).padStart(6)} ms (CPU ${t.cpuMs.toFixed(0).padStart(4)} ms)`;
    const ratios = (t: ProcessTime) =>
      `ratio ${(t.wallMs / bare.wallMs).toFixed(2)} (CPU ${(t.cpuMs / bare.cpuMs).toFixed(2)})`;
    console.log(
      `  --help                            ${figures(help)}   baseline bare node -e 0 ${figures(bare)}   ${ratios(help)}   (goal: about 150 ms)`,
    );
    const digest = timeProcess(
      [BIN, 'digest', '--source', small, '--revision', rev, '--subdir', 'mozharness'],
      tmp,
    );
    console.log(
      `  digest, 20 files                  ${figures(digest)}   to bare node: ${ratios(digest)}   (goal: about 300 ms)`,
    );
    const out = path.join(tmp, 'out.tar.gz');
    const whole = timeProcess(
      [BIN, 'build', '--source', big, '--revision', rev, '--subdir', 'mozharness', '--out', out],
      tmp,
    );
    const inProcess = await timeInProcess(() =>
      buildArchive({
        source: { kind: 'dir', path: big },
        revision: rev,
        subdir: 'mozharness',
        out,
      }),
    );
    console.log(
      `  build, 1,000 files / 10 MB        ${figures(whole)}   baseline buildArchive() in process ${inProcess.toFixed(0)} ms   ratio ${(whole.wallMs / inProcess).toFixed(2)}   (goal: <= 1.30)`,
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
