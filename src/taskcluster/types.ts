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
  payload: Record<string, any>;
  metadata: TaskMetadata;
  tags?: Record<string, string>;
  extra?: Record<string, any>;
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
  data: Record<string, any>;
  expires: string;
}

export interface InsertTaskRequest {
  taskId: string;
  rank: number;
  data: Record<string, any>;
  expires: string;
}
