// Configuration of the lookup service (`serve --config FILE`), checked against
// schemas/lookup-config.json. Projects come only from here: the service answers 400 for any other
// project and never contacts a host that is not in it (the Taskcluster root URL, the projects'
// repositories and `allowHosts`, e.g. the S3 bucket the archive artifacts point at).
import * as yaml from 'js-yaml';
import fs from 'node:fs';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { DEFAULT_INDEX_PREFIX } from '../contract/index.js';
import type { LookupConfig as GeneratedLookupConfig } from '../generated/index.js';
import { describeSchemaErrors, projectValidator, type Defaulted } from '../util/schemas.js';

type RawProject = GeneratedLookupConfig['projects'][string];

/** On-demand builds of revisions not indexed yet; absent → 404 for them. */
export type OnDemandConfig = NonNullable<RawProject['onDemand']>;

/** A project, with its `subdir` and `legacyPath` filled in by checkLookupConfig. */
export type ProjectConfig = RawProject;

/** The validated configuration (schemas/lookup-config.json, its defaults applied). */
export type LookupConfig = Defaulted<
  Omit<GeneratedLookupConfig, 'cache' | 'projects'>,
  | 'indexPrefix'
  | 'allowHosts'
  | 'unknownRevisionTtlSeconds'
  | 'retryFailedAfterSeconds'
  | 'legacyRegion'
  | 'requestLogSampleRate'
> & {
  cache: Required<NonNullable<GeneratedLookupConfig['cache']>>;
  projects: Record<string, ProjectConfig>;
};

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
