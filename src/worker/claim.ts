// Keeps one claimed run alive: reclaims well before `takenUntil` with the task's own credentials,
// swaps in the credentials each reclaim returns, and reports a lost claim (409) so the run can be
// abandoned without publishing anything.
import type http from 'node:http';
import type { ClientOptions, Credentials, QueueClient } from '../taskcluster/client.js';
import type { ClaimedTask, TaskCredentials } from '../taskcluster/types.js';
import { errorMessage } from '../util/errors.js';
import { redact, type Logger } from '../util/log.js';

export interface ClaimTiming {
  /** Reclaim this many seconds before takenUntil (at the latest half-way through the claim). */
  reclaimMarginSeconds: number;
  /** Reclaim at least this often, whatever takenUntil says. */
  reclaimIntervalSeconds?: number;
}

export function statusCode(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown } | null | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

export class ClaimKeeper {
  readonly taskId: string;
  readonly runId: number;
  credentials: TaskCredentials;
  takenUntil: Date;
  lost = false;
  private client: QueueClient;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly opts: {
      taskId: string;
      runId: number;
      credentials: TaskCredentials;
      takenUntil: string;
      makeQueue: (credentials: Credentials) => QueueClient;
      timing: ClaimTiming;
      log: Logger;
      onLost: (why: string) => void;
    },
  ) {
    this.taskId = opts.taskId;
    this.runId = opts.runId;
    this.credentials = opts.credentials;
    this.takenUntil = new Date(opts.takenUntil);
    redact(opts.credentials.accessToken);
    redact(opts.credentials.certificate);
    this.client = opts.makeQueue(opts.credentials);
  }

  /** A queue client holding the run's current temporary credentials. */
  queue(): QueueClient {
    return this.client;
  }

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.inFlight;
  }

  /** Mark the claim lost (a 409 anywhere on this run). */
  markLost(why: string): void {
    if (this.lost) return;
    this.lost = true;
    this.opts.log.warn('claim-lost', { taskId: this.taskId, runId: this.runId, why });
    this.opts.onLost(why);
  }

  private schedule(retryDelayMs?: number): void {
    if (this.stopped || this.lost) return;
    const remaining = this.takenUntil.getTime() - Date.now();
    let delay =
      retryDelayMs ??
      Math.max(remaining - this.opts.timing.reclaimMarginSeconds * 1000, remaining / 2);
    if (this.opts.timing.reclaimIntervalSeconds !== undefined) {
      delay = Math.min(delay, this.opts.timing.reclaimIntervalSeconds * 1000);
    }
    this.timer = setTimeout(
      () => {
        this.inFlight = this.reclaim();
      },
      Math.max(50, delay),
    );
    this.timer.unref?.();
  }

  private async reclaim(): Promise<void> {
    if (this.stopped || this.lost) return;
    try {
      const r = await this.client.reclaimTask(this.taskId, this.runId);
      if (this.stopped) return;
      redact(r.credentials.accessToken);
      redact(r.credentials.certificate);
      this.credentials = r.credentials;
      this.takenUntil = new Date(r.takenUntil);
      this.client = this.opts.makeQueue(r.credentials);
      this.opts.log.info('reclaimed', {
        taskId: this.taskId,
        runId: this.runId,
        takenUntil: r.takenUntil,
      });
      this.schedule();
    } catch (e) {
      if (this.stopped) return;
      if (statusCode(e) === 409) {
        this.markLost(`reclaim refused: ${errorMessage(e)}`);
        return;
      }
      const remaining = this.takenUntil.getTime() - Date.now();
      if (remaining <= 0) {
        this.markLost(`claim expired at ${this.takenUntil.toISOString()} after failed reclaims`);
        return;
      }
      const retryIn = Math.min(30_000, Math.max(250, remaining / 4));
      this.opts.log.warn('reclaim-failed', {
        taskId: this.taskId,
        runId: this.runId,
        error: errorMessage(e),
        retryInMs: Math.round(retryIn),
      });
      this.schedule(retryIn);
    }
  }
}

/**
 * `claimWork` that a signal can cut short. The long poll gets a client of its own (own sockets,
 * no client-side retries); when `signal` aborts, its sockets are destroyed, so the poll ends at
 * once, and the queue, seeing the connection close, stops claiming for it (the task goes to
 * another worker instead of being claimed, then handed back as worker-shutdown). Resolves
 * `{tasks: []}` when aborted before an answer.
 */
export async function claimWorkUntil(
  queue: QueueClient,
  taskQueueId: string,
  body: { workerGroup: string; workerId: string; tasks: number },
  signal: AbortSignal | undefined,
): Promise<ClaimedTask[]> {
  if (signal?.aborted) return [];
  // `agent` options make taskcluster-client create agents of its own for this client; those are
  // the only handle on its sockets (it takes no AbortSignal).
  const client = queue.use({ agent: { keepAlive: false }, retries: 0 } as Partial<ClientOptions>);
  const drop = () => {
    const agents = (client as unknown as { _httpAgent?: Record<string, http.Agent> })._httpAgent;
    for (const agent of Object.values(agents ?? {})) agent.destroy();
  };
  signal?.addEventListener('abort', drop, { once: true });
  try {
    return (await client.claimWork(taskQueueId, body)).tasks;
  } catch (e) {
    if (signal?.aborted) return [];
    throw e;
  } finally {
    signal?.removeEventListener('abort', drop);
    drop(); // nothing of this client is kept alive
  }
}
