// The payload's `test` command is code a push controls. It runs:
//   - as the worker's unprivileged task user (`taskUser`), never as the worker's own uid, so it can
//     read neither /proc/<worker pid>/environ nor the worker's configuration and credential files;
//   - without network, in new network (and, where possible, pid and mount) namespaces
//     (`unshare --net`), so it cannot reach a service, loopback included;
//   - in a scratch directory the task user owns (HOME and TMPDIR inside it), under a time limit,
//     with a scrubbed environment (the payload's env plus PATH/HOME/LANG/TMPDIR basics);
// and its output is streamed line by line into the task log.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as wait } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ArchiveError } from '../util/errors.js';
import type { TaskLog } from './task-log.js';

const execFileP = promisify(execFile);

export interface TaskUser {
  name: string;
  uid: number;
  gid: number;
}

/** How a test command is confined on this machine (what is missing is said in `missing`). */
export interface Isolation {
  /** The user the command runs as; undefined: the worker's own user (only with best-effort). */
  user?: TaskUser;
  /** `unshare` arguments that give the command no network (empty when the kernel refuses). */
  unshare: string[];
  /** What could not be set up, one sentence each, for the task log. */
  missing: string[];
}

export type IsolationMode = 'required' | 'best-effort';

/** The uid and gid of a local user, or undefined when there is no such user. */
export async function lookupUser(name: string): Promise<TaskUser | undefined> {
  try {
    const [u, g] = await Promise.all([
      execFileP('id', ['-u', '--', name]),
      execFileP('id', ['-g', '--', name]),
    ]);
    return { name, uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  } catch {
    return undefined;
  }
}

let namespaceProbe: Promise<string[]> | undefined;

/**
 * The strongest `unshare` this kernel allows: network + pid + mount namespaces (the command sees
 * no other process and everything it started dies with it), else network only, else none.
 */
export function networkNamespaceArgs(): Promise<string[]> {
  namespaceProbe ??= (async () => {
    for (const args of [['--net', '--pid', '--fork', '--kill-child', '--mount-proc'], ['--net']]) {
      try {
        await execFileP('unshare', [...args, '--', 'true'], { timeout: 10_000 });
        return args;
      } catch {
        // not allowed here: try the next, weaker one
      }
    }
    return [];
  })();
  return namespaceProbe;
}

/**
 * Decide how test commands run here. `required` (the default) refuses, naming the fix, when the
 * command cannot run as `taskUser`; `best-effort` (local development) runs it as the worker's own
 * user then. Missing network isolation is never fatal; it is said in `missing`.
 */
export async function resolveIsolation(taskUser: string, mode: IsolationMode): Promise<Isolation> {
  const missing: string[] = [];
  let user: TaskUser | undefined;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) {
    const why =
      `the worker is not running as root, so the test command cannot be run as the task user ` +
      `${JSON.stringify(taskUser)}`;
    if (mode === 'required') {
      throw new ArchiveError(
        'invalid-config',
        `${why}; run the worker as root (it drops to ${taskUser} for the test command), ` +
          `or set testIsolation: best-effort for local development`,
      );
    }
    missing.push(`${why}: it runs as the worker's own user and could read its credentials`);
  } else {
    user = await lookupUser(taskUser);
    if (!user) {
      const why = `the task user ${JSON.stringify(taskUser)} does not exist`;
      if (mode === 'required') {
        throw new ArchiveError(
          'invalid-config',
          `${why}; create it (useradd --system --no-create-home --shell /usr/sbin/nologin ` +
            `${taskUser}) or set taskUser to an existing unprivileged user`,
        );
      }
      missing.push(`${why}: the test command runs as the worker's own user`);
    } else if (user.uid === 0) {
      throw new ArchiveError(
        'invalid-config',
        `taskUser ${JSON.stringify(taskUser)} is root; it must be an unprivileged user`,
      );
    }
  }
  const unshare = isRoot ? await networkNamespaceArgs() : [];
  if (!unshare.length) {
    missing.push(
      isRoot
        ? 'the kernel refused new network namespaces (unshare --net): the test command has network'
        : 'network namespaces need root here: the test command has network',
    );
  }
  return { user, unshare, missing };
}

/** Give the whole scratch tree to the task user (links themselves, never their targets). */
export async function chownTree(dir: string, user: TaskUser): Promise<void> {
  await fs.promises.lchown(dir, user.uid, user.gid);
  for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, user);
    else await fs.promises.lchown(p, user.uid, user.gid);
  }
}

export interface TestRun {
  command: string[];
  cwd: string;
  /** How to confine it (default: not at all, for callers that vouch for the command). */
  isolation?: Isolation;
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

interface SpawnPlan {
  file: string;
  argv: string[];
  options: Parameters<typeof spawn>[2];
}

/** How to spawn the command of `run` with environment `env`, confined as its isolation says. */
function spawnPlan(run: TestRun, env: Record<string, string>): SpawnPlan {
  const [program, ...args] = run.command;
  const iso = run.isolation;
  const options: SpawnPlan['options'] = {
    cwd: run.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so a time-out kills everything it started
  };
  if (iso?.unshare.length) {
    // New namespaces need root; the uid and gid are dropped inside them, right before the exec.
    const drop = iso.user
      ? [
          'setpriv',
          `--reuid=${iso.user.uid}`,
          `--regid=${iso.user.gid}`,
          '--clear-groups',
          '--no-new-privs',
          '--',
        ]
      : [];
    // unshare and setpriv run as root: they get a bare PATH, never the payload's variables (an
    // LD_PRELOAD there would run as root); `env -i`, already unprivileged, sets the command's.
    const argv = [
      ...iso.unshare,
      '--',
      ...drop,
      'env',
      '-i',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      program!,
      ...args,
    ];
    return { file: 'unshare', argv, options: { ...options, env: { PATH: BASIC_PATH } } };
  }
  if (iso?.user) {
    options.uid = iso.user.uid;
    options.gid = iso.user.gid;
  }
  return { file: program!, argv: args, options };
}

/** Each line of the child's stdout and stderr into the task log; resolves when both close. */
function pumpOutput(child: ChildProcess, log: TaskLog): Promise<unknown> {
  const pump = (stream: NodeJS.ReadableStream, which: 'stdout' | 'stderr') =>
    new Promise<void>((resolve) => {
      const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', (line) => log.output(which, line));
      rl.on('close', resolve);
    });
  return Promise.all([pump(child.stdout!, 'stdout'), pump(child.stderr!, 'stderr')]);
}

interface Exit {
  code: number | null;
  sig: NodeJS.Signals | null;
  err?: Error;
}

/** The outcome of an exited command, with why it failed. */
function testOutcome(result: Exit, timedOut: boolean, aborted: boolean, timeoutMs: number) {
  const outcome: TestOutcome = {
    ok: !result.err && result.code === 0 && !timedOut && !aborted,
    exitCode: result.code,
    signal: result.sig,
    timedOut,
    aborted,
  };
  if (result.err) outcome.reason = `test command could not start: ${result.err.message}`;
  else if (timedOut)
    outcome.reason = `test command exceeded its time limit of ${timeoutMs / 1000} s`;
  else if (aborted) outcome.reason = 'test command was stopped';
  else if (result.code !== 0)
    outcome.reason =
      result.code === null
        ? `test command was killed by ${result.sig}`
        : `test command exited with status ${result.code}`;
  return outcome;
}

export async function runTestCommand(run: TestRun): Promise<TestOutcome> {
  const env = testEnvironment(run.env, run.scratch);
  const iso = run.isolation;
  run.log.info('test-start', {
    command: run.command,
    cwd: run.cwd,
    timeoutMs: run.timeoutMs,
    user: iso?.user?.name ?? 'the worker user',
    network: iso?.unshare.length ? 'none' : 'host',
  });
  for (const why of iso?.missing ?? []) run.log.warn('test-isolation-unavailable', { why });
  const plan = spawnPlan(run, env);
  const child = spawn(plan.file, plan.argv, plan.options);
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
  const outputs = pumpOutput(child, run.log);
  const result = await new Promise<Exit>((resolve) => {
    child.once('error', (err) => resolve({ code: null, sig: null, err }));
    child.once('exit', (code, sig) => resolve({ code, sig }));
  });
  clearTimeout(timer);
  run.signal?.removeEventListener('abort', onAbort);
  killGroup(); // leftovers of the group (background processes) do not outlive the test
  await Promise.race([outputs, wait(2000, undefined, { ref: false })]);
  const outcome = testOutcome(result, timedOut, aborted, run.timeoutMs);
  run.log.info('test-end', {
    ok: outcome.ok,
    exitCode: result.code,
    signal: result.sig,
    reason: outcome.reason,
  });
  return outcome;
}
