// Benchmark of the decision task's generator on a synthetic 30,000-task graph (one archive task,
// 200 builds, the rest tests), phase by phase: parameters, load (full + target graph), optimize
// (a real batched lookup against the embedded Index over HTTP), resolve (task ids, definitions,
// limits), a dry-run submit (parents-first scheduling at concurrency 50 against an in-memory
// queue that answers at once, so what is measured is the decision task's own work, not the
// network) and writing the artifacts. Prints wall time, CPU time (of the whole process, GC
// threads included: on a shared machine it moves less than wall time) and peak RSS per phase, and
// compares the whole run with the reference figure for Firefox's Python decision task.
//
//   npx tsx bench/decision.ts                 (or: npm run bench -- decision)
//   BENCH_DECISION_TASKS=2000 npx tsx bench/decision.ts
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EMPTY_ACTIONS, writeDecisionArtifacts } from '../src/decision/artifacts.js';
import { ARCHIVE_KIND } from '../src/contract/index.js';
import {
  loadGraphConfig,
  type ArchiveKind,
  type DownstreamKind,
  type Kinds,
} from '../src/decision/config.js';
import type { HarnessDigest } from '../src/decision/digest.js';
import { graphToJson, loadFullGraph, selectTargetTasks } from '../src/decision/graph.js';
import { checkLimits } from '../src/decision/limits.js';
import { optimizeGraph } from '../src/decision/optimize.js';
import { dumpParameters, parametersFromFlags } from '../src/decision/parameters.js';
import { resolvedToJson, resolveTaskGraph } from '../src/decision/resolve.js';
import { runnableJobs } from '../src/decision/runnable.js';
import { submitTaskGraph } from '../src/decision/submit.js';
import { assignTaskIds, deterministicSlugid } from '../src/decision/taskids.js';
import { startEmbedded } from '../src/local/embedded.js';
import { fromNow, indexClient, queueClient, type QueueClient } from '../src/taskcluster/client.js';

/** Firefox's Python decision task: about 140 s for about 30,000 tasks (reported figure). */
export const REFERENCE = { name: "Firefox's Python decision task", seconds: 140, tasks: 30_000 };

/** What a Firefox-sized decision must stay within on the development machine. */
export const GOAL = { tasks: 30_000, totalMs: 4000, peakRssMiB: 600 };

export interface PhaseFigure {
  phase: string;
  ms: number;
  cpuMs: number;
  peakRssMiB: number;
}

export interface DecisionBenchResult {
  tasks: number;
  phases: PhaseFigure[];
  totalMs: number;
  msPerTask: number;
  referenceMsPerTask: number;
  /** How many times faster per task than the reference. */
  ratio: number;
}

export function syntheticKinds(tasks: number, builds: number): Kinds {
  const archive: ArchiveKind = {
    name: ARCHIVE_KIND,
    file: 'taskcluster/kinds/mozharness-archive/kind.yml',
    subdir: 'testing/mozharness',
    workerAlias: 'archive',
    description: 'archive',
    maxRunTime: 1800,
    treeherder: { symbol: 'MH', platform: 'mozharness', tier: 1 },
    test: { command: ['true'], env: {} },
  };
  const build: DownstreamKind = {
    name: 'build',
    file: 'taskcluster/kinds/build/kind.yml',
    kindDependencies: [ARCHIVE_KIND],
    tasks: [],
  };
  for (let i = 0; i < builds; i++) {
    build.tasks.push({
      name: `platform-${i}/opt`,
      description: `build ${i}`,
      dependencies: { mozharness: 'mozharness-archive' },
      workerAlias: 'b-linux',
      maxRunTime: 7200,
      runOnProjects: ['all'],
      env: {},
      treeherder: {
        symbol: 'B',
        platform: `platform-${i}`,
        kind: 'build',
        tier: 1,
        collection: 'opt',
      },
      mozharness: {
        script: 'scripts/fx_desktop_build.py',
        config: ['builds/base.py'],
        extraArgs: [],
      },
    });
  }
  const test: DownstreamKind = {
    name: 'test',
    file: 'taskcluster/kinds/test/kind.yml',
    kindDependencies: [ARCHIVE_KIND, 'build'],
    tasks: [],
  };
  for (let i = 0; i < tasks - 1 - builds; i++) {
    const b = i % builds;
    test.tasks.push({
      name: `platform-${b}/opt-suite-${i}`,
      description: `test ${i}`,
      dependencies: { mozharness: 'mozharness-archive', build: `build-platform-${b}/opt` },
      workerAlias: i % 5 === 0 ? 't-osx' : 't-linux',
      maxRunTime: 3600,
      runOnProjects: ['all'],
      env: {},
      treeherder: {
        symbol: `M(${i % 20})`,
        platform: `platform-${b}`,
        kind: 'test',
        tier: 1,
        collection: 'opt',
      },
      mozharness: {
        script: 'scripts/desktop_unittest.py',
        config: ['unittests/linux_unittest.py'],
        extraArgs: [`--this-chunk=${i}`],
      },
    });
  }
  return { archive, downstream: [build, test] };
}

async function phase<T>(
  figures: PhaseFigure[],
  name: string,
  fn: () => Promise<T> | T,
): Promise<T> {
  // rss() alone: memoryUsage() also walks every heap space, which costs the phase being timed
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  const start = performance.now();
  const cpu = process.cpuUsage();
  try {
    return await fn();
  } finally {
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage.rss());
    figures.push({
      phase: name,
      ms,
      cpuMs: (used.user + used.system) / 1000,
      peakRssMiB: peak / 2 ** 20,
    });
  }
}

export async function run(
  opts: { tasks?: number; builds?: number; print?: boolean } = {},
): Promise<DecisionBenchResult> {
  const tasks = opts.tasks ?? Number(process.env.BENCH_DECISION_TASKS ?? 30_000);
  const builds = opts.builds ?? Math.min(200, Math.max(1, Math.floor(tasks / 50)));
  const print = opts.print ?? true;
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-decision-'));
  const embedded = await startEmbedded({
    stateDir: path.join(stateDir, 'state'),
    s3: false,
    sweepIntervalMs: 0,
  });
  const figures: PhaseFigure[] = [];
  try {
    const index = indexClient({ rootUrl: embedded.rootUrl, credentials: embedded.credentials });
    const config = await loadGraphConfig(path.resolve('taskcluster'));
    const kinds = syntheticKinds(tasks, builds);
    const digest: HarnessDigest = {
      treeDigest: 'e3'.repeat(32),
      sha256: '5a'.repeat(32),
      size: 2_000_000,
      files: 1500,
      revision: 'f'.repeat(40),
      subdir: 'testing/mozharness',
      formatVersion: 1,
    };
    const params = await phase(figures, 'parameters', () =>
      parametersFromFlags({
        project: 'mozilla-central',
        level: '3',
        repository: 'https://hg.mozilla.org/mozilla-central',
        revision: 'f'.repeat(40),
        owner: 'ffxbld@mozilla.com',
        pushlogId: '1',
        pushdate: String(Math.floor(Date.now() / 1000)),
        taskId: deterministicSlugid('bench decision'),
        rootUrl: embedded.rootUrl,
      }),
    );
    const created = new Date();
    const { full, target } = await phase(figures, 'load', () => {
      const full = loadFullGraph(kinds);
      return { full, target: selectTargetTasks(full, params) };
    });
    const optimized = await phase(figures, 'optimize', () =>
      optimizeGraph(target, {
        config,
        params,
        digest,
        requiredUntil: fromNow(config.deadlineAfter, created),
        index,
        queue: queueClient({ rootUrl: embedded.rootUrl, credentials: embedded.credentials }),
      }),
    );
    const { resolved, labelToTaskId } = await phase(figures, 'resolve', () => {
      const labelToTaskId = assignTaskIds(target, params, optimized.replaced);
      const resolved = resolveTaskGraph(optimized.graph, {
        config,
        params,
        digest,
        labelToTaskId,
        replaced: optimized.replaced,
        created,
      });
      checkLimits(resolved, created);
      return { resolved, labelToTaskId };
    });
    await phase(figures, 'submit (dry run)', async () => {
      const seen = new Set<string>();
      // the queue's answer to a task that does not exist yet, made once: a real client's error
      // costs the network round trip it stands for, which is not what is measured here
      const notFound = Object.assign(new Error('not found'), { statusCode: 404 });
      const queue = {
        async task() {
          throw notFound;
        },
        async createTask(id: string) {
          seen.add(id);
          return {};
        },
      } as unknown as QueueClient;
      await submitTaskGraph(resolved, queue, { concurrency: 50 });
      if (seen.size !== resolved.order.length) throw new Error('not every task was submitted');
    });
    await phase(figures, 'artifacts', () =>
      writeDecisionArtifacts(path.join(stateDir, 'artifacts'), {
        'parameters.yml': dumpParameters(params),
        'full-task-graph.json': graphToJson(full),
        'target-tasks.json': target.order,
        'task-graph.json': resolvedToJson(resolved),
        'label-to-taskid.json': labelToTaskId,
        'optimizations.json': { records: optimized.records },
        'actions.json': EMPTY_ACTIONS,
        'runnable-jobs.json': runnableJobs(full, config),
      }),
    );
    const totalMs = figures.reduce((s, f) => s + f.ms, 0);
    const totalCpuMs = figures.reduce((s, f) => s + f.cpuMs, 0);
    const msPerTask = totalMs / resolved.order.length;
    const referenceMsPerTask = (REFERENCE.seconds * 1000) / REFERENCE.tasks;
    const result: DecisionBenchResult = {
      tasks: resolved.order.length,
      phases: figures,
      totalMs,
      msPerTask,
      referenceMsPerTask,
      ratio: referenceMsPerTask / msPerTask,
    };
    if (print) {
      console.log(
        `decision generator, ${result.tasks} tasks (${builds} builds), ${os.cpus().length} cpus, node ${process.version}`,
      );
      console.log('phase              wall ms    CPU ms   peak RSS MiB');
      for (const f of figures) {
        console.log(
          `${f.phase.padEnd(18)} ${f.ms.toFixed(1).padStart(8)}  ${f.cpuMs.toFixed(0).padStart(8)}   ${f.peakRssMiB.toFixed(1).padStart(8)}`,
        );
      }
      console.log(
        `total              ${totalMs.toFixed(1).padStart(8)}  ${totalCpuMs.toFixed(0).padStart(8)}   (${msPerTask.toFixed(3)} ms/task wall)`,
      );
      console.log(
        `baseline: ${REFERENCE.name}, ~${REFERENCE.seconds} s for ~${REFERENCE.tasks} tasks (${referenceMsPerTask.toFixed(3)} ms/task, reported figure, not measured here)`,
      );
      console.log(`ratio: ${result.ratio.toFixed(1)}× less time per task than the baseline`);
      const peak = Math.max(...figures.map((f) => f.peakRssMiB));
      console.log(
        `goal (30,000 tasks): total ≤ ${GOAL.totalMs / 1000} s: ${totalMs <= GOAL.totalMs ? 'met' : 'NOT met'} ` +
          `(${(totalMs / 1000).toFixed(2)} s); peak RSS ≤ ${GOAL.peakRssMiB} MiB: ` +
          `${peak <= GOAL.peakRssMiB ? 'met' : 'NOT met'} (${peak.toFixed(0)} MiB)`,
      );
    }
    return result;
  } finally {
    await embedded.close();
    await fs.rm(stateDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
