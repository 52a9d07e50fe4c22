// A plain directory or a checkout: the files its VCS tracks (git ls-files, hg files) as they are
// in the working copy, or every file when it is not a checkout.
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveError } from '../../util/errors.js';
import { GIT_RUN_ENV, HG_RUN_ENV, runCommand } from '../proc.js';
import { diskSource } from './disk.js';
import { FULL_NODE, notFound, type SourceDriver } from './source.js';

type Checkout = { kind: 'hg' | 'git'; root: string };

/** Find the nearest enclosing checkout of `dir` (its root and kind), or null. */
function findCheckout(dir: string): Checkout | null {
  let d = path.resolve(dir);
  while (true) {
    if (fs.existsSync(path.join(d, '.hg'))) return { kind: 'hg', root: d };
    if (fs.existsSync(path.join(d, '.git'))) return { kind: 'git', root: d };
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/** The files git tracks under `subdir` of `root`, relative to the subdir. */
async function gitTracked(root: string, subdir: string): Promise<string[]> {
  const prefix = subdir + '/';
  const r = await runCommand('git', ['-C', root, 'ls-files', '-z', '--', `:(literal)${subdir}`], {
    env: GIT_RUN_ENV(),
  });
  if (r.code !== 0)
    throw new ArchiveError('internal', `git ls-files failed in ${root}: ${r.stderr.trim()}`);
  const files = r.stdout
    .toString('utf8')
    .split('\0')
    .filter((p) => p.startsWith(prefix))
    .map((p) => p.slice(prefix.length));
  return [...new Set(files)];
}

/** The files Mercurial tracks under `subdir` of `root` (inside checkout `co`), relative to it. */
async function hgTracked(co: Checkout, root: string, subdir: string): Promise<string[]> {
  const rel = path.relative(co.root, root).split(path.sep).filter(Boolean).join('/');
  const full = rel ? `${rel}/${subdir}` : subdir;
  const r = await runCommand('hg', ['files', '-0', '-R', co.root, '-I', `path:${full}`], {
    cwd: co.root,
    env: HG_RUN_ENV(),
  });
  if (r.code !== 0 && r.code !== 1) {
    throw new ArchiveError('internal', `hg files failed in ${co.root}: ${r.stderr.trim()}`);
  }
  const fullPrefix = full + '/';
  return r.stdout
    .toString('utf8')
    .split('\0')
    .map((p) => p.split(path.sep).join('/'))
    .filter((p) => p.startsWith(fullPrefix))
    .map((p) => p.slice(fullPrefix.length));
}

export const dirDriver: SourceDriver<'dir'> = {
  kind: 'dir',
  async resolve(spec, revision, subdir) {
    const co = findCheckout(spec.path);
    if (FULL_NODE.test(revision)) return revision;
    // a revision by name needs the checkout's VCS driver (loaded only then)
    if (co?.kind === 'git') return (await import('./git.js')).gitResolve(co.root, revision, subdir);
    if (co?.kind === 'hg') return (await import('./hg.js')).hgResolve(co.root, revision, subdir);
    throw new ArchiveError(
      'usage',
      `${spec.path} is not a checkout: give the full 40-hex revision it holds (got ${revision})`,
    );
  },
  async open(spec, revision, subdir, ctx) {
    const root = path.resolve(spec.path);
    const node = await dirDriver.resolve(spec, revision, subdir, ctx, false);
    const subAbs = path.join(root, ...subdir.split('/'));
    if (!fs.existsSync(subAbs) || !fs.lstatSync(subAbs).isDirectory()) {
      throw notFound(root, node, subdir, 'subdir does not exist in the directory');
    }
    const co = findCheckout(root);
    const listed =
      co?.kind === 'git'
        ? await gitTracked(root, subdir)
        : co?.kind === 'hg'
          ? await hgTracked(co, root, subdir)
          : null;
    return diskSource(subAbs, listed, root, node, ctx.log);
  },
};
