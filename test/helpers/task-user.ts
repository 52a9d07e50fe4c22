// The unprivileged user the worker runs test commands as. Tests running as root (CI) create it
// when it is missing; elsewhere the worker cannot switch users, and tests say so and adapt.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export const TASK_USER = 'mozharness-test';

export const isRoot = process.getuid?.() === 0;

let ensured: boolean | undefined;

/** Create the task user if missing (root only). True when test commands can run as it. */
export function ensureTaskUser(): boolean {
  if (ensured !== undefined) return ensured;
  if (!isRoot) return (ensured = false);
  try {
    execFileSync('id', ['-u', TASK_USER], { stdio: 'ignore' });
  } catch {
    execFileSync(
      'useradd',
      ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TASK_USER],
      { stdio: 'ignore' },
    );
  }
  return (ensured = true);
}

/** Worker config keys for test commands: the task user under root, best-effort otherwise. */
export function testIsolationConfig(): Record<string, unknown> {
  return ensureTaskUser()
    ? { taskUser: TASK_USER, testIsolation: 'required' }
    : { testIsolation: 'best-effort' };
}

/**
 * Host pids of the processes whose environment holds `name=value` (a test command in its own pid
 * namespace sees other pids than the host, so tests find their processes this way).
 */
export function processesWithEnv(name: string, value: string): number[] {
  const want = `${name}=${value}`;
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const vars = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (vars.includes(want)) out.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
