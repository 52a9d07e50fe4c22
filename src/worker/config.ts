// Worker configuration: defaults < YAML file (--config) < environment (Taskcluster and AWS
// conventions) < command-line flags. The merged result is validated by schemas/worker-config.json.
import fs from 'node:fs';
import * as yaml from 'js-yaml';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { redact, redactUrl, redactUrlSecrets } from '../util/log.js';
import type { WorkerConfig as GeneratedWorkerConfig } from '../generated/index.js';
import { describeSchemaErrors, projectValidator, type Defaulted } from '../util/schemas.js';

/** Kinder words than the schema's patterns, by field. */
const patternHints: Record<string, string> = {
  '/taskQueueId': 'must look like <provisionerId>/<workerType>, e.g. proj-mozharness/archive',
  '/workerGroup': 'must be 1-38 characters of [a-zA-Z0-9-_]',
  '/workerId': 'must be 1-38 characters of [a-zA-Z0-9-_]',
  '/rootUrl': 'must be an http(s) URL',
};

export type WorkerS3Settings = GeneratedWorkerConfig['s3'];
export type WorkerLimits = NonNullable<GeneratedWorkerConfig['limits']>;
/** Registration with worker-manager's static provider; exactly one source of the static secret. */
export type WorkerManagerSettings = NonNullable<GeneratedWorkerConfig['workerManager']>;

/** The validated configuration (schemas/worker-config.json, its defaults applied). */
export type WorkerConfig = Defaulted<
  GeneratedWorkerConfig,
  | 'capacity'
  | 'shutdownGraceSeconds'
  | 'reclaimMarginSeconds'
  | 'pollIntervalSeconds'
  | 'taskUser'
  | 'testIsolation'
  | 'once'
>;

/** Command-line flags (commander's camelCase names). */
export interface WorkerFlags {
  config?: string;
  rootUrl?: string;
  taskQueueId?: string;
  workerGroup?: string;
  workerId?: string;
  capacity?: string | number;
  s3Endpoint?: string;
  s3Region?: string;
  s3Bucket?: string;
  s3Prefix?: string;
  s3PublicBaseUrl?: string;
  allowRepo?: string[];
  shutdownGrace?: string | number;
  workDir?: string;
  taskUser?: string;
  testIsolation?: string;
  metricsPort?: string | number;
  once?: boolean;
}

function num(flag: string, v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) {
    throw new ArchiveError(
      'invalid-config',
      `--${flag} must be a number (got ${JSON.stringify(v)})`,
    );
  }
  return n;
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `cannot read worker config ${file}: ${errorMessage(e)}`,
    );
  }
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `worker config ${file} is not valid YAML: ${errorMessage(e)}`,
    );
  }
  if (doc === undefined || doc === null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ArchiveError('invalid-config', `worker config ${file} must be a YAML mapping`);
  }
  return doc as Record<string, unknown>;
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The configuration the environment gives (Taskcluster and AWS conventions). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (env.TASKCLUSTER_PROXY_URL) {
    // Under taskcluster-proxy the proxy signs requests: no credentials of our own.
    out.rootUrl = env.TASKCLUSTER_PROXY_URL.replace(/\/$/, '');
  } else if (env.TASKCLUSTER_ROOT_URL) {
    out.rootUrl = env.TASKCLUSTER_ROOT_URL.replace(/\/$/, '');
  }
  if (env.TASKCLUSTER_CLIENT_ID && env.TASKCLUSTER_ACCESS_TOKEN && !env.TASKCLUSTER_PROXY_URL) {
    out.credentials = defined({
      clientId: env.TASKCLUSTER_CLIENT_ID,
      accessToken: env.TASKCLUSTER_ACCESS_TOKEN,
      certificate: env.TASKCLUSTER_CERTIFICATE,
    });
  }
  const s3 = defined({
    endpoint: env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    accessKeyId: env.AWS_ACCESS_KEY_ID || undefined,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY || undefined,
  });
  if (Object.keys(s3).length) out.s3 = s3;
  return out;
}

/**
 * Merge defaults, the YAML file, the environment and the flags (flags win), validate, and register
 * every secret with the logger's redaction. Throws ArchiveError('invalid-config') listing every
 * problem, e.g. `config.s3.bucket is required (--s3-bucket or s3.bucket in the config file)`.
 */
export function loadWorkerConfig(
  flags: WorkerFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): WorkerConfig {
  const file = flags.config ? readFile(flags.config) : {};
  const fromEnv = configFromEnv(env);
  const fromFlags = defined({
    rootUrl: flags.rootUrl?.replace(/\/$/, ''),
    taskQueueId: flags.taskQueueId,
    workerGroup: flags.workerGroup,
    workerId: flags.workerId,
    capacity: num('capacity', flags.capacity),
    allowRepos: flags.allowRepo?.length ? flags.allowRepo : undefined,
    shutdownGraceSeconds: num('shutdown-grace', flags.shutdownGrace),
    workDir: flags.workDir,
    taskUser: flags.taskUser,
    metricsPort: num('metrics-port', flags.metricsPort),
    testIsolation: flags.testIsolation,
    once: flags.once ? true : undefined,
  });
  const s3Flags = defined({
    endpoint: flags.s3Endpoint,
    region: flags.s3Region,
    bucket: flags.s3Bucket,
    prefix: flags.s3Prefix,
    publicBaseUrl: flags.s3PublicBaseUrl,
  });
  const merged: Record<string, unknown> = {
    ...file,
    ...fromEnv,
    ...fromFlags,
    s3: {
      ...((file.s3 as object) ?? {}),
      ...(fromEnv.s3 ?? {}),
      ...s3Flags,
    },
  };
  if (!fromEnv.credentials && file.credentials) merged.credentials = file.credentials;
  if (env.TASKCLUSTER_PROXY_URL && !fromFlags.rootUrl) delete merged.credentials;
  return validateWorkerConfig(merged);
}

const FLAG_OF: Record<string, string> = {
  rootUrl: '--root-url or TASKCLUSTER_ROOT_URL',
  taskQueueId: '--task-queue-id',
  workerGroup: '--worker-group',
  workerId: '--worker-id',
  s3: '--s3-bucket',
  allowRepos: '--allow-repo',
  bucket: '--s3-bucket',
};

/** Validate an already merged configuration object (applies defaults). */
export function validateWorkerConfig(raw: Record<string, unknown>): WorkerConfig {
  const config = structuredClone(raw);
  if (config.s3 && typeof config.s3 === 'object' && Object.keys(config.s3).length === 0) {
    delete config.s3;
  }
  const validate = projectValidator('worker-config.json');
  if (!validate(config)) {
    const described = describeSchemaErrors(validate.errors, config, {
      root: 'config',
      patternHints,
    });
    const errors = described.map((line) => {
      const m = /^config(?:\.s3)?\.(\w+) is required$/.exec(line);
      return m && FLAG_OF[m[1]] ? `${line} (${FLAG_OF[m[1]]}, or in the config file)` : line;
    });
    throw new ArchiveError(
      'invalid-config',
      `invalid worker configuration:\n  ${errors.join('\n  ')}`,
      {
        errors,
      },
    );
  }
  const c = config as unknown as WorkerConfig;
  if (c.workerManager && c.credentials) {
    throw new ArchiveError(
      'invalid-config',
      'invalid worker configuration:\n  config.credentials and config.workerManager are both given: ' +
        'a worker registered with worker-manager claims with the credentials it issues (remove ' +
        'credentials, or TASKCLUSTER_CLIENT_ID/TASKCLUSTER_ACCESS_TOKEN from the environment)',
    );
  }
  redact(c.workerManager?.staticSecret);
  redact(c.credentials?.accessToken);
  redact(c.credentials?.certificate);
  redact(c.s3.secretAccessKey);
  for (const url of [c.rootUrl, c.s3.endpoint, c.s3.publicBaseUrl, ...c.allowRepos]) {
    redactUrlSecrets(url);
  }
  return c;
}

/** The configuration with every secret replaced, for printing. */
export function describeConfig(c: WorkerConfig): Record<string, unknown> {
  const url = (u: string | undefined) => (u === undefined ? undefined : redactUrl(u));
  return {
    ...c,
    rootUrl: redactUrl(c.rootUrl),
    allowRepos: c.allowRepos.map(redactUrl),
    credentials: c.credentials
      ? { clientId: c.credentials.clientId, accessToken: '[redacted]' }
      : undefined,
    workerManager: c.workerManager
      ? {
          ...c.workerManager,
          staticSecret: c.workerManager.staticSecret ? '[redacted]' : undefined,
        }
      : undefined,
    s3: {
      ...c.s3,
      endpoint: url(c.s3.endpoint),
      publicBaseUrl: url(c.s3.publicBaseUrl),
      secretAccessKey: c.s3.secretAccessKey ? '[redacted]' : undefined,
    },
  };
}
