// Configuration of the lookup service (`serve --config FILE`), checked against
// schemas/lookup-config.json. Projects come only from here: the service answers 400 for any other
// project and never contacts a host that is not in it (the Taskcluster root URL, the projects'
// repositories and `allowHosts`, e.g. the S3 bucket the archive artifacts point at).
import * as yaml from 'js-yaml';
import fs from 'node:fs';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { DEFAULT_INDEX_PREFIX } from '../contract/index.js';
import { describeSchemaErrors, projectValidator } from '../util/schemas.js';

export interface OnDemandConfig {
  /** `<provisionerId>/<workerType>` of the archive workers. */
  taskQueueId: string;
  /** Scopes of the archive task itself. */
  scopes?: string[];
  schedulerId?: string;
  projectId?: string;
  priority?: string;
  /** Minutes from creation to the task's deadline (default 180). */
  deadlineMinutes?: number;
  /** Days the task (and so its artifacts and index entries) live (default 365). */
  expiresDays?: number;
  /** Seconds the worker may spend (default 1800). */
  maxRunTime?: number;
  /** Revisions not indexed yet that may be looked up in the repository per minute (default 60). */
  repositoryLookupsPerMinute?: number;
}

export interface ProjectConfig {
  /** hgweb (or git) URL of the repository. */
  repository: string;
  repositoryType?: 'hg' | 'git';
  subdir?: string;
  /** Repository path of the legacy `/archiver/hgmo/<path>/<rev>` route (default: the URL path). */
  legacyPath?: string;
  /** On-demand builds of revisions not indexed yet; absent → 404 for them. */
  onDemand?: OnDemandConfig;
}

export interface LookupConfig {
  rootUrl?: string;
  indexPrefix: string;
  stateDir?: string;
  /** Extra hosts the service may contact (origins or host:port), e.g. the archive bucket. */
  allowHosts: string[];
  cache: { hitTtlSeconds: number; missTtlSeconds: number; maxEntries: number };
  /** How long a revision the repository does not know is answered 404 without asking again. */
  unknownRevisionTtlSeconds: number;
  /** A failed on-demand build is replaced by a new task on a request this long after it was created. */
  retryFailedAfterSeconds: number;
  /** Region name in the legacy status document's `s3_urls`. */
  legacyRegion: string;
  /** One in this many cached hits is logged (every other answer is logged); 1 logs every request. */
  requestLogSampleRate: number;
  projects: Record<string, ProjectConfig>;
}

export const DEFAULT_SUBDIR = 'testing/mozharness';

/** Validate (applying defaults) a parsed configuration document. */
export function checkLookupConfig(doc: unknown, where = 'lookup configuration'): LookupConfig {
  const copy = doc === null || typeof doc !== 'object' ? doc : structuredClone(doc);
  const fn = projectValidator('lookup-config.json');
  if (!fn(copy)) {
    const errors = describeSchemaErrors(fn.errors, copy, { max: 8 });
    throw new ArchiveError('invalid-config', `${where}: ${errors.join('; ')}`, { errors });
  }
  const cfg = copy as LookupConfig;
  cfg.indexPrefix ??= DEFAULT_INDEX_PREFIX;
  for (const [name, p] of Object.entries(cfg.projects)) {
    p.subdir ??= DEFAULT_SUBDIR;
    p.legacyPath ??= new URL(p.repository).pathname.replace(/^\/+|\/+$/g, '');
    if (!p.legacyPath) {
      throw new ArchiveError('invalid-config', `${where}: projects.${name}.legacyPath is empty`);
    }
  }
  return cfg;
}

export function loadLookupConfig(file: string): LookupConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ArchiveError('invalid-config', `cannot read ${file}: ${errorMessage(e)}`);
  }
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (e) {
    throw new ArchiveError('invalid-config', `${file} is not valid YAML: ${errorMessage(e)}`);
  }
  return checkLookupConfig(doc, file);
}
