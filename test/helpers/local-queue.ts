// Test harness for the embedded Queue: a real ApiServer with Hawk auth and the QueueService on a
// loopback port, a fresh state directory, a ManualClock, and a real taskcluster-client whose
// every request and response body is validated against the upstream schemas.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { queueClient, slugid, type QueueClient } from '../../src/taskcluster/client.js';
import type { TaskDefinition } from '../../src/taskcluster/types.js';
import { HawkAuthenticator } from '../../src/local/auth.js';
import { createClient, rootCredentials } from '../../src/local/auth-store.js';
import { openDatabase, type Database } from '../../src/local/db.js';
import { ManualClock } from '../../src/local/framework.js';
import { QueueService } from '../../src/local/queue-service.js';
import { ApiServer } from '../../src/local/server.js';
import { assertUpstream, upstreamMethodSchema } from './upstream.js';

export interface QueueHarness {
  stateDir: string;
  db: Database;
  clock: ManualClock;
  server: ApiServer;
  queue: QueueService;
  rootUrl: string;
  root: { clientId: string; accessToken: string };
  /** taskIds passed to events.onTaskCompleted, in order. */
  completed: string[];
  /** A client with root credentials (no retries). */
  client: QueueClient;
  /** A client with a fresh configured client holding `scopes`. */
  clientWith(scopes: string[], name?: string): QueueClient;
  /** A client using the given (temporary) credentials. */
  clientFor(credentials: {
    clientId: string;
    accessToken: string;
    certificate?: string;
  }): QueueClient;
  /** An unauthenticated client. */
  anonymous: QueueClient;
  /** Stop serving; `keepState` leaves the state directory for a restart. */
  close(keepState?: boolean): Promise<void>;
}

export async function startQueue(
  opts: { stateDir?: string; clock?: ManualClock; claimWorkPollMs?: number } = {},
): Promise<QueueHarness> {
  const stateDir = opts.stateDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'mha-queue-')));
  const db = openDatabase(stateDir);
  const clock = opts.clock ?? new ManualClock(new Date());
  const auth = new HawkAuthenticator(db, { clock });
  const server = new ApiServer(auth, { clock });
  const completed: string[] = [];
  const queue = new QueueService({
    db,
    clock,
    rootUrl: () => server.rootUrl,
    issueCredentials: auth.issueCredentials,
    events: { onTaskCompleted: (taskId) => completed.push(taskId) },
    claimWorkPollMs: opts.claimWorkPollMs ?? 1000,
  });
  server.register(queue);
  const rootUrl = await server.listen();
  const root = rootCredentials(db);
  const make = (credentials?: {
    clientId: string;
    accessToken: string;
    certificate?: string;
  }): QueueClient => queueClient({ rootUrl, credentials, retries: 0 });
  let n = 0;
  return {
    stateDir,
    db,
    clock,
    server,
    queue,
    rootUrl,
    root,
    completed,
    client: make(root),
    clientWith: (scopes, name) =>
      make(createClient(db, name ?? `test/limited-${++n}-${Date.now()}`, scopes)),
    clientFor: (credentials) => make(credentials),
    anonymous: make(),
    async close(keepState = false) {
      queue.close();
      await server.close();
      db.close();
      if (!keepState) await fs.rm(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Call a queue method through the real client, validating the request body (last argument, when
 * the method has an input schema) and the response against the upstream schemas.
 */
export async function call<T = any>(
  client: QueueClient,
  method: keyof QueueClient & string,
  ...args: unknown[]
): Promise<T> {
  const input = upstreamMethodSchema('queue', method, 'input');
  if (input) assertUpstream(input, args[args.length - 1], `queue.${method} request`);
  const fn = (client as unknown as Record<string, (...a: unknown[]) => Promise<T>>)[method];
  const out = await fn.apply(client, args);
  const output = upstreamMethodSchema('queue', method, 'output');
  if (output) assertUpstream(output, out, `queue.${method} response`);
  return out;
}

/** Resolves to the error a promise rejects with (fails when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

export const TASK_QUEUE_ID = 'proj-test/worker';

/** A minimal valid task definition, dated by the given clock. */
export function taskDef(clock: ManualClock, over: Partial<TaskDefinition> = {}): TaskDefinition {
  const now = clock.now().getTime();
  return {
    taskQueueId: TASK_QUEUE_ID,
    created: new Date(now).toISOString(),
    deadline: new Date(now + 3600_000).toISOString(),
    payload: {},
    metadata: {
      name: 'embedded queue test task',
      description: 'a task of the embedded queue tests',
      owner: 'releng@example.com',
      source: 'https://hg.example.com/mozilla-central',
    },
    ...over,
  };
}

export { slugid };
