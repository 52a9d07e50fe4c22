// Shared world for the lookup / promote / deploy tests: embedded Taskcluster services (real HTTP,
// real taskcluster-client) with their s3rver, a real Mercurial repository served by `hg serve`,
// and a minimal in-test archive worker (claimWork → buildArchive → S3 → reference artifacts →
// reportCompleted) used until/unless the real worker is wired; the index entries come from the
// tasks' `index.` routes, indexed by the embedded Index on completion, as upstream.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildArchive } from '../src/archive/index.js';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import { ArchiveStore, createS3Client, type S3Settings } from '../src/storage/index.js';
import { makeClients, queueClient, slugid, type Clients } from '../src/taskcluster/client.js';
import type { TaskDefinition } from '../src/taskcluster/types.js';
import {
  cacheNamespace as digestNamespace,
  latestNamespace,
  revisionNamespace,
  DEFAULT_ARCHIVE_ARTIFACT as ARCHIVE_ARTIFACT,
  METADATA_ARTIFACT,
} from '../src/contract/index.js';
import {
  createHgRepo,
  SAMPLE_SUBDIR,
  startHgServe,
  type HgServer,
  type SampleRepo,
} from './helpers/repos.js';

export const PROJECT = 'mozilla-central';
export const PREFIX = 'mozharness';

/** Scopes the lookup service's own client needs (status reads + on-demand archive tasks). */
export const LOOKUP_SCOPES = [
  'queue:status:*',
  'queue:get-task:*',
  'queue:create-task:low:proj-mozharness/archive',
  'queue:create-task:project:none',
  'queue:scheduler-id:-',
  `queue:route:index.${PREFIX}.v1.*`,
];

export interface BuiltArchive {
  taskId: string;
  revision: string;
  sha256: string;
  size: number;
  treeDigest: string;
  url: string;
}

export interface LookupWorld {
  emb: Embedded;
  tmp: string;
  repo: SampleRepo;
  hg: HgServer;
  s3Settings: S3Settings;
  store: ArchiveStore;
  root: Clients;
  anon: Clients;
  /** Clients with exactly LOOKUP_SCOPES. */
  lookup: Clients;
  /** Create + complete an archive task for revision index `i` of the sample repo. */
  archive(
    rev: string,
    opts?: { project?: string; latest?: boolean; level?: number; rank?: number },
  ): Promise<BuiltArchive>;
  /** Create an archive task (not completed). */
  createArchiveTask(rev: string, routes: string[], rank?: number): Promise<string>;
  /** Claim one pending archive task and run it like the worker would. Returns its id. */
  workOne(opts?: { complete?: boolean }): Promise<BuiltArchive | undefined>;
  close(): Promise<void>;
}

export async function startLookupWorld(variants = ['a', 'b', 'c']): Promise<LookupWorld> {
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'lookup-world-'));
  const emb = await startEmbedded({
    stateDir: path.join(tmp, 'state'),
    sweepIntervalMs: 0,
    claimWorkPollMs: 200,
  });
  const repo = await createHgRepo(path.join(tmp, 'repo'), { variants });
  const hg = await startHgServe(repo.path);
  const s3 = emb.s3!;
  const s3Settings: S3Settings = {
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    publicBaseUrl: s3.publicBaseUrl,
    forcePathStyle: true,
  };
  const store = new ArchiveStore(createS3Client(s3Settings), s3Settings);
  const root = makeClients({ rootUrl: emb.rootUrl, credentials: emb.credentials });
  const anon = makeClients({ rootUrl: emb.rootUrl });
  const lookup = makeClients({
    rootUrl: emb.rootUrl,
    credentials: emb.createClient('lookup-service', LOOKUP_SCOPES),
  });

  const definition = (rev: string, routes: string[], rank = 0): TaskDefinition => {
    const now = Date.now();
    return {
      taskQueueId: emb.archiveTaskQueueId,
      created: new Date(now).toISOString(),
      deadline: new Date(now + 3600_000).toISOString(),
      expires: new Date(now + 30 * 86400_000).toISOString(),
      routes,
      payload: {
        repository: hg.url,
        revision: rev,
        subdir: SAMPLE_SUBDIR,
        artifactName: ARCHIVE_ARTIFACT,
        maxRunTime: 600,
      },
      metadata: {
        name: `mozharness-archive ${rev.slice(0, 12)}`,
        description: 'test archive task',
        owner: 'lookup-tests',
        source: `${hg.url}/rev/${rev}`,
      },
      extra: { index: { rank } },
    };
  };

  const createArchiveTask = async (rev: string, routes: string[], rank = 0) => {
    const taskId = slugid();
    await root.queue.createTask(taskId, definition(rev, routes, rank));
    return taskId;
  };

  const workOne = async (opts: { complete?: boolean } = {}) => {
    const claim = await root.queue.claimWork(emb.archiveTaskQueueId, {
      workerGroup: 'lookup-tests',
      workerId: 'w1',
      tasks: 1,
    });
    const t = claim.tasks[0];
    if (!t) return undefined;
    const taskQueue = queueClient({ rootUrl: emb.rootUrl, credentials: t.credentials });
    const taskId = t.status.taskId;
    const payload = t.task.payload as { revision: string; repository: string; subdir: string };
    const out = path.join(tmp, `${taskId}.tar.gz`);
    const result = await buildArchive({
      source: { kind: 'hg', path: repo.path },
      revision: payload.revision,
      subdir: payload.subdir,
      out,
    });
    const put = await store.put(out, {
      ...result,
      repository: payload.repository,
      createdAt: new Date().toISOString(),
    });
    const expires = t.task.expires!;
    await taskQueue.createArtifact(taskId, t.runId, ARCHIVE_ARTIFACT, {
      storageType: 'reference',
      expires,
      contentType: 'application/gzip',
      url: put.url,
    });
    await taskQueue.createArtifact(taskId, t.runId, METADATA_ARTIFACT, {
      storageType: 'reference',
      expires,
      contentType: 'application/json',
      url: put.metadataUrl,
    });
    if (opts.complete !== false) await taskQueue.reportCompleted(taskId, t.runId);
    await fs.promises.rm(out, { force: true });
    return {
      taskId,
      revision: result.revision,
      sha256: result.sha256,
      size: result.size,
      treeDigest: result.treeDigest,
      url: put.url,
    };
  };

  const archive: LookupWorld['archive'] = async (rev, opts = {}) => {
    const project = opts.project ?? PROJECT;
    const level = opts.level ?? 3;
    // the digest namespace needs the digest first: build it once to know it (as the decision
    // task does), then route the task to it
    const probe = await buildArchive({
      source: { kind: 'hg', path: repo.path },
      revision: rev,
      subdir: SAMPLE_SUBDIR,
    });
    const routes = [
      `index.${revisionNamespace(PREFIX, project, rev)}`,
      `index.${digestNamespace(PREFIX, level, probe.treeDigest)}`,
    ];
    if (opts.latest !== false) routes.push(`index.${latestNamespace(PREFIX, project)}`);
    const taskId = await createArchiveTask(rev, routes, opts.rank ?? 0);
    const built = await workOne();
    if (!built || built.taskId !== taskId)
      throw new Error('the archive task was not the one claimed');
    return built;
  };

  return {
    emb,
    tmp,
    repo,
    hg,
    s3Settings,
    store,
    root,
    anon,
    lookup,
    archive,
    createArchiveTask,
    workOne,
    async close() {
      await hg.close().catch(() => undefined);
      await emb.close().catch(() => undefined);
      await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/**
 * Run the CLI in this process (much faster than spawning tsx): stdout/stderr captured, env
 * overrides applied for the duration. Returns main()'s exit code.
 */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { main } = await import('../src/cli/main.js');
  const saved: Record<string, string | undefined> = {};
  const base = {
    TASKCLUSTER_ROOT_URL: undefined,
    TASKCLUSTER_CLIENT_ID: undefined,
    TASKCLUSTER_ACCESS_TOKEN: undefined,
    TASKCLUSTER_PROXY_URL: undefined,
    ...env,
  };
  for (const [k, v] of Object.entries(base)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'mozharness-archive', ...args]);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
