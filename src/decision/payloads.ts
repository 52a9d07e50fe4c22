// Payload builders, one per worker implementation, in one registry (as taskgraph's
// @payload_builder): each names the schema its payloads conform to, the fields its worker aliases
// need in taskcluster/config.yml, and builds the payload of the tasks it can run. The config
// loader refuses an implementation that is not registered here, so a task can never fall through
// to another worker's payload; local replay runs tasks by the same name (the task's
// `worker-implementation` tag).
import { ArchiveError } from '../util/errors.js';
import { deepFreeze } from '../util/freeze.js';
import type { ArchiveKind, DownstreamTaskSpec, WorkerAlias } from './config.js';
import type { Parameters } from './parameters.js';

/** What a downstream payload is built from. */
export interface DownstreamPayloadInput {
  spec: DownstreamTaskSpec;
  worker: WorkerAlias;
  /** The environment every downstream task gets (source repository, build URL, the kind's env). */
  env: Record<string, string>;
  /** `--config-file <cfg>` for each config, then the extra arguments. */
  args: string[];
  /** The archive file the task fetches: its task, format, artifact, queue URL and sha256. */
  archive: {
    taskId: string;
    format: 'zip' | 'tar.gz';
    artifact: string;
    url: string;
    sha256: string;
  };
  /** Expiry of the task's own artifacts (logs). */
  expires: string;
}

/** What the archive task's payload is built from. */
export interface ArchivePayloadInput {
  kind: ArchiveKind;
  params: Parameters;
  treeDigest: string;
  /** The predicted sha256 of the tar.gz and of the zip (when the task publishes one). */
  sha256: string;
  zipSha256?: string;
  artifactName: string;
}

export interface PayloadBuilder {
  /** The worker implementation (`implementation` of a worker alias, the `worker-implementation` tag). */
  implementation: string;
  /** The schema the payloads conform to: an upstream schema id or one of this project's schemas/. */
  schema: string;
  /** Fields a worker alias of this implementation must set in config.yml. */
  requiredAliasFields: Array<keyof WorkerAlias>;
  /** Builds the archive task's payload (only the archive worker). */
  archive?: (input: ArchivePayloadInput) => Record<string, unknown>;
  /** Builds a downstream task's payload (workers that run builds and tests). */
  downstream?: (input: DownstreamPayloadInput) => Record<string, unknown>;
}

export const RUN_MOZHARNESS = 'taskcluster/scripts/run-mozharness.sh';

/**
 * The variables Firefox's test scripts (test-linux.sh) run mozharness from: the script under
 * `scripts/` and the configs under `configs/`, one word each.
 */
function mozharnessEnv(spec: DownstreamTaskSpec): Record<string, string> {
  const script = spec.mozharness.script.replace(/^scripts\//, '');
  return {
    MOZHARNESS_SCRIPT: script,
    ...(spec.mozharness.config.length
      ? { MOZHARNESS_CONFIG: spec.mozharness.config.join(' ') }
      : {}),
  };
}

/**
 * `build(key)`, built again only when the key changes: the parts of a payload that are the same
 * for every task of a graph (the log artifacts, the archive mount) are one frozen object shared
 * by all its tasks instead of tens of thousands of copies.
 */
function lastOf<K, V extends object>(build: (key: K) => V): (key: K) => V {
  let last: { key: K; value: V } | undefined;
  return (key) => {
    if (!last || last.key !== key) last = { key, value: deepFreeze(build(key)) };
    return last.value;
  };
}

const dockerLogs = lastOf((expires: string) => ({
  'public/logs': { type: 'directory', path: '/builds/worker/logs', expires },
}));

const genericLogs = lastOf((expires: string) => [
  { type: 'directory', path: 'logs', name: 'public/logs', expires },
]);

const genericMounts = lastOf((archive: DownstreamPayloadInput['archive']) => [
  {
    directory: 'mozharness',
    format: archive.format,
    content: { taskId: archive.taskId, artifact: archive.artifact, sha256: archive.sha256 },
  },
]);

const archiveWorker: PayloadBuilder = {
  implementation: 'mozharness-archive',
  schema: 'worker-payload.json',
  requiredAliasFields: [],
  archive: ({ kind, params, treeDigest, sha256, zipSha256, artifactName }) => ({
    repository: params.head_repository,
    repositoryType: params.repository_type,
    revision: params.head_rev,
    subdir: kind.subdir,
    treeDigest,
    sha256,
    ...(zipSha256 ? { zipSha256 } : {}),
    test: {
      command: kind.test.command,
      ...(kind.test.maxRunTime ? { maxRunTime: kind.test.maxRunTime } : {}),
      env: kind.test.env,
    },
    artifactName,
    maxRunTime: kind.maxRunTime,
  }),
};

const dockerWorker: PayloadBuilder = {
  implementation: 'docker-worker',
  schema: '/schemas/docker-worker/v1/payload.json',
  requiredAliasFields: ['image'],
  downstream: ({ spec, worker, env, args, archive, expires }) => ({
    image: worker.image!,
    command: [RUN_MOZHARNESS, spec.mozharness.script, ...args],
    env: {
      ...env,
      ...mozharnessEnv(spec),
      MOZHARNESS_URL: archive.url,
      MOZHARNESS_SHA256: archive.sha256,
    },
    maxRunTime: spec.maxRunTime,
    artifacts: dockerLogs(expires),
  }),
};

const genericWorker: PayloadBuilder = {
  implementation: 'generic-worker',
  schema: '/schemas/generic-worker/multiuser_posix.json',
  requiredAliasFields: [],
  downstream: ({ spec, env, args, archive, expires }) => ({
    command: [['python3', `mozharness/${spec.mozharness.script}`, ...args]],
    maxRunTime: spec.maxRunTime,
    env,
    mounts: genericMounts(archive),
    artifacts: genericLogs(expires),
  }),
};

const builders = new Map<string, PayloadBuilder>();

/** Register a worker implementation's payload builder (the built-in ones are registered below). */
export function registerPayloadBuilder(b: PayloadBuilder): void {
  if (builders.has(b.implementation)) {
    throw new ArchiveError('internal', `payload builder ${b.implementation} is registered twice`);
  }
  builders.set(b.implementation, b);
}

/** Remove a registered builder (tests that register a fake implementation clean up with it). */
export function unregisterPayloadBuilder(implementation: string): void {
  builders.delete(implementation);
}

for (const b of [archiveWorker, dockerWorker, genericWorker]) registerPayloadBuilder(b);

/** Every registered implementation, in registration order. */
export function payloadBuilders(): PayloadBuilder[] {
  return [...builders.values()];
}

/** The builder of an implementation, or undefined when none is registered. */
export function findPayloadBuilder(implementation: string): PayloadBuilder | undefined {
  return builders.get(implementation);
}

/** The builder of an implementation; an internal error when it is not registered. */
export function payloadBuilder(implementation: string): PayloadBuilder {
  const b = builders.get(implementation);
  if (!b) {
    throw new ArchiveError(
      'internal',
      `no payload builder for worker implementation '${implementation}' (known: ${[...builders.keys()].join(', ')})`,
    );
  }
  return b;
}
