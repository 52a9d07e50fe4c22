// Local stand-ins for the workers a real deployment runs, for `npm start` (local run): each takes
// one claimed run and resolves it through the same Queue API, with the run's own temporary
// credentials, the way the real worker would.
//   - decision tasks: check out the pushed revision and run the decision generator in-process;
//   - docker-worker payloads: run `payload.command` in a scratch directory with a scrubbed
//     environment (no Docker here: the "image" is this project's taskcluster/scripts);
//   - generic-worker payloads: fetch and verify each `mounts` archive, unpack it, run `command`.
// Everything a task writes to its `public/` directory is published as `reference` artifacts in
// the embedded S3 bucket, and its log as `public/logs/live_backing.log`.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runDecision } from '../decision/decision.js';
import { mergeFlagsWithEnv, parametersFromFlags } from '../decision/parameters.js';
import { downloadAndUnpack } from '../storage/fetch-archive.js';
import {
  indexClient,
  queueClient,
  type Credentials,
  type QueueClient,
} from '../taskcluster/client.js';
import type { ClaimedTask } from '../taskcluster/types.js';
import { errorMessage } from '../util/errors.js';
import { createLogger, type Logger } from '../util/log.js';
import { publishDirectory, type ArtifactPublisher } from './publish.js';

const run = promisify(execFile);

export interface RunnerContext {
  rootUrl: string;
  publish: ArtifactPublisher;
  /** Prefix of S3 keys for task artifacts (default `tasks`). */
  keyPrefix?: string;
  log: Logger;
  /** Aborting it kills a running task command (Ctrl-C of `local run`). */
  signal?: AbortSignal;
  /** Called with each line of a task's log as it is written (a live log). */
  onLogLine?: (taskId: string, line: string) => void;
}

export interface LocalRunOutcome {
  taskId: string;
  runId: number;
  label: string;
  state: 'completed' | 'failed' | 'exception';
  reason?: string;
  /** The last lines of the task log (shown when a task fails). */
  logTail: string[];
  ms: number;
}

/** A task log kept in memory and written to `public/logs/live_backing.log` at the end. */
class TaskLog {
  readonly lines: string[] = [];
  constructor(private readonly onLine: (line: string) => void = () => {}) {}
  private push(line: string): void {
    this.lines.push(line);
    this.onLine(line);
  }
  add(text: string): void {
    for (const line of text.split('\n')) {
      if (line.length) this.push(`[${new Date().toISOString()}] ${line}`);
    }
  }
  logger(fields: Record<string, unknown>): Logger {
    return createLogger({ json: false, write: (l) => this.push(l), fields });
  }
  tail(n = 25): string[] {
    return this.lines.slice(-n);
  }
}

/**
 * Resolve a run: publish `public/` (and the log), then report completed/failed. Returns the
 * outcome; a crash of the runner itself becomes exception/internal-error.
 */
async function execute(
  claim: ClaimedTask,
  ctx: RunnerContext,
  body: (work: {
    queue: QueueClient;
    credentials: Credentials;
    dir: string;
    publicDir: string;
    log: TaskLog;
  }) => Promise<boolean>,
): Promise<LocalRunOutcome> {
  const start = Date.now();
  const taskId = claim.status.taskId;
  const credentials: Credentials = claim.credentials;
  const queue = queueClient({ rootUrl: ctx.rootUrl, credentials });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `mha-task-${taskId}-`));
  const publicDir = path.join(dir, 'public');
  await fs.mkdir(publicDir, { recursive: true });
  const onLogLine = ctx.onLogLine;
  const log = new TaskLog(onLogLine ? (line) => onLogLine(taskId, line) : undefined);
  const label = claim.task.metadata.name;
  log.add(`task ${taskId} run ${claim.runId}: ${label}`);
  let ok = false;
  let reason: string | undefined;
  try {
    ok = await body({ queue, credentials, dir, publicDir, log });
  } catch (e) {
    reason = errorMessage(e);
    log.add(`error: ${reason}`);
  }
  const outcome: LocalRunOutcome = {
    taskId,
    runId: claim.runId,
    label,
    state: ok ? 'completed' : 'failed',
    ...(reason ? { reason } : {}),
    logTail: log.tail(),
    ms: 0,
  };
  try {
    log.add(`resolving as ${outcome.state}`);
    await fs.mkdir(path.join(publicDir, 'logs'), { recursive: true });
    await fs.writeFile(
      path.join(publicDir, 'logs', 'live_backing.log'),
      log.lines.join('\n') + '\n',
    );
    await publishDirectory(queue, claim, publicDir, ctx);
    if (ok) await queue.reportCompleted(taskId, claim.runId);
    else await queue.reportFailed(taskId, claim.runId);
  } catch (e) {
    outcome.state = 'exception';
    outcome.reason = `could not publish or resolve: ${errorMessage(e)}`;
    await queue.reportException(taskId, claim.runId, { reason: 'internal-error' }).catch(() => {});
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  outcome.ms = Date.now() - start;
  ctx.log.info('local-task-resolved', { taskId, label, state: outcome.state, ms: outcome.ms });
  return outcome;
}

/** Check out `revision` of a local hg or git repository into `dest`, as the decision task does. */
export async function checkoutRevision(
  repo: { path: string; vcs: 'hg' | 'git' },
  revision: string,
  dest: string,
): Promise<void> {
  if (repo.vcs === 'hg') {
    await run('hg', ['clone', '--quiet', '--noupdate', repo.path, dest]);
    await run('hg', ['--cwd', dest, 'update', '--quiet', '--clean', '--rev', revision]);
  } else {
    await run('git', ['clone', '--quiet', '--no-checkout', repo.path, dest]);
    await run('git', ['-C', dest, 'checkout', '--quiet', '--detach', revision]);
  }
}

/** Run a decision task in-process: its env carries the push parameters (.taskcluster.yml). */
export function runDecisionClaim(
  claim: ClaimedTask,
  ctx: RunnerContext & { repo: { path: string; vcs: 'hg' | 'git' } },
): Promise<LocalRunOutcome> {
  return execute(claim, ctx, async ({ credentials, dir, publicDir, log }) => {
    const env = (claim.task.payload.env ?? {}) as Record<string, string>;
    const params = parametersFromFlags(mergeFlagsWithEnv({ rootUrl: ctx.rootUrl }, env));
    const checkout = path.join(dir, 'checkout');
    log.add(`checking out ${params.head_rev} of ${params.head_repository}`);
    await checkoutRevision(ctx.repo, params.head_rev, checkout);
    const result = await runDecision({
      params,
      root: path.join(checkout, 'taskcluster'),
      checkout,
      queue: queueClient({ rootUrl: ctx.rootUrl, credentials }),
      index: indexClient({ rootUrl: ctx.rootUrl, credentials }),
      dryRun: false,
      out: publicDir,
      log: log.logger({ taskId: claim.status.taskId }),
    });
    const created = result.submitted?.created.length ?? 0;
    const existing = result.submitted?.existing.length ?? 0;
    log.add(`submitted ${created} tasks (${existing} already existed)`);
    return true;
  });
}

/** The environment a task command gets: only its payload env and a few basics; no credentials. */
export function scrubbedEnv(
  payloadEnv: Record<string, string>,
  extra: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    ...extra,
  };
  for (const [k, v] of Object.entries(payloadEnv)) env[k] = String(v);
  return env;
}

function runCommand(
  argv: string[],
  opts: {
    cwd: string;
    env: Record<string, string>;
    maxRunTime: number;
    log: TaskLog;
    signal?: AbortSignal;
  },
): Promise<number> {
  return new Promise((resolve) => {
    opts.log.add(`+ ${argv.join(' ')}`);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => {
      opts.log.add(`maxRunTime of ${opts.maxRunTime}s exceeded; killing the command`);
      child.kill('SIGKILL');
    }, opts.maxRunTime * 1000);
    const interrupt = () => {
      opts.log.add('interrupted; killing the command');
      child.kill('SIGKILL');
    };
    opts.signal?.addEventListener('abort', interrupt, { once: true });
    child.on('exit', () => opts.signal?.removeEventListener('abort', interrupt));
    child.stdout.on('data', (d: Buffer) => opts.log.add(d.toString()));
    child.stderr.on('data', (d: Buffer) => opts.log.add(d.toString()));
    child.on('error', (e) => {
      opts.log.add(`could not start ${argv[0]}: ${e.message}`);
      clearTimeout(timer);
      resolve(127);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      opts.log.add(`exit code ${code ?? 'signal'}`);
      resolve(code ?? 1);
    });
  });
}

/**
 * Run a docker-worker payload without Docker: the command runs in a scratch directory that holds
 * what the image would (this project's `taskcluster/scripts/`), with the payload env only.
 */
export function runDockerWorkerClaim(
  claim: ClaimedTask,
  ctx: RunnerContext & { scriptsDir: string },
): Promise<LocalRunOutcome> {
  return execute(claim, ctx, async ({ dir, log }) => {
    const payload = claim.task.payload as {
      command: string[];
      env?: Record<string, string>;
      maxRunTime: number;
    };
    const work = path.join(dir, 'work');
    await fs.mkdir(path.join(work, 'taskcluster'), { recursive: true });
    await fs.cp(ctx.scriptsDir, path.join(work, 'taskcluster', 'scripts'), { recursive: true });
    const env = scrubbedEnv(payload.env ?? {}, {
      HOME: work,
      TASK_ID: claim.status.taskId,
      RUN_ID: String(claim.runId),
      TASKCLUSTER_ROOT_URL: ctx.rootUrl,
    });
    const code = await runCommand(payload.command, {
      cwd: work,
      env,
      maxRunTime: payload.maxRunTime,
      log,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    return code === 0;
  });
}

/** Run a generic-worker payload: verified `mounts` first, then each command in turn. */
export function runGenericWorkerClaim(
  claim: ClaimedTask,
  ctx: RunnerContext,
): Promise<LocalRunOutcome> {
  return execute(claim, ctx, async ({ queue, dir, log }) => {
    const payload = claim.task.payload as {
      command: string[][];
      env?: Record<string, string>;
      maxRunTime: number;
      mounts?: Array<{
        directory: string;
        format: string;
        content: { taskId: string; artifact: string; sha256?: string };
      }>;
    };
    const work = path.join(dir, 'work');
    await fs.mkdir(work, { recursive: true });
    for (const m of payload.mounts ?? []) {
      const url = queue.buildUrl(queue.getLatestArtifact, m.content.taskId, m.content.artifact);
      log.add(`mounting ${m.content.artifact} of ${m.content.taskId} at ${m.directory}`);
      // the same safe unpack as fetch and deploy, in the mount's declared format
      await downloadAndUnpack(url, path.join(work, m.directory), {
        format: m.format,
        ...(m.content.sha256 ? { sha256: m.content.sha256 } : {}),
      });
      log.add(`verified sha256 ${m.content.sha256 ?? '(none given)'} and unpacked`);
    }
    const env = scrubbedEnv(payload.env ?? {}, {
      HOME: work,
      TASK_ID: claim.status.taskId,
      RUN_ID: String(claim.runId),
      TASKCLUSTER_ROOT_URL: ctx.rootUrl,
    });
    for (const argv of payload.command) {
      const code = await runCommand(argv, {
        cwd: work,
        env,
        maxRunTime: payload.maxRunTime,
        log,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      if (code !== 0) return false;
    }
    return true;
  });
}
