// Task definitions for labels the push did not schedule (add-new-jobs "also schedules tasks that
// the push's target set left out"): the decision task's own generator, run on the action task's
// checkout with the push's parameters, for one label. Dependencies get placeholder ids that the
// planner replaces with the tasks it resolves (reused, found by digest, or re-created).
import path from 'node:path';
import fs from 'node:fs';
import { slugid } from '../taskcluster/client.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import { silentLogger, type Logger } from '../util/log.js';
import {
  ARCHIVE_LABEL,
  cacheRouteOf,
  expectedArchive,
  indexRoute,
  pushIndexNamespaces,
  type ExpectedArchive,
} from '../contract/index.js';
import { loadGraphs } from '../decision/decision.js';
import { pushFacts, readParameters } from '../decision/parameters.js';
import { resolveTaskGraph, treeherderRoute } from '../decision/resolve.js';
import type { KnownTask, PushView } from './graph.js';

/** The push's archive, as its archive task (else any task depending on it) expects it. */
function archiveFacts(view: PushView): Partial<ExpectedArchive> {
  for (const t of view.tasks.values()) {
    const e = t.label === ARCHIVE_LABEL ? expectedArchive(t.task) : undefined;
    if (e) return e;
  }
  for (const t of view.tasks.values()) {
    const e = expectedArchive(t.task);
    if (e) return e;
  }
  return {};
}

/**
 * A `defineTask` for the action callback: generates `label` from the kinds in `root`
 * (`<checkout>/taskcluster`). Returns undefined for labels it cannot generate (unknown to the
 * kinds, the archive itself, or no checkout).
 */
export function decisionTaskDefiner(opts: { root: string; now?: () => Date; log?: Logger }) {
  const log = opts.log ?? silentLogger;
  return async (label: string, view: PushView): Promise<KnownTask | undefined> => {
    if (label === ARCHIVE_LABEL) return undefined;
    if (!fs.existsSync(path.join(opts.root, 'config.yml'))) {
      log.warn('no-in-tree-config', { root: opts.root, label });
      return undefined;
    }
    const params = readParameters(view.parameters);
    const { config, full } = await loadGraphs({ params, root: opts.root });
    const spec = full.tasks[label];
    if (!spec) return undefined;
    const facts = archiveFacts(view);
    if (!facts.sha256) {
      log.warn('archive-sha256-unknown', { label });
      return undefined;
    }
    const placeholder = slugid();
    const labelToTaskId: Record<string, string> = { [label]: placeholder };
    const depTaskIds: Record<string, string> = {};
    for (const [name, dep] of Object.entries(spec.dependencies)) {
      const id = view.labelToTaskId[dep] ?? slugid();
      labelToTaskId[dep] = id;
      depTaskIds[name] = id;
    }
    const archiveId = labelToTaskId[ARCHIVE_LABEL] ?? view.labelToTaskId[ARCHIVE_LABEL] ?? slugid();
    const now = (opts.now ?? (() => new Date()))();
    const far = new Date(now.getTime() + 365 * 864e5).toISOString();
    const resolved = resolveTaskGraph(
      { order: [label], tasks: { [label]: spec } },
      {
        config,
        params,
        digest: {
          treeDigest: facts.treeDigest ?? '',
          sha256: facts.sha256,
          size: facts.size ?? 0,
          files: 0,
          revision: params.head_rev,
          subdir: '',
          formatVersion: facts.formatVersion ?? 1,
        },
        labelToTaskId: { ...labelToTaskId, [ARCHIVE_LABEL]: archiveId },
        replaced: {
          [ARCHIVE_LABEL]: {
            taskId: archiveId,
            namespace: '',
            sha256: facts.sha256,
            data: {},
            indexExpires: far,
            taskExpires: far,
            artifactExpires: far,
          },
        },
        created: now,
      },
    );
    const t = resolved.tasks[placeholder]!;
    return {
      taskId: placeholder,
      label,
      kind: t.kind,
      task: t.task as TaskDefinition,
      depLabels: { ...spec.dependencies },
      depTaskIds,
    };
  };
}

/**
 * Make an archive task of another push (one this push reused) this push's own, for when it has
 * to be built again: this push's Treeherder route and per-push index routes, its push date as
 * rank; the content-digest route and the payload (same tree) stay.
 */
export function retargetArchiveTask(
  params: Record<string, unknown>,
): (task: TaskDefinition) => TaskDefinition {
  return (task) => {
    let p: ReturnType<typeof readParameters>;
    try {
      p = readParameters(params, undefined, { warn: () => {} });
    } catch {
      return task;
    }
    const cache = cacheRouteOf(task.routes);
    const routes = [
      ...(cache ? pushIndexNamespaces(cache.prefix, pushFacts(p)).map(indexRoute) : []),
      ...(cache ? [cache.route] : []),
      treeherderRoute(p),
    ];
    const extra = JSON.parse(JSON.stringify(task.extra ?? {}));
    if (extra.index) {
      extra.index.rank = p.pushdate;
      extra.index.data = {
        ...(extra.index.data ?? {}),
        project: p.project,
        pushlogId: p.pushlog_id,
        pushdate: p.pushdate,
      };
    }
    return { ...task, routes, extra };
  };
}
