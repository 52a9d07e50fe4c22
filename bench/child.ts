// A script run in a fresh bare node (an ES module evaluated with `-e`, the project's root as its
// directory) that reports its figures as one JSON line, the last on its stdout: how a benchmark
// times code in a process of its own, with nothing inherited from the bench's process or loader.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Run `script` with `args`; its last line of output, parsed. `what` names it in an error. */
export function runScript<T>(
  what: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): T {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    env,
  });
  if (r.status !== 0) throw new Error(`${what} child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}
