// Phase 1: the decision parameters of one push. They come from command-line flags or the
// MOZHARNESS_ARCHIVE_* environment variables that .taskcluster.yml sets, are validated against
// schemas/parameters.json, and are written as the decision task's parameters.yml.
import fs from 'node:fs/promises';
import * as yaml from 'js-yaml';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { validateAgainst } from './schema.js';

import type { TasksFor } from './producers.js';
export { TASKS_FOR, type TasksFor } from './producers.js';

export interface Parameters {
  project: string;
  /** Trust level, a string as the hg-push producer gives it: '1' (try), '2', '3'. */
  level: '1' | '2' | '3';
  repository: string;
  repository_type: 'hg' | 'git';
  revision: string;
  /** '' when unknown (first push of a branch). */
  base_revision: string;
  owner: string;
  /** '0' when the producer has no pushlog (GitHub). */
  pushlog_id: string;
  /** Unix seconds. */
  pushdate: number;
  tasks_for: TasksFor;
  decision_task_id: string;
  taskcluster_root_url: string;
}

/** The push flags shared by render-tcyml, decision and graph, in commander's camelCase. */
export interface PushFlags {
  project?: string;
  level?: string;
  repository?: string;
  repositoryType?: string;
  revision?: string;
  baseRevision?: string;
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
  const p = {
    project: flags.project!,
    level: flags.level!,
    repository,
    repository_type: flags.repositoryType ?? inferRepositoryType(repository),
    revision: flags.revision!.toLowerCase(),
    base_revision: (flags.baseRevision ?? '').toLowerCase(),
    owner: flags.owner!,
    pushlog_id: flags.pushlogId ?? '0',
    pushdate: parsePushdate(flags.pushdate!),
    tasks_for: flags.tasksFor ?? 'hg-push',
    decision_task_id: taskId!,
    taskcluster_root_url: (flags.rootUrl ?? defaults.rootUrl ?? '').replace(/\/+$/, ''),
  };
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

const KEY_ORDER: Array<keyof Parameters> = [
  'project',
  'level',
  'tasks_for',
  'repository',
  'repository_type',
  'revision',
  'base_revision',
  'owner',
  'pushlog_id',
  'pushdate',
  'decision_task_id',
  'taskcluster_root_url',
];

/** parameters.yml: keys in a fixed order, strings quoted where YAML would retype them. */
export function dumpParameters(p: Parameters): string {
  const ordered: Record<string, unknown> = {};
  for (const k of KEY_ORDER) ordered[k] = p[k];
  return yaml.dump(ordered, { lineWidth: -1, noRefs: true });
}

/** Read a parameters file (YAML or JSON), e.g. a decision task's parameters.yml. */
export async function loadParametersFile(file: string): Promise<Parameters> {
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
  if (value && typeof value === 'object' && typeof (value as any).level === 'number') {
    (value as any).level = String((value as any).level);
  }
  return validateParameters(value, file);
}
