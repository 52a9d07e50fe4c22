// relengapi's archiver routes, kept for clients that have not moved to /v1:
//   GET /archiver/hgmo/<repo>/<rev>?subdir=…&suffix=tar.gz   302 to the archive, or 202 + status
//   GET /archiver/status/<id>                                {state, status, src_url, s3_urls}
import type { LookupConfig, ProjectConfig } from '../config.js';
import { HttpError } from './answer.js';
import type { BuildStatus } from './builds.js';

const LEGACY_STATE: Record<BuildStatus['state'], string> = {
  pending: 'PENDING',
  running: 'STARTED',
  completed: 'SUCCESS',
  failed: 'FAILURE',
};

/** The project whose legacy path is `repoPath`. */
export function legacyProject(config: LookupConfig, repoPath: string): [string, ProjectConfig] {
  const clean = repoPath.replace(/^\/+|\/+$/g, '');
  for (const [name, p] of Object.entries(config.projects)) {
    if (p.legacyPath === clean) return [name, p];
  }
  throw new HttpError(
    400,
    `unknown repository ${JSON.stringify(clean)}; configured: ${Object.values(config.projects)
      .map((p) => p.legacyPath)
      .join(', ')}`,
  );
}

/** Refuse what relengapi's archiver took but this service does not build. */
export function checkLegacyQuery(p: ProjectConfig, query: URLSearchParams): void {
  const subdir = query.get('subdir');
  const suffix = query.get('suffix') ?? 'tar.gz';
  if (subdir !== null && subdir.replace(/^\/+|\/+$/g, '') !== p.subdir) {
    throw new HttpError(
      400,
      `subdir ${JSON.stringify(subdir)} is not archived for ${p.legacyPath}; only ${p.subdir}`,
    );
  }
  if (suffix !== 'tar.gz') {
    throw new HttpError(400, `suffix ${JSON.stringify(suffix)} is not supported; only tar.gz`);
  }
}

const STATUS_TEXT: Record<BuildStatus['state'], (s: BuildStatus) => string> = {
  completed: (s) => `Task completed! Archive is at ${s.url}`,
  failed: (s) => `Task failed: ${s.reason}`,
  running: () => 'Task is running',
  pending: () => 'Task is pending',
};

/** A build status in relengapi's status document format. */
export function legacyStatus(config: LookupConfig, s: BuildStatus): Record<string, unknown> {
  const rec = s.project ? config.projects[s.project] : undefined;
  const base = rec?.repository.replace(/\/+$/, '');
  return {
    state: LEGACY_STATE[s.state],
    status: STATUS_TEXT[s.state](s),
    src_url: rec && s.revision ? `${base}/archive/${s.revision}.tar.gz/${rec.subdir}` : null,
    s3_urls: s.state === 'completed' && s.url ? { [config.legacyRegion]: s.url } : {},
    ...(s.sha256 ? { sha256: s.sha256, size: s.size } : {}),
    taskId: s.taskId,
  };
}
