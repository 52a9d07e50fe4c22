// A local Mercurial repository: `hg log` resolves the revision, `hg archive` of the subdir into a
// private staging dir gives the tree.
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveError } from '../../util/errors.js';
import { HG_RUN_ENV, runCommand } from '../proc.js';
import type { TreeSource } from '../tree.js';
import { diskSource } from './disk.js';
import { inStaging, notFound, remove, type SourceContext, type SourceDriver } from './source.js';

/** The one changeset `revision` names in the Mercurial repository `repo`. */
export async function hgResolve(repo: string, revision: string, subdir: string): Promise<string> {
  const r = await runCommand('hg', ['log', '-R', repo, `--rev=${revision}`, '-T', '{node}\n'], {
    env: HG_RUN_ENV(),
  });
  if (r.code !== 0) {
    if (/repository .* not found|no repository found/i.test(r.stderr)) {
      throw new ArchiveError('not-found', `${repo} is not a Mercurial repository`, {
        repository: repo,
      });
    }
    if (/unknown revision|not found|parse error|no such|filtered|ambiguous/i.test(r.stderr)) {
      throw notFound(repo, revision, subdir, 'unknown revision');
    }
    throw new ArchiveError('internal', `hg log failed in ${repo}: ${r.stderr.trim()}`);
  }
  const nodes = r.stdout.toString('utf8').trim().split('\n').filter(Boolean);
  if (nodes.length !== 1) {
    throw new ArchiveError(
      nodes.length ? 'usage' : 'not-found',
      `revision ${revision} names ${nodes.length} changesets in ${repo}, not one (subdir ${subdir})`,
    );
  }
  return nodes[0];
}

async function openHg(
  spec: { kind: 'hg'; path: string },
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  const repo = path.resolve(spec.path);
  const node = await hgResolve(repo, revision, subdir);
  return inStaging(ctx, 'hg', async (stage) => {
    const out = path.join(stage, 'out');
    const r = await runCommand(
      'hg',
      [
        'archive',
        '-R',
        repo,
        `--rev=${node}`,
        '-t',
        'files',
        '--no-decode',
        '--config',
        'ui.archivemeta=false',
        '-I',
        `path:${subdir}`,
        out,
      ],
      { env: HG_RUN_ENV(), signal: ctx.signal },
    );
    if (r.code !== 0) {
      if (/no files match/i.test(r.stderr)) throw notFound(repo, node, subdir, 'subdir not found');
      throw new ArchiveError('internal', `hg archive failed in ${repo}: ${r.stderr.trim()}`);
    }
    const tree = path.join(out, ...subdir.split('/'));
    if (!fs.existsSync(tree)) throw notFound(repo, node, subdir, 'subdir not found');
    return diskSource(tree, null, repo, node, ctx.log, () => remove(stage));
  });
}

export const hgDriver: SourceDriver<'hg'> = {
  kind: 'hg',
  resolve: (spec, revision, subdir) => hgResolve(spec.path, revision, subdir),
  open: openHg,
};
