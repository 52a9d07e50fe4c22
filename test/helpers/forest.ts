// Helpers for tests of the local forest: a developer's clone that commits and pushes, and bounded
// polls for a push's tasks to settle.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startForest, type Forest } from '../../src/local/forest.js';
import { type PushLog, type PushRecord } from '../../src/local/pushes.js';
import { createSampleRepo, type Vcs } from '../../src/local/sample-repo.js';
import { listTaskGroup } from '../../src/taskcluster/listing.js';
import type { QueueClient } from '../../src/taskcluster/client.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

/** A whole push replays in minutes on a loaded machine. */
export const FOREST_WAIT = { timeoutMs: 240_000, intervalMs: 200 };

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Forest Developer',
  GIT_AUTHOR_EMAIL: 'forest@example.com',
  GIT_COMMITTER_NAME: 'Forest Developer',
  GIT_COMMITTER_EMAIL: 'forest@example.com',
};

/**
 * The forest of `local up --repo` on a fresh sample repository (this project's in-tree config) in
 * `tmp`: its state under tmp/state, pushes polled every 250 ms.
 */
export async function startSampleForest(
  tmp: string,
  vcs: Vcs,
  onEvent?: (line: string) => void,
): Promise<Forest> {
  const repo = await createSampleRepo(path.join(tmp, 'gecko'), vcs, path.resolve('.'));
  return startForest({
    stateDir: path.join(tmp, 'state'),
    projectRoot: path.resolve('.'),
    repo: repo.path,
    pollMs: 250,
    ...(onEvent ? { onEvent } : {}),
  });
}

/** A git clone of `url` in `dir` that commits file changes and pushes them back. */
export async function gitClone(url: string, dir: string) {
  await run('git', ['clone', '-q', url, dir], { env: GIT_ENV });
  return {
    dir,
    async commitAndPush(files: Record<string, string>, message: string): Promise<string> {
      for (const [rel, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
      }
      await run('git', ['-C', dir, 'add', '-A'], { env: GIT_ENV });
      await run('git', ['-C', dir, 'commit', '-q', '-m', message], { env: GIT_ENV });
      await run('git', ['-C', dir, 'push', '-q', 'origin', 'HEAD:main'], { env: GIT_ENV });
      const { stdout } = await run('git', ['-C', dir, 'rev-parse', 'HEAD']);
      return stdout.trim();
    },
  };
}

/** The push of `revision` once its decision task exists. */
export function pushOf(pushLog: PushLog, revision: string): Promise<PushRecord> {
  return waitFor(
    `the push of ${revision}`,
    () => pushLog.list().find((p) => p.revision === revision),
    FOREST_WAIT,
  );
}

/** Every task of a push's group, once the decision task and all it created are resolved. */
export function settled(queue: QueueClient, decisionTaskId: string, minTasks = 2) {
  return waitFor(
    `the tasks of ${decisionTaskId} to finish`,
    async () => {
      const tasks = await listTaskGroup(queue, decisionTaskId);
      const done = tasks.every(
        (t) => !['pending', 'running', 'unscheduled'].includes(t.status.state),
      );
      return tasks.length >= minTasks && done ? tasks : undefined;
    },
    FOREST_WAIT,
  );
}

/** Wait until no process mentions `stateDir` (a run's children may take a moment to go). */
export async function noProcessLeft(stateDir: string): Promise<void> {
  await waitFor(
    'no process still using the state directory',
    () => {
      const left = processesMentioning(stateDir);
      if (left.length === 0) return true;
      throw new Error(`still running: ${left.join('; ')}`);
    },
    { timeoutMs: 20_000 },
  );
}

/** Processes (other than this one) whose command line mentions `needle`. */
export function processesMentioning(needle: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(needle)) out.push(`${pid} ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
