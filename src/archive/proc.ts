// Running hg and git: fixed, plain environments and captured output.
import { spawn, type ChildProcess } from 'node:child_process';
import { ArchiveError } from '../util/errors.js';

export const HG_RUN_ENV = (): NodeJS.ProcessEnv => ({
  ...process.env,
  HGPLAIN: '1',
  HGENCODING: 'utf-8',
});

export const GIT_RUN_ENV = (): NodeJS.ProcessEnv => ({
  ...process.env,
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: '',
  GIT_ALLOW_PROTOCOL: 'http:https:file',
  LC_ALL: 'C',
});

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export function runCommand(
  cmd: string,
  args: string[],
  opts: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    signal?: AbortSignal;
    timeoutMs?: number;
    /** Written to the command's stdin (otherwise stdin is closed). */
    input?: string;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        cwd: opts.cwd,
        env: opts.env,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        signal: opts.signal,
      });
    } catch (e) {
      reject(e);
      return;
    }
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') {
        reject(new ArchiveError('unavailable', `${cmd} is not installed (needed for this source)`));
      } else reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code: timedOut ? 124 : (code ?? 1),
        stdout: Buffer.concat(out),
        stderr: timedOut ? `timed out after ${opts.timeoutMs} ms\n${stderr}` : stderr,
      });
    });
  });
}
