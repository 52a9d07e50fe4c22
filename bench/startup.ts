// Start-up of the installed command (dist/, as `npm ci` builds it), whole-process wall time, the
// median of several runs each (--help's and build's taken in turn with their baseline's, so both
// see the same load):
//   --help                         against a bare `node -e 0` (the floor any Node command pays)
//   digest of a small tree         goal: within about 300 ms
//   build of a harness-sized tree  (~1,000 files, 10 MB) against the in-process time of the same
//                                  build in a fresh process; goal: whole process within 1.3x of it
//
// The build's baseline: the CLI runs one build per process, so what it is measured against is the
// in-process time of that build as a fresh process runs it. Each baseline run is a bare `node`
// child that imports the built dist/archive/index.js and times only its buildArchive() call, made
// with the options the CLI's `build` passes (the source as parseSource gives it, an empty fetch
// policy, a logger at the same level, `out`, and the zip computed and discarded since `zip`
// defaults to true), as bench/pack.ts times its builds. The whole-process figure less that is
// node's start, module loading, what the CLI does around the call (flags, printing) and exit.
// buildArchive() called again and again in this warm process (src/ through tsx) is printed too,
// for information: it has no start-up and its code is already compiled and optimised, so no
// whole process can come near it.
//
// Each figure is also given in CPU time (user + system of the whole process, read at its exit;
// of the buildArchive() call alone for the baseline): on a machine busy with other work, wall
// time mostly measures the wait for a core.
//
//   npx tsx bench/startup.ts        (or: npm run bench -- startup)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildArchive } from '../src/archive/index.js';
import { ROOT, runScript } from './child.js';

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

/** One run of `node args` (the CPU reporter preloaded): its wall and CPU time. */
function runProcess(args: string[], tmp: string): ProcessTime {
  const reporter = path.join(tmp, 'cpu-reporter.cjs');
  const cpuFile = path.join(tmp, 'cpu-ms');
  if (!fs.existsSync(reporter)) fs.writeFileSync(reporter, CPU_REPORTER);
  const t = process.hrtime.bigint();
  execFileSync(process.execPath, ['--require', reporter, ...args], {
    stdio: 'ignore',
    env: {
      ...process.env,
      MOZHARNESS_ARCHIVE_LOG_LEVEL: 'warn',
      BENCH_STARTUP_CPU_FILE: cpuFile,
    },
  });
  return {
    wallMs: Number(process.hrtime.bigint() - t) / 1e6,
    cpuMs: Number(fs.readFileSync(cpuFile, 'utf8')),
  };
}

/** Each of `runs` RUNS times, taken in turn (so a change of load on the machine hits all), medians. */
function timeInTurn(...runs: Array<() => ProcessTime>): ProcessTime[] {
  const times = runs.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
  for (let i = 0; i < RUNS; i++) {
    runs.forEach((run, k) => {
      const t = run();
      times[k]!.wall.push(t.wallMs);
      times[k]!.cpu.push(t.cpuMs);
    });
  }
  return times.map((t) => ({ wallMs: median(t.wall), cpuMs: median(t.cpu) }));
}

/** The baseline child: the CLI's buildArchive() call in a bare node, timed in process. */
const CHILD = `
const [source, out] = process.argv.slice(1);
const { buildArchive, parseSource } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'archive', 'index.js'))});
const { createLogger } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'util', 'log.js'))});
const spec = parseSource(source);
const opts = {
  source: spec,
  revision: ${JSON.stringify('ab'.repeat(20))},
  subdir: 'mozharness',
  policy: { allowRepos: [] },
  out,
  log: createLogger({ level: process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL ? undefined : 'warn' }),
};
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const r = await buildArchive(opts);
const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
const c = process.cpuUsage(c0);
if (!r.zip) throw new Error('the zip was not computed');
console.log(JSON.stringify({ wallMs, cpuMs: (c.user + c.system) / 1000 }));
`;

/** One buildArchive() as the CLI calls it, in a fresh process: its in-process wall and CPU time. */
function runColdInProcess(source: string, out: string): ProcessTime {
  return runScript('buildArchive', CHILD, [source, out], {
    ...process.env,
    MOZHARNESS_ARCHIVE_LOG_LEVEL: 'warn',
  });
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
    const [bare, help] = timeInTurn(
      () => runProcess(['-e', '0'], tmp),
      () => runProcess([BIN, '--help'], tmp),
    );
    const figures = (t: ProcessTime) =>
      `${t.wallMs.toFixed(0).padStart(6)} ms (CPU ${t.cpuMs.toFixed(0).padStart(4)} ms)`;
    const ratios = (t: ProcessTime) =>
      `ratio ${(t.wallMs / bare.wallMs).toFixed(2)} (CPU ${(t.cpuMs / bare.cpuMs).toFixed(2)})`;
    console.log(
      `  --help                            ${figures(help)}   baseline bare node -e 0 ${figures(bare)}   ${ratios(help)}   (goal: about 150 ms)`,
    );
    const [digest] = timeInTurn(() =>
      runProcess(
        [BIN, 'digest', '--source', small, '--revision', rev, '--subdir', 'mozharness'],
        tmp,
      ),
    );
    console.log(
      `  digest, 20 files                  ${figures(digest)}   to bare node: ${ratios(digest)}   (goal: about 300 ms)`,
    );
    const out = path.join(tmp, 'out.tar.gz');
    const buildArgs = ['build', '--source', big, '--revision', rev, '--subdir', 'mozharness'];
    const [whole, cold] = timeInTurn(
      () => runProcess([BIN, ...buildArgs, '--out', out], tmp),
      () => runColdInProcess(big, out),
    );
    const warm = await timeInProcess(() =>
      buildArchive({
        source: { kind: 'dir', path: big },
        revision: rev,
        subdir: 'mozharness',
        policy: { allowRepos: [] },
        out,
      }),
    );
    console.log(
      `  build, 1,000 files / 10 MB        ${figures(whole)}   baseline buildArchive() in a fresh process ${figures(cold)}   ratio ${(whole.wallMs / cold.wallMs).toFixed(2)} (CPU ${(whole.cpuMs / cold.cpuMs).toFixed(2)})   (goal: <= 1.30)`,
    );
    console.log(
      `    for information: buildArchive() again and again in this warm process ${warm.toFixed(0)} ms   (whole process to it: ${(whole.wallMs / warm).toFixed(2)})`,
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
