// The one retry policy of the project's network work (HTTP requests, downloads, git fetches):
// bounded in count and in total time, jittered exponential backoff between attempts, and waits on
// node:timers/promises that end when the caller's signal aborts.
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

/** A failure another attempt may cure (a network error, a 5xx, a stall, a short body). */
export class TransientError extends Error {
  override name = 'TransientError';
}

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries?: number;
  /** No retry starts once this much time would have passed since the first attempt. */
  maxRetryTimeMs?: number;
  /** First backoff delay (default 500 ms); doubles per attempt, with jitter, up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
}

export interface RetryHooks {
  /** Told before each wait: the retry's number (1 for the first), why, and how long it waits. */
  onRetry?: (attempt: number, error: TransientError, delayMs: number) => void;
  /** The error thrown once the retries are spent (default: the last TransientError). */
  exhausted?: (error: TransientError, attempts: number) => Error;
  /** The error thrown when the signal aborts a wait (default: the signal's reason). */
  aborted?: () => Error;
}

const DEFAULT_RETRY_POLICY = {
  retries: 4,
  maxRetryTimeMs: 60_000,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
} as const satisfies RetryPolicy;

/**
 * Run `attempt` until it resolves. A TransientError thrown by it is retried after a jittered
 * backoff while the policy's count and time allow; any other error ends the loop at once (a 404,
 * a checksum mismatch, a refused redirect are never retried).
 */
export async function retrying<T>(
  attempt: (n: number) => Promise<T>,
  policy: RetryPolicy = {},
  hooks: RetryHooks = {},
): Promise<T> {
  const retries = policy.retries ?? DEFAULT_RETRY_POLICY.retries;
  const maxRetryTimeMs = policy.maxRetryTimeMs ?? DEFAULT_RETRY_POLICY.maxRetryTimeMs;
  const start = Date.now();
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      if (!(e instanceof TransientError)) throw e;
      const delayMs = backoffDelay(
        n,
        policy.baseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
        policy.maxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
      );
      if (n >= retries || Date.now() - start + delayMs > maxRetryTimeMs) {
        throw hooks.exhausted?.(e, n + 1) ?? e;
      }
      hooks.onRetry?.(n + 1, e, delayMs);
      try {
        await sleep(delayMs, policy.signal);
      } catch (abort) {
        throw hooks.aborted?.() ?? abort;
      }
    }
  }
}

/** Wait `ms`, or less when `signal` aborts first (never rejects): for polling loops that stop. */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, signal).catch(() => undefined);
}
