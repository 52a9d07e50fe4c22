// Reading a local hg or git repository the way the local forest needs it: which VCS it is, a file
// at a revision, revisions by name, the last few revisions, and the in-tree graph config.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadGraphConfig, type GraphConfig } from '../decision/config.js';
import { ArchiveError } from '../util/errors.js';
import type { Vcs } from './sample-repo.js';

const run = promisify(execFile);

/** Whether `cmd --version` runs (is the tool installed?). */
export async function which(cmd: string): Promise<boolean> {
  try {
    await run(cmd, ['--version']);
    return true;
  } catch {
    return false;
  }
}

export function detectVcs(repo: string): Vcs {
  if (fs.existsSync(path.join(repo, '.hg'))) return 'hg';
  if (fs.existsSync(path.join(repo, '.git')) || fs.existsSync(path.join(repo, 'HEAD')))
    return 'git';
  throw new ArchiveError('usage', `--repo ${repo}: not a Mercurial or git repository`);
}

export async function readAtRevision(
  repo: string,
  vcs: Vcs,
  revision: string,
  file: string,
): Promise<string> {
  const { stdout } =
    vcs === 'hg'
      ? await run('hg', ['--cwd', repo, 'cat', '-r', revision, file], { maxBuffer: 16 << 20 })
      : await run('git', ['-C', repo, 'show', `${revision}:${file}`], { maxBuffer: 16 << 20 });
  return stdout;
}

export async function resolveRevisions(repo: string, vcs: Vcs, revs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of revs) {
    try {
      const { stdout } =
        vcs === 'hg'
          ? await run('hg', ['-R', repo, 'log', '-r', r, '-T', '{node}'])
          : await run('git', ['-C', repo, 'rev-parse', '--verify', `${r}^{commit}`]);
      out.push(stdout.trim());
    } catch {
      throw new ArchiveError('not-found', `revision ${r} is not in ${repo}`);
    }
  }
  return out;
}

export async function lastRevisions(repo: string, vcs: Vcs, n: number): Promise<string[]> {
  const { stdout } =
    vcs === 'hg'
      ? await run('hg', ['-R', repo, 'log', '-r', `last(all(), ${n})`, '-T', '{node}\n'])
      : await run('git', ['-C', repo, 'rev-list', '--reverse', `--max-count=${n}`, 'HEAD']);
  return stdout.split('\n').filter(Boolean);
}

/** Author (as `Name <email>`) and first line of the message of a revision. */
export async function describeRevision(
  repo: string,
  vcs: Vcs,
  revision: string,
): Promise<{ author: string; email: string; message: string }> {
  const { stdout } =
    vcs === 'hg'
      ? await run('hg', [
          '-R',
          repo,
          'log',
          '-r',
          revision,
          '-T',
          '{author}\n{author|email}\n{desc|firstline}',
        ])
      : await run('git', ['-C', repo, 'log', '-1', '--format=%an <%ae>%n%ae%n%s', revision]);
  const [author = '', email = '', message = ''] = stdout.split('\n');
  return { author, email, message };
}

/** The graph config (taskcluster/config.yml) of a revision. */
export async function loadConfigAt(repo: string, vcs: Vcs, revision: string): Promise<GraphConfig> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-config-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'config.yml'),
      await readAtRevision(repo, vcs, revision, 'taskcluster/config.yml'),
    );
    return await loadGraphConfig(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
