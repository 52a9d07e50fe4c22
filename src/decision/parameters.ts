// Phase 1: the decision parameters of one push. They come from command-line flags or the
// MOZHARNESS_ARCHIVE_* environment variables that .taskcluster.yml sets, are validated against
// schemas/parameters.json, and are written as the decision task's parameters.yml.
import fs from 'node:fs/promises';
import * as yaml from 'js-yaml';
import type { PushFacts } from '../contract/index.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { validateAgainst } from './schema.js';
import type { Parameters as GeneratedParameters } from '../generated/index.js';
import type { TasksFor } from './producers.js';
export { TASKS_FOR, type TasksFor } from './producers.js';

/**
 * The decision parameters (parameters.yml, schemas/parameters.json). Every key of taskgraph's base
 * schema, with its name and type, so taskgraph tooling can read the file; then the project's own keys.
 */
export type Parameters = GeneratedParameters;

/** What a push says; every other parameter has a taskgraph default derived from it. */
export type PushParameters = Pick<
  Parameters,
  | 'project'
  | 'level'
  | 'head_repository'
  | 'repository_type'
  | 'head_rev'
  | 'base_rev'
  | 'owner'
  | 'pushlog_id'
  | 'pushdate'
  | 'decision_task_id'
  | 'taskcluster_root_url'
> &
  Partial<Parameters>;

/** The push facts the index namespaces are built from. */
export function pushFacts(p: Parameters): PushFacts {
  return {
    project: p.project,
    revision: p.head_rev,
    pushlog_id: p.pushlog_id,
    pushdate: p.pushdate,
  };
}

/** YYYYMMDDhhmmss (UTC) of unix seconds. */
export function mozBuildDate(pushdate: number): string {
  return new Date(pushdate * 1000).toISOString().replace(/[-:T]|\.\d+Z$/g, '');
}

/** Full parameters from a push: taskgraph's defaults for every key the push does not set. */
export function makeParameters(push: PushParameters & { tasks_for?: TasksFor }): Parameters {
  return {
    base_repository: push.head_repository,
    base_ref: null,
    build_date: push.pushdate,
    build_number: 1,
    do_not_optimize: [],
    enable_always_target: false,
    existing_tasks: {},
    files_changed: [],
    filters: ['target_tasks_method'],
    head_ref: push.repository_type === 'git' ? 'refs/heads/main' : 'default',
    head_tag: '',
    moz_build_date: mozBuildDate(push.pushdate),
    next_version: null,
    optimize_strategies: null,
    optimize_target_tasks: true,
    target_tasks_method: 'default',
    tasks_for: 'hg-push',
    version: null,
    ...push,
  };
}

/** The push flags shared by render-tcyml, decision and graph, in commander's camelCase. */
export interface PushFlags {
  project?: string;
  level?: string;
  repository?: string;
  repositoryType?: string;
  revision?: string;
  baseRevision?: string;
  headRef?: string;
  baseRef?: string;
  owner?: string;
  pushlogId?: string;
  pushdate?: string;
  tasksFor?: string;
  taskId?: string;
  rootUrl?: string;
}

/** flag → environment variable set by .taskcluster.yml's decision task. */
export const PUSH_ENV: Record<keyof PushFlags, string> = {
  project: 'MOZHARNESS_ARCHIVE_PROJECT',
  level: 'MOZHARNESS_ARCHIVE_LEVEL',
  repository: 'MOZHARNESS_ARCHIVE_REPOSITORY',
  repositoryType: 'MOZHARNESS_ARCHIVE_REPOSITORY_TYPE',
  revision: 'MOZHARNESS_ARCHIVE_REVISION',
  baseRevision: 'MOZHARNESS_ARCHIVE_BASE_REVISION',
  headRef: 'MOZHARNESS_ARCHIVE_HEAD_REF',
  baseRef: 'MOZHARNESS_ARCHIVE_BASE_REF',
  owner: 'MOZHARNESS_ARCHIVE_OWNER',
  pushlogId: 'MOZHARNESS_ARCHIVE_PUSHLOG_ID',
  pushdate: 'MOZHARNESS_ARCHIVE_PUSHDATE',
  tasksFor: 'MOZHARNESS_ARCHIVE_TASKS_FOR',
  taskId: 'MOZHARNESS_ARCHIVE_TASK_ID',
  rootUrl: 'MOZHARNESS_ARCHIVE_ROOT_URL',
};

/** Flags win over environment variables; empty strings count as unset. */
export function mergeFlagsWithEnv(
  flags: PushFlags,
  env: NodeJS.ProcessEnv = process.env,
): PushFlags {
  const out: PushFlags = {};
  for (const key of Object.keys(PUSH_ENV) as Array<keyof PushFlags>) {
    const v = flags[key] ?? env[PUSH_ENV[key]];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

/** Unix seconds from `1700000000` or an ISO 8601 date-time (GitHub's head_commit.timestamp). */
export function parsePushdate(value: string): number {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  if (/^\d{4}-\d{2}-\d{2}T/.test(v)) {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return Math.floor(ms / 1000);
  }
  throw new ArchiveError(
    'usage',
    `--pushdate: expected unix seconds or an ISO 8601 date-time, got ${JSON.stringify(value)}`,
  );
}

function inferRepositoryType(url: string): 'hg' | 'git' {
  return /\.git$|^https?:\/\/github\.com\//.test(url) ? 'git' : 'hg';
}

/**
 * Parameters from the push flags (already merged with the environment). `defaults` fills what the
 * flags may leave out (the config's root URL; a task id for render-only uses).
 */
export function parametersFromFlags(
  flags: PushFlags,
  defaults: { rootUrl?: string; taskId?: string } = {},
): Parameters {
  const missing = (['project', 'level', 'repository', 'revision', 'owner', 'pushdate'] as const)
    .filter((k) => flags[k] === undefined)
    .map((k) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} (or ${PUSH_ENV[k]})`);
  const taskId = flags.taskId ?? defaults.taskId;
  if (!taskId) missing.push(`--task-id (or ${PUSH_ENV.taskId})`);
  if (missing.length) {
    throw new ArchiveError('usage', `missing push parameters: ${missing.join(', ')}`);
  }
  const repository = flags.repository!.replace(/\/+$/, '');
  const repositoryType = flags.repositoryType ?? inferRepositoryType(repository);
  const p = makeParameters({
    project: flags.project!,
    level: flags.level! as Parameters['level'],
    head_repository: repository,
    repository_type: repositoryType as Parameters['repository_type'],
    head_rev: flags.revision!.toLowerCase(),
    base_rev: (flags.baseRevision ?? '').toLowerCase(),
    owner: flags.owner!,
    pushlog_id: flags.pushlogId ?? '0',
    pushdate: parsePushdate(flags.pushdate!),
    tasks_for: (flags.tasksFor ?? 'hg-push') as TasksFor,
    decision_task_id: taskId!,
    taskcluster_root_url: (flags.rootUrl ?? defaults.rootUrl ?? '').replace(/\/+$/, ''),
    ...(flags.headRef ? { head_ref: flags.headRef } : {}),
    ...(flags.baseRef ? { base_ref: flags.baseRef } : {}),
  });
  return validateParameters(p, 'push parameters');
}

export function validateParameters(value: unknown, file = 'parameters.yml'): Parameters {
  try {
    validateAgainst('parameters.json', value, { file });
  } catch (e) {
    if (e instanceof ArchiveError) throw new ArchiveError('usage', e.message, e.details);
    throw e;
  }
  return value as Parameters;
}

/** parameters.yml: keys sorted (as taskgraph writes it), strings quoted where YAML would retype them. */
export function dumpParameters(p: Parameters): string {
  return yaml.dump(p, { lineWidth: -1, noRefs: true, sortKeys: true });
}

/** The names parameters files used before they followed taskgraph's. */
const OLD_NAMES: Record<string, keyof Parameters> = {
  repository: 'head_repository',
  revision: 'head_rev',
  base_revision: 'base_rev',
};

/**
 * Old-style parameters (repository, revision, base_revision) read as today's, with the message
 * that says what to rename; undefined when `value` is not old-style.
 */
export function migrateOldParameters(
  value: Record<string, unknown>,
  file: string,
): { value: Record<string, unknown>; message: string } | undefined {
  const old = Object.keys(OLD_NAMES).filter((k) => k in value && !(OLD_NAMES[k]! in value));
  if (!old.length) return undefined;
  const out: Record<string, unknown> = { ...value };
  for (const k of old) {
    out[OLD_NAMES[k]!] = out[k];
    delete out[k];
  }
  return {
    value: out,
    message:
      `${file}: old-style parameter names, read as taskgraph's: ` +
      old.map((k) => `${k} → ${OLD_NAMES[k]}`).join(', ') +
      '. Rename them (or regenerate the file with `mozharness-archive decision --dry-run`); ' +
      'missing taskgraph parameters take their defaults.',
  };
}

export interface LoadParametersOptions {
  /** Fills decision_task_id when the file has none (a taskgraph parameters.yml). */
  taskId?: string;
  /** Fills taskcluster_root_url when the file has none. */
  rootUrl?: string;
  /** Told about old-style files (default: stderr). */
  warn?: (message: string) => void;
}

/**
 * Read a parameters file (YAML or JSON): a decision task's parameters.yml, a taskgraph one
 * (its extra keys kept, the project's own keys filled from `o`), or an old-style one (migrated,
 * with a message).
 */
export async function loadParametersFile(
  file: string,
  o: LoadParametersOptions = {},
): Promise<Parameters> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new ArchiveError('not-found', `cannot read parameters file ${file}: ${errorMessage(e)}`);
  }
  let value: unknown;
  try {
    value = yaml.load(text);
  } catch (e) {
    throw new ArchiveError('usage', `${file}: not valid YAML: ${errorMessage(e)}`);
  }
  return readParameters(value, file, o);
}

/**
 * Parameters from a parsed parameters file or artifact: today's (validated), a taskgraph one
 * (its extra keys kept, missing keys defaulted, the project's own filled from `o`), or an
 * old-style one (migrated, with a message).
 */
export function readParameters(
  value: unknown,
  file = 'parameters.yml',
  o: LoadParametersOptions = {},
): Parameters {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ArchiveError('usage', `${file}: not a mapping of parameters`);
  }
  let v = { ...(value as Record<string, unknown>) };
  const migrated = migrateOldParameters(v, file);
  if (migrated) {
    v = migrated.value;
    (o.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`)))(migrated.message);
  }
  if (typeof v.level === 'number') v.level = String(v.level);
  if (typeof v.pushlog_id === 'number') v.pushlog_id = String(v.pushlog_id);
  if (v.decision_task_id === undefined && o.taskId) v.decision_task_id = o.taskId;
  if (v.taskcluster_root_url === undefined && o.rootUrl !== undefined) {
    v.taskcluster_root_url = o.rootUrl.replace(/\/+$/, '');
  }
  const required = ['project', 'level', 'head_repository', 'repository_type', 'head_rev'];
  if (required.every((k) => k in v) && typeof v.pushdate === 'number') {
    const defaults = { base_rev: '', owner: 'nobody@mozilla.com', pushlog_id: '0' };
    v = makeParameters({ ...defaults, ...v } as PushParameters) as unknown as Record<
      string,
      unknown
    >;
  }
  return validateParameters(v, file);
}
