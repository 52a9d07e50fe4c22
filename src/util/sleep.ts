import { sleep } from './retry.js';

/** Wait `ms`, or less when `signal` aborts first (never rejects): for polling loops that stop. */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, signal).catch(() => undefined);
}
