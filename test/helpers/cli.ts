// Run the `mozharness-archive` CLI from source in a child process, with exactly the environment
// given (callers decide what they inherit), and collect its exit code and output; or start one
// that keeps running and watch its output.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const run = startCli(args, env);
  return new Promise((resolve, reject) => {
    run.child.on('error', reject);
    run.child.on('close', (code) =>
      resolve({ code: code ?? -1, stdout: run.stdout, stderr: run.stderr }),
    );
  });
}

/** A CLI process that keeps running (local up, serve, a worker): its output so far and its exit. */
export interface RunningCli {
  child: ChildProcessByStdio<null, Readable, Readable>;
  readonly stdout: string;
  readonly stderr: string;
  /** The exit code (null when a signal ended it). */
  exited: Promise<number | null>;
}

/** Start the CLI from source in the background, with `env` (default: this process's). */
export function startCli(args: string[], env: NodeJS.ProcessEnv = process.env): RunningCli {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
  };
}
