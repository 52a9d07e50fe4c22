// Benchmark of the archive worker, end to end over real HTTP: the embedded services, s3rver and
// `hg serve` of a repository whose harness has ~400 files. 50 archive tasks (50 distinct
// revisions) go through one worker at capacity 1, then again at capacity 4 (fresh S3 prefix, so
// every task really uploads). Printed: tasks per minute, median claim-to-resolved time, and the
// worker's own overhead = claim-to-resolved minus fetch+pack (build step) and upload.
// Baseline (same script, same revisions): `buildArchive` + `ArchiveStore.put` in a plain loop,
// no Taskcluster at all; the ratio says what the worker adds.
//
//   npx tsx bench/worker.ts          (or: npm run bench -- worker)
//   BENCH_WORKER_TASKS=10 npx tsx bench/worker.ts   (a quicker run)
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { buildArchive, parseSource } from '../src/archive/index.js';
import { ArchiveStore } from '../src/storage/index.js';
import {
  runWorker,
  S3TaskLogStore,
  workerS3Client,
  type TaskResult,
  type WorkerS3Settings,
} from '../src/worker/index.js';
import { hg, hgCommit, type SampleRepo } from '../test/helpers/repos.js';
import { startWorkerEnv, type WorkerEnv } from '../test/helpers/worker-env.js';

const SUBDIR = 'testing/mozharness';

/** A repository whose harness has `files` files (~2 KB each) in nested directories. */
async function createHarnessRepo(
  dir: string,
  files: number,
  revisions: number,
): Promise<SampleRepo> {
  fs.mkdirSync(dir, { recursive: true });
  await hg(dir, 'init');
  for (let i = 0; i < files; i++) {
    const rel = path.join(SUBDIR, `mozharness/pkg${i % 12}/sub${i % 5}/module_${i}.py`);
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(
      path.join(dir, rel),
      `# module ${i}\n` + `def f_${i}(x):\n    return x * ${i}\n`.repeat(40),
    );
  }
  fs.mkdirSync(path.join(dir, 'browser'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'browser/app.js'), 'console.log(1);\n');
  const out: string[] = [];
  await hg(dir, 'addremove', '-q');
  await hg(dir, 'commit', '-q', '-m', 'harness', '-d', '0 0');
  out.push((await hg(dir, 'log', '-r', '.', '-T', '{node}')).trim());
  for (let r = 1; r < revisions; r++) {
    out.push(
      await hgCommit(dir, { [`${SUBDIR}/configs/revision.py`]: `revision = ${r}\n` }, `push ${r}`),
    );
  }
  return { path: dir, revisions: out };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface RunFigures {
  label: string;
  tasks: number;
  wallSeconds: number;
  tasksPerMinute: number;
  medianClaimToResolved: number;
  medianFetchPack: number;
  medianUpload: number;
  medianOverhead: number;
}

async function runCapacity(env: WorkerEnv, capacity: number, tasks: number): Promise<RunFigures> {
  const queue = `bench-c${capacity}`;
  const s3: WorkerS3Settings = { ...env.s3Settings, prefix: `bench-c${capacity}-${Date.now()}` };
  for (let i = 0; i < tasks; i++) {
    await env.createTask(queue, {
      repository: env.hg.url,
      revision: env.repo.revisions[i % env.repo.revisions.length],
    });
  }
  const results: TaskResult[] = [];
  const stop = new AbortController();
  const t0 = Date.now();
  const done = runWorker(env.config(queue, { capacity, s3 }), {
    ...env.deps(),
    store: new ArchiveStore(env.s3.client(), s3),
    logs: new S3TaskLogStore(workerS3Client(s3), s3),
    log: undefined,
    signal: stop.signal,
    onTaskResolved: (r) => {
      results.push(r);
      if (results.length >= tasks) stop.abort();
    },
  });
  await done;
  const wall = (Date.now() - t0) / 1000;
  const bad = results.filter((r) => r.resolution.state !== 'completed');
  if (bad.length)
    throw new Error(`${bad.length} tasks did not complete: ${JSON.stringify(bad[0])}`);
  const total = results.map((r) => (Date.parse(r.finishedAt!) - Date.parse(r.startedAt)) / 1000);
  const build = results.map((r) => r.timings.build ?? 0);
  const upload = results.map((r) => r.timings.upload ?? 0);
  const overhead = results.map((_, i) => total[i]! - build[i]! - upload[i]!);
  return {
    label: `worker, capacity ${capacity}`,
    tasks,
    wallSeconds: wall,
    tasksPerMinute: (tasks / wall) * 60,
    medianClaimToResolved: median(total),
    medianFetchPack: median(build),
    medianUpload: median(upload),
    medianOverhead: median(overhead),
  };
}

async function runBaseline(env: WorkerEnv, tasks: number): Promise<RunFigures> {
  const s3: WorkerS3Settings = { ...env.s3Settings, prefix: `bench-baseline-${Date.now()}` };
  const store = new ArchiveStore(env.s3.client(), s3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-worker-baseline-'));
  const totals: number[] = [];
  const builds: number[] = [];
  const uploads: number[] = [];
  const t0 = Date.now();
  try {
    for (let i = 0; i < tasks; i++) {
      const revision = env.repo.revisions[i % env.repo.revisions.length]!;
      const a = Date.now();
      const out = path.join(dir, `${i}.tar.gz`);
      const r = await buildArchive({
        source: parseSource(env.hg.url),
        revision,
        subdir: SUBDIR,
        policy: { allowRepos: [env.hg.url] },
        out,
      });
      const b = Date.now();
      await store.put(out, { ...r, repository: env.hg.url, createdAt: new Date().toISOString() });
      const c = Date.now();
      builds.push((b - a) / 1000);
      uploads.push((c - b) / 1000);
      totals.push((c - a) / 1000);
      fs.rmSync(out, { force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const wall = (Date.now() - t0) / 1000;
  return {
    label: 'baseline: buildArchive + ArchiveStore.put loop',
    tasks,
    wallSeconds: wall,
    tasksPerMinute: (tasks / wall) * 60,
    medianClaimToResolved: median(totals),
    medianFetchPack: median(builds),
    medianUpload: median(uploads),
    medianOverhead: 0,
  };
}

export async function run(opts: { tasks?: number; files?: number } = {}): Promise<RunFigures[]> {
  const tasks = opts.tasks ?? Number(process.env.BENCH_WORKER_TASKS ?? 50);
  const files = opts.files ?? 400;
  const env = await startWorkerEnv({
    claimWorkPollMs: 1000,
    createRepo: (dir) => createHarnessRepo(dir, files, tasks),
  });
  try {
    // warm-up: the first fetch from hg serve and the first upload pay one-time costs
    await buildArchive({
      source: parseSource(env.hg.url),
      revision: env.repo.revisions[0]!,
      subdir: SUBDIR,
      policy: { allowRepos: [env.hg.url] },
    });
    const figures = [
      await runBaseline(env, tasks),
      await runCapacity(env, 1, tasks),
      await runCapacity(env, 4, tasks),
    ];
    const base = figures[0]!;
    console.log(
      `${tasks} archive tasks, harness of ${files} files, ${os.cpus().length} cpus ` +
        `(embedded services + s3rver + hg serve on loopback)`,
    );
    for (const f of figures) {
      console.log(
        `${f.label.padEnd(48)} ${f.tasksPerMinute.toFixed(1).padStart(7)} tasks/min  ` +
          `median claim→resolved ${(f.medianClaimToResolved * 1000).toFixed(0)} ms ` +
          `(fetch+pack ${(f.medianFetchPack * 1000).toFixed(0)} ms, upload ${(f.medianUpload * 1000).toFixed(0)} ms, ` +
          `worker overhead ${(f.medianOverhead * 1000).toFixed(0)} ms)  ` +
          `ratio vs baseline ${(f.tasksPerMinute / base.tasksPerMinute).toFixed(2)}x`,
      );
    }
    return figures;
  } finally {
    await env.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
