// The one bounded poll of the test suite. Tests wait for the condition they care about, never for
// a fixed time: a loaded machine only makes them slower, not red.
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long (generous: the machine may be loaded). Default 60 s. */
  timeoutMs?: number;
  /** Time between two probes. Default 100 ms. */
  intervalMs?: number;
}

/** Thrown by a probe to stop waiting at once (a child exited early, say): not retried. */
export class GiveUp extends Error {
  override name = 'GiveUp';
}

/** Stop a `waitFor` at once with `message`. */
export function giveUp(message: string): never {
  throw new GiveUp(message);
}

type Found<T> = Exclude<T, undefined | false>;

/**
 * Poll `probe` until it returns something other than `undefined` or `false`, and return that.
 * A probe that throws is probed again (the last error is in the timeout's message), unless it
 * threw through `giveUp`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  { timeoutMs = 60_000, intervalMs = 100 }: WaitOptions = {},
): Promise<Found<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as Found<T>;
    } catch (e) {
      if (e instanceof GiveUp) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last ? `: ${last instanceof Error ? last.message : String(last)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}
