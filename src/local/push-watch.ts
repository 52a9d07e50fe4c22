// Watching a served repository for pushes. For git, the branch heads under refs/heads are polled,
// and every branch that moved (or appeared) since the last look is one push from its old head to
// its new one. For hg, `hg serve` runs a changegroup hook that appends each push's first and last
// changeset to a push log file (what hg.mozilla.org's pushlog records), and the watcher reads
// the lines added since. Pushes are handed over one at a time, in order.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { describeRevision } from './repo.js';
import type { Vcs } from './sample-repo.js';

const run = promisify(execFile);

export interface ObservedPush {
  /** The pushed head. */
  revision: string;
  /** The head before the push ('' for a new branch or the first push). */
  baseRevision: string;
  /** The branch (git: refs/heads/…; hg: default). */
  ref: string;
  author: string;
  email: string;
  message: string;
}

export interface PushWatchOptions {
  repoDir: string;
  vcs: Vcs;
  /** hg: the file the changegroup hook appends `<first node> <last node>` lines to. */
  hgPushlogFile?: string;
  intervalMs?: number;
  onPush: (push: ObservedPush) => Promise<void>;
  log: Logger;
}

export interface PushWatch {
  /** Look now (also done every intervalMs); resolves once the pushes seen are handed over. */
  poll(): Promise<void>;
  stop(): Promise<void>;
}

/** The `hg serve --config` that records each push in `file` (a shell changegroup hook). */
export function hgPushlogHook(file: string): string {
  const quoted = `'${file.replace(/'/g, `'\\''`)}'`;
  return `hooks.changegroup.mozharness-pushlog=echo "$HG_NODE $HG_NODE_LAST" >> ${quoted}`;
}

async function gitHeads(repoDir: string): Promise<Map<string, string>> {
  const { stdout } = await run('git', [
    '-C',
    repoDir,
    'for-each-ref',
    '--format=%(objectname) %(refname)',
    'refs/heads',
  ]);
  const heads = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [sha, ref] = line.split(' ');
    if (sha && ref) heads.set(ref, sha);
  }
  return heads;
}

async function hgParent(repoDir: string, node: string): Promise<string> {
  const { stdout } = await run('hg', ['-R', repoDir, 'log', '-r', `p1(${node})`, '-T', '{node}']);
  const p = stdout.trim();
  return /^0+$/.test(p) ? '' : p;
}

export async function watchPushes(o: PushWatchOptions): Promise<PushWatch> {
  let heads = o.vcs === 'git' ? await gitHeads(o.repoDir) : new Map<string, string>();
  let offset = 0;
  if (o.vcs === 'hg') {
    if (!o.hgPushlogFile) throw new Error('watching an hg repository needs its push log file');
    fs.writeFileSync(o.hgPushlogFile, '', { flag: 'a' });
    offset = fs.statSync(o.hgPushlogFile).size;
  }

  const observe = async (): Promise<Array<Omit<ObservedPush, 'author' | 'email' | 'message'>>> => {
    if (o.vcs === 'git') {
      const now = await gitHeads(o.repoDir);
      const moved = [...now].filter(([ref, sha]) => heads.get(ref) !== sha);
      const found = moved.map(([ref, sha]) => ({
        revision: sha,
        baseRevision: heads.get(ref) ?? '',
        ref,
      }));
      heads = now;
      return found;
    }
    const text = fs.readFileSync(o.hgPushlogFile!, 'utf8');
    const added = text.slice(offset);
    const complete = added.slice(0, added.lastIndexOf('\n') + 1);
    offset += Buffer.byteLength(complete);
    const found = [];
    for (const line of complete.split('\n').filter(Boolean)) {
      const [first, last] = line.trim().split(/\s+/);
      if (!first) continue;
      found.push({
        revision: last || first,
        baseRevision: await hgParent(o.repoDir, first),
        ref: 'default',
      });
    }
    return found;
  };

  let busy: Promise<void> | undefined;
  const poll = (): Promise<void> => {
    busy ??= (async () => {
      try {
        for (const p of await observe()) {
          const d = await describeRevision(o.repoDir, o.vcs, p.revision);
          await o.onPush({ ...p, ...d });
        }
      } catch (e) {
        o.log.error('push-watch-failed', { error: errorMessage(e) });
      }
    })().finally(() => (busy = undefined));
    return busy;
  };
  const timer = setInterval(() => void poll(), o.intervalMs ?? 1000);
  timer.unref();
  return {
    poll,
    async stop() {
      clearInterval(timer);
      await busy;
    },
  };
}
