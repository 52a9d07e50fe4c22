// runnable-jobs.json: every task of the full graph that Treeherder can show, keyed by label, in
// the format of taskgraph's runnable jobs (label → {symbol, groupSymbol?, groupName?,
// collection?, platform?}). Treeherder's "Add new jobs" lists these; `add-new-jobs` accepts any
// label listed here.
import type { GraphConfig } from './config.js';
import type { TaskGraph } from './graph.js';
import { splitSymbol } from './resolve.js';

export interface RunnableJob {
  symbol: string;
  groupSymbol?: string;
  groupName?: string;
  collection?: Record<string, boolean>;
  platform?: string;
}

export function runnableJobs(full: TaskGraph, config: GraphConfig): Record<string, RunnableJob> {
  const out: Record<string, RunnableJob> = {};
  for (const label of full.order) {
    const th = full.tasks[label]!.spec.treeherder;
    const { symbol, groupSymbol } = splitSymbol(th.symbol);
    const groupName = groupSymbol ? config.treeherderGroupNames[groupSymbol] : undefined;
    const collection = 'collection' in th && th.collection ? th.collection : 'opt';
    out[label] = {
      symbol,
      ...(groupSymbol ? { groupSymbol } : {}),
      ...(groupName ? { groupName } : {}),
      collection: { [collection]: true },
      ...(th.platform ? { platform: th.platform } : {}),
    };
  }
  return out;
}
