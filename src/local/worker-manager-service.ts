// The embedded Worker Manager: the `static` provider's subset of upstream's worker-manager
// (services/worker-manager/src/api.js, providers/static.js), along the same seams: worker pools
// (worker-manager/pools.ts), workers and their errors (workers.ts) and the static provider's
// registration (registration.ts), over the tables of worker-manager/store.ts. Methods whose
// scope expression uses only URL parameters are authorized by the framework before the handler
// runs; the others call `ctx.authorize(params)` with the values from the body.
import type { Handler, IssueCredentials, Service, ServiceDeps } from './framework.js';
import { poolHandlers } from './worker-manager/pools.js';
import { registrationHandlers } from './worker-manager/registration.js';
import { WorkerManagerStore } from './worker-manager/store.js';
import { workerHandlers } from './worker-manager/workers.js';

export interface WorkerManagerDeps extends ServiceDeps {
  issueCredentials: IssueCredentials;
}

export class WorkerManagerService implements Service {
  readonly name = 'worker-manager';
  readonly handlers: Partial<Record<string, Handler>>;

  constructor(deps: WorkerManagerDeps) {
    const store = new WorkerManagerStore(deps.db, deps.clock);
    this.handlers = {
      ...poolHandlers(store),
      ...workerHandlers(store),
      ...registrationHandlers(store, deps.issueCredentials),
    };
  }
}
