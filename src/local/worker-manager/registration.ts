// Registration with the `static` provider, as upstream's providers/static.js: a worker trades
// its static secret (registerWorker, no credentials needed) for temporary credentials named
// `worker/static/<pool>/<group>/<id>` and a one-time reregistration secret, then renews them with
// reregisterWorker (each renewal issues a new secret and refuses the previous one).
import slugid from 'slugid';
import {
  ApiError,
  type Handler,
  type IssueCredentials,
  type RequestContext,
} from '../framework.js';
import { validateRequest } from '../queue-validate.js';
import {
  PROVIDERS,
  sha256,
  timingSafeEqual,
  type PoolRow,
  type WorkerManagerStore,
  type WorkerRow,
} from './store.js';

/** Upstream's default reregistrationTimeout: 96 hours (providers/provider.js interpretLifecycle). */
const DEFAULT_REREGISTRATION_TIMEOUT_S = 345600;

const newSecret = () => `${slugid.nice()}${slugid.nice()}`;

interface RegisterInput {
  workerPoolId: string;
  providerId: string;
  workerGroup: string;
  workerId: string;
  workerIdentityProof: { staticSecret: string };
}

interface ReregisterInput {
  workerPoolId: string;
  workerGroup: string;
  workerId: string;
  secret: string;
}

/** The scopes of a registered worker's credentials (upstream's util.js createCredentials). */
function workerScopes(pool: string, group: string, id: string): string[] {
  const w = `${pool}/${group}/${id}`;
  return [
    `assume:worker-type:${pool}`,
    `assume:worker-pool:${pool}`,
    `assume:worker-id:${group}/${id}`,
    `queue:worker-id:${group}/${id}`,
    `secrets:get:worker-type:${pool}`,
    `secrets:get:worker-pool:${pool}`,
    `queue:claim-work:${pool}`,
    `worker-manager:remove-worker:${w}`,
    `worker-manager:reregister-worker:${w}`,
    `worker-manager:should-worker-terminate:${w}`,
  ];
}

export function registrationHandlers(
  store: WorkerManagerStore,
  issueCredentials: IssueCredentials,
): Record<string, Handler> {
  const registration = new Registration(store, issueCredentials);
  return {
    registerWorker: (ctx) => ({ body: registration.register(ctx) }),
    reregisterWorker: (ctx) => ({ body: registration.reregister(ctx) }),
  };
}

class Registration {
  constructor(
    private readonly store: WorkerManagerStore,
    private readonly issueCredentials: IssueCredentials,
  ) {}

  private credentialsFor(w: WorkerRow, expires: Date) {
    return this.issueCredentials({
      clientId: `worker/${w.provider_id}/${w.worker_pool_id}/${w.worker_group}/${w.worker_id}`,
      scopes: workerScopes(w.worker_pool_id, w.worker_group, w.worker_id),
      start: new Date(this.store.now().getTime() - 15 * 60e3),
      expiry: expires,
    });
  }

  /** A fresh one-time secret for the worker's next reregistration (only its hash is kept). */
  private renewSecret(w: WorkerRow): string {
    const secret = newSecret();
    this.store.db
      .prepare(
        `UPDATE wm_workers SET secret_hash = ?, last_modified = ?
         WHERE worker_pool_id = ? AND worker_group = ? AND worker_id = ?`,
      )
      .run(
        sha256(secret),
        this.store.now().toISOString(),
        w.worker_pool_id,
        w.worker_group,
        w.worker_id,
      );
    return secret;
  }

  /** The pool a registration names, if it is (or was) served by the given provider. */
  private registrationPool({ workerPoolId, providerId }: RegisterInput): PoolRow {
    const pool = this.store.pool(workerPoolId, `Worker pool ${workerPoolId} does not exist`);
    if (!PROVIDERS.includes(providerId)) {
      throw new ApiError('ResourceNotFound', `Provider ${providerId} does not exist`);
    }
    const previous = JSON.parse(pool.previous_provider_ids) as string[];
    if (pool.provider_id !== providerId && !previous.includes(providerId)) {
      throw new ApiError(
        'InputError',
        `Worker pool ${workerPoolId} not associated with provider ${providerId}`,
      );
    }
    return pool;
  }

  /** The worker a registration names, if it may register with the static secret it shows. */
  private registeringWorker(input: RegisterInput): WorkerRow {
    const { workerPoolId, providerId, workerGroup, workerId } = input;
    const w = this.store.findWorker({ workerPoolId, workerGroup, workerId });
    if (!w) {
      throw new ApiError(
        'ResourceNotFound',
        `Worker ${workerGroup}/${workerId} in worker pool ${workerPoolId} does not exist`,
      );
    }
    if (new Date(w.expires) < this.store.now()) {
      throw new ApiError('InputError', `Worker ${workerGroup}/${workerId} has expired`);
    }
    if (w.provider_id !== providerId) {
      throw new ApiError(
        'InputError',
        `Worker ${workerGroup}/${workerId} does not have provider ${providerId}`,
      );
    }
    if (w.state !== 'running') throw new ApiError('InputError', 'worker is not running');
    if (!timingSafeEqual(input.workerIdentityProof.staticSecret, w.static_secret)) {
      throw new ApiError('InputError', 'bad staticSecret in workerIdentityProof');
    }
    return w;
  }

  register(ctx: RequestContext): Record<string, unknown> {
    const input = validateRequest<RegisterInput>(
      'worker-manager/register-worker-request',
      ctx.body,
    );
    const pool = this.registrationPool(input);
    const w = this.registeringWorker(input);
    const config = JSON.parse(pool.config) as {
      lifecycle?: { reregistrationTimeout?: number };
      workerConfig?: Record<string, unknown>;
    };
    const timeout = config.lifecycle?.reregistrationTimeout || DEFAULT_REREGISTRATION_TIMEOUT_S;
    const expires = new Date(this.store.now().getTime() + timeout * 1000);
    const secret = this.renewSecret(w);
    return {
      expires: expires.toISOString(),
      credentials: this.credentialsFor(w, expires),
      workerConfig: config.workerConfig ?? {},
      secret,
    };
  }

  reregister(ctx: RequestContext): Record<string, unknown> {
    const input = validateRequest<ReregisterInput>(
      'worker-manager/reregister-worker-request',
      ctx.body,
    );
    ctx.authorize({ ...input });
    const w = this.store.findWorker(input);
    if (!w || !w.secret_hash || !timingSafeEqual(sha256(input.secret), w.secret_hash)) {
      throw new ApiError('InputError', 'Could not generate credentials for this secret');
    }
    const label = `${input.workerGroup}/${input.workerId}`;
    if (w.state !== 'running') throw new ApiError('InputError', `Worker ${label} is not running`);
    if (new Date(w.expires) < this.store.now()) {
      throw new ApiError('InputError', `Worker ${label} has expired`);
    }
    // as upstream's static provider: the renewal lasts the default 96 hours
    const expires = new Date(this.store.now().getTime() + DEFAULT_REREGISTRATION_TIMEOUT_S * 1000);
    const secret = this.renewSecret(w);
    return { expires: expires.toISOString(), credentials: this.credentialsFor(w, expires), secret };
  }
}
