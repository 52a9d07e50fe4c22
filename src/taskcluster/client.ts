// A small typed wrapper over `taskcluster-client@87.1.3`, which ships no types. Production code
// receives these clients as arguments, so tests can hand it clients pointed at the embedded
// services (src/local) over real HTTP.
import tc from 'taskcluster-client';
import type {
  ArtifactLocation,
  ArtifactRequest,
  ClaimWorkResponse,
  CreateArtifactResponse,
  ListArtifactsResponse,
  ListDependentTasksResponse,
  ListNamespacesResponse,
  ListTaskGroupResponse,
  IndexedTask,
  InsertTaskRequest,
  TaskDefinition,
  TaskReclaimResponse,
  TaskStatusResponse,
  WorkerErrorReport,
} from './types.js';

import type { ClientOptions } from './options.js';
export { optionsFromEnv, type ClientOptions, type Credentials } from './options.js';

type Query = Record<string, string | number | undefined>;
/** A method of a client, as buildUrl and buildSignedUrl take it. */
type Method = (...args: never[]) => Promise<unknown>;

interface BaseClient {
  buildUrl(method: Method, ...args: unknown[]): string;
  buildSignedUrl(method: Method, ...args: unknown[]): string;
}

export interface QueueClient extends BaseClient {
  createTask(taskId: string, task: TaskDefinition): Promise<TaskStatusResponse>;
  task(taskId: string): Promise<TaskDefinition>;
  status(taskId: string): Promise<TaskStatusResponse>;
  listTaskGroup(taskGroupId: string, query?: Query): Promise<ListTaskGroupResponse>;
  listDependentTasks(taskId: string, query?: Query): Promise<ListDependentTasksResponse>;
  claimWork(
    taskQueueId: string,
    body: { workerGroup: string; workerId: string; tasks: number },
  ): Promise<ClaimWorkResponse>;
  reclaimTask(taskId: string, runId: number): Promise<TaskReclaimResponse>;
  reportCompleted(taskId: string, runId: number): Promise<TaskStatusResponse>;
  reportFailed(taskId: string, runId: number): Promise<TaskStatusResponse>;
  reportException(
    taskId: string,
    runId: number,
    body: { reason: string },
  ): Promise<TaskStatusResponse>;
  rerunTask(taskId: string): Promise<TaskStatusResponse>;
  cancelTask(taskId: string): Promise<TaskStatusResponse>;
  scheduleTask(taskId: string): Promise<TaskStatusResponse>;
  createArtifact(
    taskId: string,
    runId: number,
    name: string,
    body: ArtifactRequest,
  ): Promise<CreateArtifactResponse>;
  finishArtifact(
    taskId: string,
    runId: number,
    name: string,
    body: { uploadId: string },
  ): Promise<void>;
  getArtifact(taskId: string, runId: number, name: string): Promise<ArtifactAnswer>;
  getLatestArtifact(taskId: string, name: string): Promise<ArtifactAnswer>;
  listArtifacts(taskId: string, runId: number, query?: Query): Promise<ListArtifactsResponse>;
  listLatestArtifacts(taskId: string, query?: Query): Promise<ListArtifactsResponse>;
  artifact(taskId: string, runId: number, name: string): Promise<ArtifactLocation>;
  latestArtifact(taskId: string, name: string): Promise<ArtifactLocation>;
  getTaskGroup(taskGroupId: string): Promise<Record<string, unknown>>;
  pendingTasks(taskQueueId: string): Promise<{ taskQueueId: string; pendingTasks: number }>;
  taskQueueCounts(
    taskQueueId: string,
  ): Promise<{ taskQueueId: string; pendingTasks: number; claimedTasks: number }>;
  artifactInfo(taskId: string, runId: number, name: string): Promise<Record<string, unknown>>;
  latestArtifactInfo(taskId: string, name: string): Promise<Record<string, unknown>>;
  use(options: Partial<ClientOptions>): QueueClient;
}

/**
 * What the client answers for an artifact: the `{url}` of the queue's redirect (s3, object and
 * reference artifacts), or the artifact's own JSON when the client followed it.
 */
export interface ArtifactAnswer {
  url?: string;
  [field: string]: unknown;
}

export interface IndexClient extends BaseClient {
  findTask(namespace: string): Promise<IndexedTask>;
  findTasksAtIndex(
    body: { indexes: string[] },
    query?: Query,
  ): Promise<{ tasks: IndexedTask[]; continuationToken?: string }>;
  listNamespaces(namespace: string, query?: Query): Promise<ListNamespacesResponse>;
  listTasks(
    namespace: string,
    query?: Query,
  ): Promise<{ tasks: IndexedTask[]; continuationToken?: string }>;
  insertTask(namespace: string, body: InsertTaskRequest): Promise<IndexedTask>;
  findArtifactFromTask(namespace: string, name: string): Promise<unknown>;
  use(options: Partial<ClientOptions>): IndexClient;
}

export interface HooksClient extends BaseClient {
  /** The created task (`{}` when the hook's template made no task). */
  triggerHook(
    hookGroupId: string,
    hookId: string,
    payload: unknown,
  ): Promise<{ taskId?: string; status?: { taskId: string } }>;
  hook(hookGroupId: string, hookId: string): Promise<Record<string, unknown>>;
  use(options: Partial<ClientOptions>): HooksClient;
}

export interface AuthClient extends BaseClient {
  currentScopes(): Promise<{ scopes: string[] }>;
  expandScopes(body: { scopes: string[] }): Promise<{ scopes: string[] }>;
  use(options: Partial<ClientOptions>): AuthClient;
}

/** Worker Manager, as a worker of the `static` provider uses it. */
export interface WorkerManagerClient extends BaseClient {
  registerWorker(body: {
    workerPoolId: string;
    providerId: string;
    workerGroup: string;
    workerId: string;
    workerIdentityProof: Record<string, unknown>;
  }): Promise<RegisterWorkerResponse>;
  reregisterWorker(body: {
    workerPoolId: string;
    workerGroup: string;
    workerId: string;
    secret: string;
  }): Promise<Omit<RegisterWorkerResponse, 'workerConfig'>>;
  reportWorkerError(
    workerPoolId: string,
    body: WorkerErrorReport,
  ): Promise<Record<string, unknown>>;
  worker(
    workerPoolId: string,
    workerGroup: string,
    workerId: string,
  ): Promise<Record<string, unknown>>;
  use(options: Partial<ClientOptions>): WorkerManagerClient;
}

export interface RegisterWorkerResponse {
  expires: string;
  credentials: { clientId: string; accessToken: string; certificate?: string };
  workerConfig?: Record<string, unknown>;
  secret: string;
}

export interface Clients {
  queue: QueueClient;
  index: IndexClient;
  hooks: HooksClient;
  auth: AuthClient;
}

function options(o: ClientOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { rootUrl: o.rootUrl };
  if (o.credentials) out.credentials = o.credentials;
  if (o.authorizedScopes) out.authorizedScopes = o.authorizedScopes;
  if (o.retries !== undefined) out.retries = o.retries;
  if (o.timeout !== undefined) out.timeout = o.timeout;
  if (o.maxDelay !== undefined) out.maxDelay = o.maxDelay;
  return out;
}

export function queueClient(o: ClientOptions): QueueClient {
  return new tc.Queue(options(o)) as QueueClient;
}
export function indexClient(o: ClientOptions): IndexClient {
  return new tc.Index(options(o)) as IndexClient;
}
export function hooksClient(o: ClientOptions): HooksClient {
  return new tc.Hooks(options(o)) as HooksClient;
}
export function authClient(o: ClientOptions): AuthClient {
  return new tc.Auth(options(o)) as AuthClient;
}

/** Without credentials it can only registerWorker (the identity proof is the authentication). */
export function workerManagerClient(o: ClientOptions): WorkerManagerClient {
  return new tc.WorkerManager(options(o)) as WorkerManagerClient;
}

export function makeClients(o: ClientOptions): Clients {
  return {
    queue: queueClient(o),
    index: indexClient(o),
    hooks: hooksClient(o),
    auth: authClient(o),
  };
}

/**
 * Options from the Taskcluster environment variables, as every Taskcluster tool reads them:
 * TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN, TASKCLUSTER_CERTIFICATE,
 * and TASKCLUSTER_PROXY_URL (taskcluster-proxy inside a task: no credentials needed).
 */
export const fromNow: (offset: string, reference?: Date) => Date = tc.fromNow;
export const slugid: () => string = tc.slugid;
