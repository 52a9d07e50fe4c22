// Registration with worker-manager's `static` provider. The worker proves who it is with the
// static secret its pool's administrator gave it (createWorker providerInfo.staticSecret) and gets
// temporary credentials for claimWork plus a one-use reregistration secret. Before the credentials
// expire it reregisters (with its current credentials and that secret) and swaps both. A refused
// reregistration means worker-manager removed the worker: the claim loop stops.
//
// The static secret itself never changes: worker-manager compares registerWorker's proof with the
// secret given at createWorker, so a restarted worker registers again with the same file or
// variable. The reregistration secret lives in memory only (a restart registers afresh).
import fs from 'node:fs';
import {
  workerManagerClient,
  type Credentials,
  type WorkerManagerClient,
} from '../taskcluster/client.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { redact, type Logger } from '../util/log.js';
import { statusCode } from './claim.js';
import type { WorkerConfig, WorkerManagerSettings } from './config.js';

/** A worker-manager client with these credentials (none: anonymous, for registerWorker). */
export type WorkerManagerFactory = (credentials?: Credentials) => WorkerManagerClient;

/** The static secret from the config, its file or its environment variable (registered for redaction). */
export function readStaticSecret(
  s: WorkerManagerSettings,
  env: NodeJS.ProcessEnv = process.env,
): string {
  let secret: string | undefined;
  let from: string;
  if (s.staticSecretFile) {
    from = `workerManager.staticSecretFile ${s.staticSecretFile}`;
    try {
      secret = fs.readFileSync(s.staticSecretFile, 'utf8').trim();
    } catch (e) {
      throw new ArchiveError('invalid-config', `cannot read ${from}: ${errorMessage(e)}`);
    }
  } else if (s.staticSecretEnv) {
    from = `the environment variable ${s.staticSecretEnv} (workerManager.staticSecretEnv)`;
    secret = env[s.staticSecretEnv]?.trim();
  } else {
    from = 'workerManager.staticSecret';
    secret = s.staticSecret;
  }
  redact(secret);
  if (!secret || !/^[a-zA-Z0-9_-]{44}$/.test(secret)) {
    throw new ArchiveError(
      'invalid-config',
      `the static secret from ${from} must be 44 characters of [a-zA-Z0-9_-] ` +
        `(${secret ? secret.length : 0} found), as worker-manager's static provider requires`,
    );
  }
  return secret;
}

/**
 * When to reregister: at 80% of the time left, at least 1 s from now, and at most `maxMs` from now
 * (reregistering is also how a worker learns that worker-manager removed it).
 */
export function reregisterDelayMs(expires: Date, maxMs: number, now = Date.now()): number {
  const left = expires.getTime() - now;
  return Math.min(2 ** 31 - 1, maxMs, Math.max(1000, Math.floor(left * 0.8)));
}

export class Registration {
  credentials: Credentials;
  expires: Date;
  private secret: string;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  private constructor(
    private readonly config: WorkerConfig & { workerManager: WorkerManagerSettings },
    private readonly wm: WorkerManagerFactory,
    private readonly log: Logger,
    r: { credentials: Credentials; expires: string; secret: string },
  ) {
    this.credentials = r.credentials;
    this.secret = r.secret;
    this.expires = new Date(r.expires);
  }

  /** registerWorker with the static secret; throws ArchiveError('not-allowed') when refused. */
  static async register(
    config: WorkerConfig & { workerManager: WorkerManagerSettings },
    wm: WorkerManagerFactory,
    log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<Registration> {
    const { workerPoolId } = config.workerManager;
    const staticSecret = readStaticSecret(config.workerManager, env);
    let r;
    try {
      r = await wm().registerWorker({
        workerPoolId,
        providerId: 'static',
        workerGroup: config.workerGroup,
        workerId: config.workerId,
        workerIdentityProof: { staticSecret },
      });
    } catch (e) {
      throw new ArchiveError(
        'not-allowed',
        `registerWorker for ${workerPoolId} ${config.workerGroup}/${config.workerId} was refused ` +
          `(${statusCode(e) ?? 'no answer'}): ${errorMessage(e)} — is the worker created in the ` +
          'static pool with this secret, and still running?',
      );
    }
    redactCredentials(r);
    log.info('registered', {
      workerPoolId,
      clientId: r.credentials.clientId,
      expires: r.expires,
    });
    return new Registration(config, wm, log, r);
  }

  /**
   * Reregister before the credentials expire, again and again, until stop(). `onRemoved` is
   * called once when worker-manager refuses (the worker was removed) or the credentials expired.
   */
  keepRegistered(onRemoved: (reason: string) => void): void {
    const schedule = (ms: number) => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void attempt(), ms);
      this.timer.unref();
    };
    const attempt = async () => {
      try {
        await this.reregister();
        schedule(this.nextDelayMs());
      } catch (e) {
        if (this.stopped) return;
        const code = statusCode(e);
        if (code === 400 || code === 403 || code === 404) {
          onRemoved(`worker-manager refused reregistration (${code}): ${errorMessage(e)}`);
          return;
        }
        const left = this.expires.getTime() - Date.now();
        if (left <= 0) {
          onRemoved(`the worker's credentials expired at ${this.expires.toISOString()}`);
          return;
        }
        const retryInMs = Math.max(1000, Math.min(30_000, Math.floor(left / 4)));
        this.log.warn('reregister-failed', { error: errorMessage(e), retryInMs });
        schedule(retryInMs);
      }
    };
    schedule(this.nextDelayMs());
  }

  private nextDelayMs(): number {
    const every = this.config.workerManager.reregisterIntervalSeconds ?? 3600;
    return reregisterDelayMs(this.expires, every * 1000);
  }

  async reregister(): Promise<void> {
    const { workerPoolId } = this.config.workerManager;
    const r = await this.wm(this.credentials).reregisterWorker({
      workerPoolId,
      workerGroup: this.config.workerGroup,
      workerId: this.config.workerId,
      secret: this.secret,
    });
    redactCredentials(r);
    this.credentials = r.credentials;
    this.secret = r.secret;
    this.expires = new Date(r.expires);
    this.log.info('reregistered', { workerPoolId, expires: r.expires });
  }

  /** reportWorkerError for the worker's own errors (never a task's); a failure to report is logged. */
  async reportError(title: string, error: unknown, extra: Record<string, unknown> = {}) {
    const { workerPoolId } = this.config.workerManager;
    try {
      await this.wm(this.credentials).reportWorkerError(workerPoolId, {
        workerGroup: this.config.workerGroup,
        workerId: this.config.workerId,
        kind: 'worker-error',
        title,
        description: errorMessage(error),
        extra,
      });
      this.log.info('reported-worker-error', { title });
    } catch (e) {
      this.log.warn('report-worker-error-failed', { title, error: errorMessage(e) });
    }
  }

  /** The secret this registration holds now (tests check it rotates). */
  currentSecret(): string {
    return this.secret;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

function redactCredentials(r: { credentials: Credentials; secret: string }): void {
  redact(r.secret);
  redact(r.credentials.accessToken);
  const cert = r.credentials.certificate;
  redact(typeof cert === 'string' ? cert : cert && JSON.stringify(cert));
}

export function defaultWorkerManager(rootUrl: string): WorkerManagerFactory {
  return (credentials) => workerManagerClient({ rootUrl, credentials });
}
