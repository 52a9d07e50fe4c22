// Benchmark of the embedded Queue, in-process over real HTTP with the real taskcluster-client:
//   - createTask throughput: 10,000 tasks at concurrency 50;
//   - claimWork → reportCompleted round trips per second (50 workers, each with its run's
//     temporary credentials);
//   - for reference, createTaskAs in-process (the queue's own share of a createTask);
// against a baseline of raw unauthenticated `GET /api/queue/v1/ping` requests at the same
// concurrency, printed as a ratio, with the machine's core count beside the figures.
//
//   npx tsx bench/queue.ts            (or: npm run bench -- queue)
//   BENCH_QUEUE_TASKS=2000 npx tsx bench/queue.ts   (a quicker run)
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startEmbedded } from '../src/local/embedded.js';
import { queueClient, slugid } from '../src/taskcluster/client.js';
import type { TaskDefinition } from '../src/taskcluster/types.js';

export interface QueueBenchOptions {
  /** Tasks created in the createTask run (default 10,000). */
  tasks?: number;
  /** Round trips in the claimWork → reportCompleted run (default 2,000). */
  roundTrips?: number;
  concurrency?: number;
}

export interface QueueBenchResult {
  cpus: number;
  pingPerSec: number;
  createTaskPerSec: number;
  roundTripsPerSec: number;
  /** createTaskAs without HTTP: the queue's own cost. */
  coreCreatePerSec: number;
}

async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        await fn(i);
      }
    }),
  );
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function taskDef(taskQueueId: string): TaskDefinition {
  const now = Date.now();
  return {
    taskQueueId,
    created: new Date(now).toISOString(),
    deadline: new Date(now + 3600_000).toISOString(),
    routes: ['index.bench.queue.latest'],
    payload: { revision: 'a'.repeat(40), subdir: 'testing/mozharness' },
    metadata: {
      name: 'bench task',
      description: 'embedded queue benchmark',
      owner: 'bench@example.com',
      source: 'https://example.com/bench',
    },
  };
}

const fmt = (n: number) => n.toFixed(0).padStart(7);

export async function run(opts: QueueBenchOptions = {}): Promise<QueueBenchResult> {
  const tasks = opts.tasks ?? Number(process.env.BENCH_QUEUE_TASKS ?? 10_000);
  const roundTrips = opts.roundTrips ?? Math.min(2_000, tasks);
  const concurrency = opts.concurrency ?? 50;
  const cpus = os.cpus().length;
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mha-bench-queue-'));
  const e = await startEmbedded({ stateDir, s3: false, sweepIntervalMs: 0, claimWorkPollMs: 100 });
  try {
    const queue = queueClient({ rootUrl: e.rootUrl, credentials: e.credentials, retries: 0 });
    const pingUrl = `${e.rootUrl}/api/queue/v1/ping`;

    // the baseline: raw keep-alive HTTP GETs of the unauthenticated ping end point
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const ping = () =>
      new Promise<void>((resolve, reject) => {
        http
          .get(pingUrl, { agent }, (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`ping: ${res.statusCode}`)),
            );
          })
          .on('error', reject);
      });

    // warm up (JIT, statement caches, sockets)
    await pool(500, concurrency, ping);
    await pool(200, concurrency, async () => {
      await queue.createTask(slugid(), taskDef('bench/warm-up'));
    });

    const pingSec = await timed(() => pool(tasks, concurrency, ping));
    const pingPerSec = tasks / pingSec;

    const createSec = await timed(() =>
      pool(tasks, concurrency, async () => {
        await queue.createTask(slugid(), taskDef('bench/create'));
      }),
    );
    const createTaskPerSec = tasks / createSec;

    // the queue's own share: createTaskAs in-process, no HTTP, no Hawk, no client
    const coreSec = await timed(async () => {
      for (let i = 0; i < tasks; i++) e.queue.createTaskAs(slugid(), taskDef('bench/core'), ['*']);
    });
    const coreCreatePerSec = tasks / coreSec;

    // round trips: a fresh queue of pending tasks, drained by `concurrency` workers
    await pool(roundTrips, concurrency, async () => {
      await queue.createTask(slugid(), taskDef('bench/round-trip'));
    });
    let done = 0;
    const rtSec = await timed(() =>
      pool(concurrency, concurrency, async (w) => {
        while (done < roundTrips) {
          const claim = await queue.claimWork('bench/round-trip', {
            workerGroup: 'bench',
            workerId: `w${w}`,
            tasks: 1,
          });
          for (const t of claim.tasks) {
            const asRun = queueClient({
              rootUrl: e.rootUrl,
              credentials: t.credentials,
              retries: 0,
            });
            await asRun.reportCompleted(t.status.taskId, t.runId);
            done++;
          }
        }
      }),
    );
    const roundTripsPerSec = roundTrips / rtSec;
    agent.destroy();

    console.log(`cpus: ${cpus} (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}`);
    console.log(
      `baseline  raw GET /api/queue/v1/ping (node:http keep-alive) c=${concurrency}: ${fmt(pingPerSec)} req/s ` +
        `(${tasks} in ${pingSec.toFixed(2)} s)`,
    );
    console.log(
      `createTask (taskcluster-client, Hawk) c=${concurrency}: ${fmt(createTaskPerSec)} tasks/s ` +
        `(${tasks} in ${createSec.toFixed(2)} s) = ${(createTaskPerSec / pingPerSec).toFixed(3)}× baseline`,
    );
    console.log(
      `createTaskAs in-process (no HTTP), serial:  ${fmt(coreCreatePerSec)} tasks/s ` +
        `(${tasks} in ${coreSec.toFixed(2)} s) = ${(coreCreatePerSec / pingPerSec).toFixed(3)}× baseline`,
    );
    console.log(
      `claimWork → reportCompleted  ${concurrency} workers: ${fmt(roundTripsPerSec)} round trips/s ` +
        `(${roundTrips} in ${rtSec.toFixed(2)} s) = ${(roundTripsPerSec / pingPerSec).toFixed(3)}× baseline`,
    );
    return { cpus, pingPerSec, createTaskPerSec, roundTripsPerSec, coreCreatePerSec };
  } finally {
    await e.close();
    await fs.rm(stateDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
