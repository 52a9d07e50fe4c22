// A git repository on disk: `ls-tree` of <node>:<subdir>, contents through one
// `git cat-file --batch`. The git-remote driver reads its staging repository the same way.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { ArchiveError, errorMessage } from '../../util/errors.js';
import { ByteReader } from '../bytes.js';
import { GIT_RUN_ENV, runCommand } from '../proc.js';
import { completeTree, fileMode, LINK_MODE, type TreeEntry, type TreeSource } from '../tree.js';
import { FULL_NODE, notFound, type SourceContext, type SourceDriver } from './source.js';

/** The commit `revision` names in the git repository `repo`. */
export async function gitResolve(repo: string, revision: string, subdir: string): Promise<string> {
  const r = await runCommand(
    'git',
    ['-C', repo, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${revision}^{commit}`],
    { env: GIT_RUN_ENV() },
  );
  const node = r.stdout.toString('utf8').trim();
  if (r.code !== 0 || !FULL_NODE.test(node)) {
    if (/not a git repository/i.test(r.stderr)) {
      throw new ArchiveError('not-found', `${repo} is not a git repository`);
    }
    throw notFound(repo, revision, subdir, 'unknown revision');
  }
  return node;
}

interface GitItem {
  path: string;
  mode: string;
  oid: string;
}

/** The blobs (files and symlinks) of `<node>:<subdir>`; submodules are warned about and skipped. */
async function listBlobs(
  repo: string,
  node: string,
  subdir: string,
  repository: string,
  ctx: SourceContext,
): Promise<GitItem[]> {
  const r = await runCommand(
    'git',
    ['-C', repo, 'ls-tree', '-r', '-z', '--end-of-options', `${node}:${subdir}`],
    { env: GIT_RUN_ENV() },
  );
  if (r.code !== 0) throw notFound(repository, node, subdir, 'subdir not found');
  const items: GitItem[] = [];
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, type, oid] = rec.slice(0, tab).split(' ');
    const p = rec.slice(tab + 1);
    if (type === 'commit') {
      ctx.log.warn('archive.submodule-skipped', { path: p });
      continue;
    }
    if (type !== 'blob') continue;
    items.push({ path: p, mode, oid });
  }
  return items;
}

/** One `git cat-file --batch` process: ask for an object, read its header and content. */
class CatFile {
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';
  private readonly exited: Promise<void>;
  readonly reader: ByteReader;

  constructor(repo: string) {
    this.child = spawn('git', ['-C', repo, 'cat-file', '--batch'], {
      env: GIT_RUN_ENV(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString('utf8')));
    this.exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.on('error', () => {});
    this.reader = new ByteReader(this.child.stdout, 'git cat-file');
  }

  /** Ask for blob `oid` (of `what`) and read its header: the content's size. */
  async blob(oid: string, what: string): Promise<number> {
    this.child.stdin.write(oid + '\n');
    const header = await this.reader.line().catch((err) => {
      throw new ArchiveError(
        'internal',
        `git cat-file failed: ${this.stderr || errorMessage(err)}`,
      );
    });
    const m = /^([0-9a-f]+) blob (\d+)$/.exec(header);
    if (!m)
      throw new ArchiveError('corrupt', `git object ${oid} (${what}) is unreadable: ${header}`);
    return Number(m[2]);
  }

  async close(): Promise<void> {
    const child = this.child;
    child.stdin.end();
    // unread output must not keep the pipe (and the process) alive
    child.stdout.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill();
    await this.exited;
  }
}

/**
 * Yield `e` with its content from the batch, then skip whatever of it the consumer left unread
 * (and the LF after it), so the next object's header is next.
 */
async function* blobEntry(batch: CatFile, e: TreeEntry, oid: string): AsyncGenerator<TreeEntry> {
  const { reader } = batch;
  const size = await batch.blob(oid, e.path);
  if (e.type === 'symlink') {
    if (size > 4096) throw new ArchiveError('corrupt', `symlink ${e.path} target too long`);
    const target = (await reader.exact(size)) ?? Buffer.alloc(0);
    await reader.exact(1);
    yield { ...e, linkTarget: target.toString('utf8') };
    return;
  }
  let consumed = 0;
  yield {
    ...e,
    size,
    read: async function* () {
      for await (const c of reader.chunks(size)) {
        consumed += c.length;
        yield c;
      }
    },
  };
  if (consumed < size) await reader.skip(size - consumed);
  await reader.exact(1); // LF after the content
}

/** The tree of `<node>:<subdir>` in the repository `repo` (named `repository` in messages). */
export async function openGitRepo(
  repo: string,
  node: string,
  subdir: string,
  repository: string,
  ctx: SourceContext,
  cleanup?: () => Promise<void>,
): Promise<TreeSource> {
  const items = await listBlobs(repo, node, subdir, repository, ctx);
  const byPath = new Map(items.map((i) => [i.path, i]));
  const shells: TreeEntry[] = items.map((i) => ({
    path: i.path,
    type: i.mode === '120000' ? 'symlink' : 'file',
    mode: i.mode === '120000' ? LINK_MODE : fileMode(i.mode === '100755'),
    size: 0,
  }));
  return {
    repository,
    revision: node,
    async *entries() {
      const sorted = completeTree(shells);
      const batch = new CatFile(repo);
      try {
        for (const e of sorted) {
          if (e.type === 'dir') yield e;
          else yield* blobEntry(batch, e, byPath.get(e.path)!.oid);
        }
      } finally {
        await batch.close();
      }
    },
    close: cleanup ?? (async () => {}),
  };
}

export const gitDriver: SourceDriver<'git'> = {
  kind: 'git',
  resolve: (spec, revision, subdir) => gitResolve(spec.path, revision, subdir),
  async open(spec, revision, subdir, ctx) {
    const repo = path.resolve(spec.path);
    const node = await gitResolve(repo, revision, subdir);
    return openGitRepo(repo, node, subdir, repo, ctx);
  },
};
