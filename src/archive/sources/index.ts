// Where a tree comes from: hgweb over HTTP, a local Mercurial repository, a local or remote git
// repository, or a plain directory (a checkout). One driver per kind (./<kind>.ts) behind one
// interface (SourceDriver); every source yields the same sorted tree model, contents streamed,
// never the whole tree in memory. The drivers of repositories load when a source of their kind is
// opened, so a build from a directory does not load the HTTP client, the tar reader or git's
// plumbing; the directory's, small, is always there.
import type { TreeSource } from '../tree.js';
import { dirDriver } from './dir.js';
import {
  checkRevision,
  type SourceContext,
  type SourceDriver,
  type SourceKind,
  type SourceSpec,
  type SpecOf,
} from './source.js';

export type { FetchPolicy, SourceContext, SourceLimits, SourceSpec } from './source.js';
export { isAllowedUrl } from './source.js';

const DRIVERS: { [K in SourceKind]: () => Promise<SourceDriver<K>> } = {
  hgweb: async () => (await import('./hgweb.js')).hgwebDriver,
  'git-remote': async () => (await import('./git-remote.js')).gitRemoteDriver,
  hg: async () => (await import('./hg.js')).hgDriver,
  git: async () => (await import('./git.js')).gitDriver,
  dir: async () => dirDriver,
};

/** The driver of `spec`'s kind. */
function driverFor<K extends SourceKind>(spec: SpecOf<K>): Promise<SourceDriver<K>> {
  return DRIVERS[spec.kind as K]();
}

export function describeSource(spec: SourceSpec): string {
  return 'url' in spec ? spec.url : spec.path;
}

/**
 * The full 40-hex revision `revision` names in `spec`. For hgweb a full node is still checked with
 * json-rev unless `trustFullNode`.
 */
export async function resolveIn(
  spec: SourceSpec,
  revision: string,
  subdir: string,
  ctx: SourceContext,
  trustFullNode = false,
): Promise<string> {
  checkRevision(revision);
  return (await driverFor(spec)).resolve(spec, revision, subdir, ctx, trustFullNode);
}

/** Open the tree of `subdir` at `revision` in `spec`. Close it when done. */
export async function openSource(
  spec: SourceSpec,
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  checkRevision(revision);
  return (await driverFor(spec)).open(spec, revision, subdir, ctx);
}
