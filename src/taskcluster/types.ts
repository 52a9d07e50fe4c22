// Shapes of the Taskcluster objects this project reads and writes. They follow the upstream
// schemas (queue/v1/task.json, task-status.json, index/v1/*). Only the fields we use are typed
// strictly; everything else passes through.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

export interface TaskMetadata {
  name: string;
  description: string;
  owner: string;
  source: string;
}

/** A task definition as given to `queue.createTask` (create-task-request.json). */
export interface TaskDefinition {
  taskQueueId?: string;
  provisionerId?: string;
  workerType?: string;
  schedulerId?: string;
  projectId?: string;
  taskGroupId?: string;
  dependencies?: string[];
  requires?: 'all-completed' | 'all-resolved';
  routes?: string[];
  priority?: string;
  retries?: number;
  created: string;
  deadline: string;
  expires?: string;
  scopes?: string[];
  payload: Record<string, unknown>;
  metadata: TaskMetadata;
  tags?: Record<string, string>;
  extra?: Record<string, unknown>;
}

export type TaskState =
  'unscheduled' | 'pending' | 'running' | 'completed' | 'failed' | 'exception';

export interface TaskRun {
  runId: number;
  state: 'pending' | 'running' | 'completed' | 'failed' | 'exception';
  reasonCreated: string;
  reasonResolved?: string;
  workerGroup?: string;
  workerId?: string;
  takenUntil?: string;
  scheduled: string;
  started?: string;
  resolved?: string;
}

export interface TaskStatus {
  taskId: string;
  provisionerId: string;
  workerType: string;
  taskQueueId: string;
  schedulerId: string;
  projectId: string;
  taskGroupId: string;
  deadline: string;
  expires: string;
  retriesLeft: number;
  state: TaskState;
  runs: TaskRun[];
}

export interface TaskStatusResponse {
  status: TaskStatus;
}

export interface TaskCredentials {
  clientId: string;
  accessToken: string;
  certificate: string;
}

export interface ClaimedTask {
  status: TaskStatus;
  runId: number;
  workerGroup: string;
  workerId: string;
  takenUntil: string;
  task: TaskDefinition & { taskQueueId: string; provisionerId: string; workerType: string };
  credentials: TaskCredentials;
}

export interface ClaimWorkResponse {
  tasks: ClaimedTask[];
}

export interface TaskReclaimResponse {
  status: TaskStatus;
  runId: number;
  workerGroup: string;
  workerId: string;
  takenUntil: string;
  credentials: TaskCredentials;
}

export type ArtifactRequest =
  | { storageType: 'reference'; expires: string; contentType: string; url: string }
  | { storageType: 'link'; expires: string; contentType: string; artifact: string }
  | { storageType: 'error'; expires: string; reason: string; message: string };

export interface IndexedTask {
  namespace: string;
  taskId: string;
  rank: number;
  data: Record<string, unknown>;
  expires: string;
}

export interface InsertTaskRequest {
  taskId: string;
  rank: number;
  data: Record<string, unknown>;
  expires: string;
}

/** One task of a task group or of a task's dependents (list-task-group-response.json). */
export interface TaskWithStatus {
  status: TaskStatus;
  task: TaskDefinition;
}

export interface ListTaskGroupResponse {
  taskGroupId: string;
  tasks: TaskWithStatus[];
  continuationToken?: string;
}

export interface ListDependentTasksResponse {
  taskId: string;
  tasks: TaskWithStatus[];
  continuationToken?: string;
}

/** post-artifact-response.json, by storage type (the fields this project reads). */
export type CreateArtifactResponse =
  | { storageType: 's3'; putUrl: string; expires: string; contentType: string }
  | {
      storageType: 'object';
      name: string;
      projectId: string;
      uploadId: string;
      expires: string;
      credentials: { clientId: string; accessToken: string; certificate?: string };
    }
  | { storageType: 'reference' | 'link' | 'error' };

/** One artifact of a run (list-artifacts-response.json). */
export interface ArtifactListEntry {
  storageType: string;
  name: string;
  expires: string;
  contentType: string;
}

export interface ListArtifactsResponse {
  artifacts: ArtifactListEntry[];
  continuationToken?: string;
}

/** get-artifact-response.json: where an artifact's content is, by storage type. */
export type ArtifactLocation =
  | { storageType: 'object'; name: string; credentials: Record<string, string> }
  | { storageType: 's3' | 'reference'; url: string }
  | { storageType: 'error'; message: string; reason: string };

export interface ListNamespacesResponse {
  namespaces: Array<{ namespace: string; name: string; expires: string }>;
  continuationToken?: string;
}

/** report-worker-error-request.json: an error a worker reports about itself to its pool. */
export interface WorkerErrorReport {
  workerGroup: string;
  workerId: string;
  kind: string;
  title: string;
  description: string;
  extra: Record<string, unknown>;
}
