// The mozharness-archive worker: claims archive tasks from one task queue, builds, tests, stores
// and publishes the harness archive. Typed core for the CLI, `npm start` and tests.
export { runWorker, type WorkerDeps, type WorkerSummary } from './worker.js';
export {
  runOneClaim,
  classify,
  defaultEngine,
  TaskStop,
  type ArchiveEngine,
  type ArchiveStoreLike,
  type Resolution,
  type Step,
  type StepEvent,
  type TaskDeps,
  type TaskResult,
} from './run-task.js';
export {
  loadWorkerConfig,
  validateWorkerConfig,
  configFromEnv,
  describeConfig,
  type WorkerConfig,
  type WorkerFlags,
  type WorkerLimits,
  type WorkerS3Settings,
  type WorkerManagerSettings,
} from './config.js';
export {
  Registration,
  readStaticSecret,
  reregisterDelayMs,
  defaultWorkerManager,
  type WorkerManagerFactory,
} from './registration.js';
export {
  checkPayload,
  isAllowedRepository,
  METADATA_ARTIFACT,
  LOG_ARTIFACT,
  LIVE_LOG_ARTIFACT,
  PAYLOAD_ERROR_ARTIFACT,
  type ArchivePayload,
  type TestSpec,
} from './payload.js';
export {
  S3TaskLogStore,
  taskLogKey,
  publicBaseUrl,
  workerS3Client,
  type TaskLogStore,
} from './log-store.js';
export { testEnvironment } from './test-command.js';
export { WorkerMetrics } from './metrics.js';
