// What a run is given (the store, the engine, clients, hooks) and what it reports.
import type { KeyObject } from 'node:crypto';
import type {
  ArchiveMetadata,
  ArchiveResult,
  BuildOptions,
  Limits,
  SourceSpec,
} from '../../archive/index.js';
import type { PutResult } from '../../storage/store.js';
import type { Credentials, IndexClient, QueueClient } from '../../taskcluster/client.js';
import type { Logger } from '../../util/log.js';
import type { TaskLogStore } from '../log-store.js';
import type { Isolation } from '../test-command.js';
import type { Resolution, Step } from './outcome.js';

/** Where the store put an archive (ArchiveStore.put's answer, less the metadata key). */
export type ArchivePlacement = Omit<PutResult, 'metadataKey'>;

/** What the worker needs of the S3 store (src/storage ArchiveStore satisfies it). */
export interface ArchiveStoreLike {
  put(
    file: string,
    meta: ArchiveMetadata & Record<string, unknown>,
    opts?: {
      onProgress?: (sent: number, total: number) => void;
      signal?: AbortSignal;
      zipFile?: string;
    },
  ): Promise<ArchivePlacement>;
  verify(sha256: string, size: number, zip?: { sha256: string; size: number }): Promise<boolean>;
}

/** The archive engine functions the worker calls (the real ones by default). */
export interface ArchiveEngine {
  buildArchive(opts: BuildOptions & { out?: string; zipOut?: string }): Promise<ArchiveResult>;
  parseSource(source: string, hint?: 'hg' | 'git'): SourceSpec;
  unpackArchive(
    file: string,
    dest: string,
    opts?: { sha256?: string; limits?: Partial<Limits> },
  ): Promise<{ files: number; bytes: number }>;
}

export interface TaskDeps {
  store: ArchiveStoreLike;
  logs: TaskLogStore;
  log?: Logger;
  engine?: ArchiveEngine;
  /** Queue client for a run's temporary credentials (default: taskcluster-client at config.rootUrl). */
  taskQueue?: (credentials: Credentials) => QueueClient;
  /** Index client for a run's temporary credentials. */
  taskIndex?: (credentials: Credentials) => IndexClient;
  /** Called after each step (tests and the benchmark observe progress and step durations). */
  onStep?: (event: StepEvent) => void;
  /** How test commands are confined (default: resolved from config.taskUser/testIsolation). */
  isolation?: Isolation;
  /** Signs the chain of trust of completed runs (default: read from config.chainOfTrustSigningKey). */
  signingKey?: KeyObject;
}

export interface StepEvent {
  taskId: string;
  runId: number;
  step: Step;
  ms: number;
}

export interface TaskResult {
  taskId: string;
  runId: number;
  resolution: Resolution;
  archive?: ArchiveResult & ArchivePlacement;
  /** Seconds spent in each step. */
  timings: Partial<Record<Step, number>>;
  /** Bytes the archive's source transferred from the network (the subdir archive, git packs). */
  fetchedBytes?: number;
  /** When the worker started on the claim, and when the run was resolved (or abandoned). */
  startedAt: string;
  finishedAt?: string;
}

/** The stored archive of a run: what was built and where the store put it. */
export type StoredArchive = NonNullable<TaskResult['archive']>;

/** A built archive; the worker always makes the zip alongside the tar.gz. */
export type BuiltArchive = ArchiveResult & { zip: { sha256: string; size: number } };
