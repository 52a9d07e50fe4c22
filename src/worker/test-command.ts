// The payload's `test` command: a child process in a temporary copy of the unpacked tree, with a
// scrubbed environment (the payload's env plus PATH/HOME/LANG/TMPDIR basics: never a worker, S3 or
// Taskcluster credential), a time limit, and its output streamed line by line into the task log.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { TaskLog } from './task-log.js';

export interface TestRun {
  command: string[];
  cwd: string;
  /** Private directory for HOME and TMPDIR. */
  scratch: string;
  env?: Record<string, string>;
  timeoutMs: number;
  log: TaskLog;
  signal?: AbortSignal;
}

export interface TestOutcome {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** Why it failed, for the task log and the resolution message. */
  reason?: string;
}

const BASIC_PATH = '/usr/local/bin:/usr/bin:/bin';

/** The child's whole environment: nothing inherited except PATH and LANG. */
export function testEnvironment(
  payloadEnv: Record<string, string> | undefined,
  scratch: string,
  parent: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const home = path.join(scratch, 'home');
  const tmp = path.join(scratch, 'tmp');
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(tmp, { recursive: true });
  return {
    PATH: parent.PATH || BASIC_PATH,
    HOME: home,
    TMPDIR: tmp,
    LANG: parent.LANG || 'C.UTF-8',
    ...(payloadEnv ?? {}),
  };
}

export async function runTestCommand(run: TestRun): Promise<TestOutcome> {
  const [program, ...args] = run.command;
  const env = testEnvironment(run.env, run.scratch);
  run.log.info('test-start', { command: run.command, cwd: run.cwd, timeoutMs: run.timeoutMs });
  const child = spawn(program!, args, {
    cwd: run.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so a time-out kills everything it started
  });
  let timedOut = false;
  let aborted = false;
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    run.log.warn('test-timeout', { timeoutMs: run.timeoutMs });
    killGroup();
  }, run.timeoutMs);
  const onAbort = () => {
    aborted = true;
    killGroup();
  };
  run.signal?.addEventListener('abort', onAbort, { once: true });
  const pump = (stream: NodeJS.ReadableStream, which: 'stdout' | 'stderr') =>
    new Promise<void>((resolve) => {
      const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', (line) => run.log.output(which, line));
      rl.on('close', resolve);
    });
  const outputs = Promise.all([pump(child.stdout!, 'stdout'), pump(child.stderr!, 'stderr')]);
  const result = await new Promise<{
    code: number | null;
    sig: NodeJS.Signals | null;
    err?: Error;
  }>((resolve) => {
    child.once('error', (err) => resolve({ code: null, sig: null, err }));
    child.once('exit', (code, sig) => resolve({ code, sig }));
  });
  clearTimeout(timer);
  run.signal?.removeEventListener('abort', onAbort);
  killGroup(); // leftovers of the group (background processes) do not outlive the test
  await Promise.race([outputs, new Promise((r) => setTimeout(r, 2000))]);
  const outcome: TestOutcome = {
    ok: !result.err && result.code === 0 && !timedOut && !aborted,
    exitCode: result.code,
    signal: result.sig,
    timedOut,
    aborted,
  };
  if (result.err) outcome.reason = `test command could not start: ${result.err.message}`;
  else if (timedOut)
    outcome.reason = `test command exceeded its time limit of ${run.timeoutMs / 1000} s`;
  else if (aborted) outcome.reason = 'test command was stopped';
  else if (result.code !== 0)
    outcome.reason =
      result.code === null
        ? `test command was killed by ${result.sig}`
        : `test command exited with status ${result.code}`;
  run.log.info('test-end', {
    ok: outcome.ok,
    exitCode: result.code,
    signal: result.sig,
    reason: outcome.reason,
  });
  return outcome;
}
