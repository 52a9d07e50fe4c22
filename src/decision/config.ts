// The in-tree configuration: taskcluster/config.yml and taskcluster/kinds/<kind>/kind.yml,
// validated against schemas/config.json and schemas/kind.json. Loading turns the YAML into typed,
// normalised objects; nothing here knows about a particular push.
import fs from 'node:fs/promises';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { ARCHIVE_KIND } from '../contract/index.js';
import { findPayloadBuilder, payloadBuilders } from './payloads.js';
import { validateAgainst } from './schema.js';
import type { Config as ConfigYml } from '../generated/index.js';
import type { Archive, DownstreamFile, DownstreamTask } from '../generated/kind.js';

/** A worker implementation with a registered payload builder (src/decision/payloads.ts). */
export type WorkerImplementation = string;

export interface WorkerAlias {
  implementation: WorkerImplementation;
  /** May contain `{level}`. */
  taskQueueId: string;
  image?: string;
}

export interface GraphConfig {
  trustDomain: string;
  indexPrefix: string;
  projectId?: string;
  rootUrl?: string;
  priority: string;
  deadlineAfter: string;
  expiresAfter: string;
  workers: Record<string, WorkerAlias>;
  treeherderGroupNames: Record<string, string>;
  publicBaseUrl?: string;
  /** The archive's artifacts: the tar.gz and, when the archive workers publish it, the zip. */
  archive: { artifactName: string; zipArtifactName?: string; expiresAfter: string };
}

export interface ArchiveKind {
  name: typeof ARCHIVE_KIND;
  file: string;
  subdir: string;
  workerAlias: string;
  description: string;
  maxRunTime: number;
  expiresAfter?: string;
  treeherder: { symbol: string; platform: string; tier: 1 | 2 | 3 };
  test: { command: string[]; maxRunTime?: number; env: Record<string, string> };
}

export interface DownstreamTaskSpec {
  name: string;
  description: string;
  /** dependency name → label; `mozharness` is the archive. */
  dependencies: Record<string, string>;
  workerAlias: string;
  maxRunTime: number;
  runOnProjects: string[];
  env: Record<string, string>;
  treeherder: {
    symbol: string;
    platform: string;
    kind: 'build' | 'test' | 'other';
    tier: 1 | 2 | 3;
    collection?: string;
  };
  mozharness: { script: string; config: string[]; extraArgs: string[] };
}

export interface DownstreamKind {
  name: string;
  file: string;
  kindDependencies: string[];
  tasks: DownstreamTaskSpec[];
}

export interface Kinds {
  archive: ArchiveKind;
  downstream: DownstreamKind[];
}

async function readYaml(file: string, shown: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new ArchiveError('invalid-config', `${shown}: cannot read: ${errorMessage(e)}`, {
      file: shown,
    });
  }
  try {
    return yaml.load(text);
  } catch (e) {
    throw new ArchiveError('invalid-config', `${shown}: not valid YAML: ${errorMessage(e)}`, {
      file: shown,
    });
  }
}

/** Normalise an already-parsed config.yml object. */
export function parseGraphConfig(raw: unknown, file = 'taskcluster/config.yml'): GraphConfig {
  validateAgainst('config.json', raw, { file });
  const c = raw as ConfigYml;
  const workers: Record<string, WorkerAlias> = {};
  for (const [alias, w] of Object.entries(c.workers.aliases)) {
    if (!w) continue;
    workers[alias] = {
      implementation: w.implementation,
      taskQueueId: w['task-queue-id'],
      ...(w.image ? { image: w.image } : {}),
    };
    const builder = findPayloadBuilder(w.implementation);
    if (!builder) {
      throw new ArchiveError(
        'invalid-config',
        `${file}: workers.aliases.${alias}.implementation: '${w.implementation}' is not a known worker implementation (known: ${payloadBuilders()
          .map((b) => b.implementation)
          .join(', ')})`,
        { file },
      );
    }
    for (const field of builder.requiredAliasFields) {
      if (workers[alias]![field] === undefined) {
        throw new ArchiveError(
          'invalid-config',
          `${file}: workers.aliases.${alias}.${field}: is required for ${w.implementation}`,
          { file },
        );
      }
    }
  }
  return {
    trustDomain: c['trust-domain'],
    indexPrefix: c['index-prefix'],
    projectId: c['project-id'],
    rootUrl: c['taskcluster-root-url'],
    priority: c['task-priority'] ?? 'low',
    deadlineAfter: c['task-deadline-after'] ?? '1 day',
    expiresAfter: c['task-expires-after'] ?? '28 days',
    workers,
    treeherderGroupNames: c.treeherder?.['group-names'] ?? {},
    publicBaseUrl: c.storage?.['public-base-url'],
    archive: {
      artifactName: c.archive['artifact-name'],
      ...(c.archive['zip-artifact-name']
        ? { zipArtifactName: c.archive['zip-artifact-name'] }
        : {}),
      expiresAfter: c.archive['expires-after'] ?? '1 year',
    },
  };
}

export async function loadGraphConfig(root: string): Promise<GraphConfig> {
  const file = path.join(root, 'config.yml');
  return parseGraphConfig(
    await readYaml(file, shownPath(root, 'config.yml')),
    shownPath(root, 'config.yml'),
  );
}

function shownPath(root: string, rel: string): string {
  return path.join(path.basename(root), rel);
}

function checkAlias(config: GraphConfig, alias: string, file: string, task?: string): void {
  if (!config.workers[alias]) {
    throw new ArchiveError(
      'invalid-config',
      `${file}${task ? `: task '${task}'` : ''}: worker-alias: '${alias}' is not in config.yml workers.aliases (known: ${Object.keys(config.workers).join(', ')})`,
      { file, task },
    );
  }
}

function archiveImplementations(): string {
  return payloadBuilders()
    .filter((b) => b.archive)
    .map((b) => b.implementation)
    .join(', ');
}

export function parseArchiveKind(raw: unknown, config: GraphConfig, file: string): ArchiveKind {
  validateAgainst('kind.json#/definitions/archive', raw, { file });
  const k = raw as Archive;
  checkAlias(config, k['worker-alias'], file);
  if (!findPayloadBuilder(config.workers[k['worker-alias']]!.implementation)?.archive) {
    throw new ArchiveError(
      'invalid-config',
      `${file}: worker-alias: '${k['worker-alias']}' must be a worker that builds archives (${archiveImplementations()})`,
      { file },
    );
  }
  if (k.subdir.split('/').some((s: string) => s === '..' || s === '.' || s === '')) {
    throw new ArchiveError(
      'invalid-config',
      `${file}: subdir: '${k.subdir}' is not a clean relative path`,
      {
        file,
      },
    );
  }
  return {
    name: ARCHIVE_KIND,
    file,
    subdir: k.subdir,
    workerAlias: k['worker-alias'],
    description: k.description ?? `Archive of ${k.subdir}`,
    maxRunTime: k['max-run-time'] ?? 1800,
    expiresAfter: k['expires-after'],
    treeherder: { tier: 1, ...k.treeherder },
    test: {
      command: k.test.command,
      ...(k.test['max-run-time'] ? { maxRunTime: k.test['max-run-time'] } : {}),
      env: k.test.env ?? {},
    },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** task-defaults merged under each task: objects merge recursively, everything else replaces. */
export function mergeDefaults(defaults: unknown, task: unknown): unknown {
  if (!isObject(defaults) || !isObject(task)) return task === undefined ? defaults : task;
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(task)) out[k] = mergeDefaults(defaults[k], v);
  return out;
}

export function parseDownstreamKind(
  name: string,
  raw: unknown,
  config: GraphConfig,
  file: string,
): DownstreamKind {
  validateAgainst('kind.json#/definitions/downstream-file', raw, { file });
  const k = raw as DownstreamFile;
  const tasks: DownstreamTaskSpec[] = [];
  for (const [taskName, t] of Object.entries(k.tasks)) {
    const merged = mergeDefaults(k['task-defaults'] ?? {}, t) as DownstreamTask;
    validateAgainst('kind.json#/definitions/downstream-task', merged, { file, task: taskName });
    checkAlias(config, merged['worker-alias'], file, taskName);
    const impl = config.workers[merged['worker-alias']]!.implementation;
    if (!findPayloadBuilder(impl)?.downstream) {
      throw new ArchiveError(
        'invalid-config',
        `${file}: task '${taskName}': worker-alias: '${merged['worker-alias']}' is a ${impl} worker, which runs no downstream tasks; downstream tasks need ${payloadBuilders()
          .filter((b) => b.downstream)
          .map((b) => b.implementation)
          .join(' or ')}`,
        { file, task: taskName },
      );
    }
    tasks.push({
      name: taskName,
      description: merged.description,
      dependencies: merged.dependencies,
      workerAlias: merged['worker-alias'],
      maxRunTime: merged['max-run-time'] ?? 3600,
      runOnProjects: merged['run-on-projects'] ?? ['all'],
      env: merged.env ?? {},
      treeherder: { tier: 1, ...merged.treeherder },
      mozharness: {
        script: merged.mozharness.script,
        config: merged.mozharness.config,
        extraArgs: merged.mozharness['extra-args'] ?? [],
      },
    });
  }
  return { name, file, kindDependencies: k['kind-dependencies'] ?? [], tasks };
}

/** Load every kind under `<root>/kinds/`. The archive kind must exist. */
export async function loadKinds(root: string, config: GraphConfig): Promise<Kinds> {
  const dir = path.join(root, 'kinds');
  let names: string[];
  try {
    names = (await fs.readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `${shownPath(root, 'kinds')}: cannot list: ${errorMessage(e)}`,
    );
  }
  if (!names.includes(ARCHIVE_KIND)) {
    throw new ArchiveError(
      'invalid-config',
      `${shownPath(root, 'kinds')}: the ${ARCHIVE_KIND} kind is missing`,
    );
  }
  let archive: ArchiveKind | undefined;
  const downstream: DownstreamKind[] = [];
  for (const name of names) {
    const shown = shownPath(root, `kinds/${name}/kind.yml`);
    const raw = await readYaml(path.join(dir, name, 'kind.yml'), shown);
    if (name === ARCHIVE_KIND) archive = parseArchiveKind(raw, config, shown);
    else downstream.push(parseDownstreamKind(name, raw, config, shown));
  }
  return { archive: archive!, downstream };
}
