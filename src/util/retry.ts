// The one retry policy of the network clients: jittered exponential backoff, and abortable waits
// on node:timers/promises.
import { setTimeout as wait } from 'node:timers/promises';

/** Jittered exponential backoff: a random delay in [½, 1] × min(maxMs, baseMs × 2^attempt). */
export function backoffDelay(attempt: number, baseMs = 500, maxMs = 10_000): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/** Wait `ms`; rejects (with the signal's reason) when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return wait(ms, undefined, signal ? { signal } : {});
}
