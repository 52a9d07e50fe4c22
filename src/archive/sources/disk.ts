// A tree on disk (a plain dir, a checkout's tracked files, or a staging dir) as a TreeSource.
import type { Logger } from '../../util/log.js';
import {
  checkEntryPath,
  completeTree,
  diskEntry,
  walkDisk,
  type TreeEntry,
  type TreeSource,
} from '../tree.js';

/**
 * The tree under `root`: every file (`listed` null) or just the `listed` paths (relative to
 * `root`; one missing from disk is warned about and left out). `cleanup` runs on close.
 */
export function diskSource(
  root: string,
  listed: string[] | null,
  repository: string,
  revision: string,
  log: Logger,
  cleanup?: () => Promise<void>,
): TreeSource {
  return {
    repository,
    revision,
    async *entries() {
      const items = listed === null ? walkDisk(root) : listedEntries(root, listed, log);
      yield* completeTree(items);
    },
    close: cleanup ?? (async () => {}),
  };
}

function listedEntries(root: string, listed: string[], log: Logger): TreeEntry[] {
  const items: TreeEntry[] = [];
  for (const rel of listed) {
    checkEntryPath(rel);
    const e = diskEntry(root, rel);
    if (!e)
      log.warn('archive.missing-file', {
        path: rel,
        reason: 'tracked but not in the working copy',
      });
    else if (e.type !== 'dir') items.push(e);
  }
  return items;
}
