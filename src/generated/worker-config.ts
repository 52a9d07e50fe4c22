// Generated from schemas/worker-config.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * Merged from the YAML file (--config), the Taskcluster/AWS environment variables and the command-line flags (flags win).
 */
export interface WorkerConfig {
  rootUrl: string;
  credentials?: {
    clientId: string;
    accessToken: string;
    certificate?: string;
  };
  /**
   * Register with worker-manager's static provider (registerWorker) and claim with the temporary credentials it issues, reregistering before they expire; exactly one source of the worker's static secret (the 44-character providerInfo.staticSecret of createWorker). Not together with credentials.
   */
  workerManager?: (
    | {
        staticSecret: unknown;
        [k: string]: unknown;
      }
    | {
        staticSecretFile: unknown;
        [k: string]: unknown;
      }
    | {
        staticSecretEnv: unknown;
        [k: string]: unknown;
      }
  ) & {
    workerPoolId: string;
    /**
     * The static secret itself (checked at start: 44 characters of [a-zA-Z0-9_-]).
     */
    staticSecret?: string;
    /**
     * File holding the static secret (mode 0600, read at start).
     */
    staticSecretFile?: string;
    /**
     * Reregister at least this often (and always at 80% of the credentials' lifetime): a worker that worker-manager removed stops within this time. Default 3600.
     */
    reregisterIntervalSeconds?: number;
    /**
     * Name of the environment variable holding the static secret.
     */
    staticSecretEnv?: string;
  };
  taskQueueId: string;
  workerGroup: string;
  workerId: string;
  capacity?: number;
  s3: {
    bucket: string;
    prefix?: string;
    endpoint?: string;
    region?: string;
    publicBaseUrl?: string;
    accessKeyId?: string;
    secretAccessKey?: string;
  };
  /**
   * URL prefixes of the repositories this worker may fetch.
   *
   * @minItems 1
   */
  allowRepos: string[];
  limits?: {
    maxFiles?: number;
    maxFileBytes?: number;
    maxTotalBytes?: number;
    connectTimeoutMs?: number;
    idleTimeoutMs?: number;
    retries?: number;
    maxRetryTimeMs?: number;
  };
  shutdownGraceSeconds?: number;
  /**
   * Reclaim this long before takenUntil (at the latest half-way).
   */
  reclaimMarginSeconds?: number;
  /**
   * Reclaim at least this often (default: only as takenUntil approaches).
   */
  reclaimIntervalSeconds?: number;
  /**
   * Pause after an empty claimWork answer.
   */
  pollIntervalSeconds?: number;
  workDir?: string;
  /**
   * The unprivileged local user a payload's test command runs as (the worker runs as root and drops to it; the command gets no network where the kernel allows new network namespaces).
   */
  taskUser?: string;
  /**
   * required: the worker refuses to start unless test commands can run as taskUser; best-effort (local development only): they run as the worker's own user when they cannot, and the task log says so.
   */
  testIsolation?: 'required' | 'best-effort';
  /**
   * Path of the ed25519 private key (generic-worker's format: the base64 of the 32-byte seed) signing public/chain-of-trust.json of every completed task. A missing or unreadable key stops the worker from starting.
   */
  chainOfTrustSigningKey?: string;
  /**
   * Serve Prometheus metrics on this port at /metrics (0: any free port; absent: none).
   */
  metricsPort?: number;
  /**
   * Address the metrics port listens on (default 127.0.0.1).
   */
  metricsHost?: string;
  /**
   * Where each test command's scratch directory (owned by taskUser) is created; must be traversable by taskUser. Default: the system temp dir.
   */
  testDir?: string;
  once?: boolean;
}
