// The lookup service's in-memory caches: bounded, least-recently-set eviction, per-entry TTL on
// an injectable clock.
type Cached<T> = { value: T; until: number };

export class TtlCache<T> {
  private map = new Map<string, Cached<T>>();
  constructor(
    private max: number,
    private now: () => number,
  ) {}
  get(key: string): T | undefined {
    const c = this.map.get(key);
    if (!c) return undefined;
    if (c.until <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    return c.value;
  }
  set(key: string, value: T, ttlMs: number): void {
    if (ttlMs <= 0) return;
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    this.map.delete(key);
    this.map.set(key, { value, until: this.now() + ttlMs });
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
}

/** Concurrent calls with the same key share one promise (one index lookup, one task). */
export class SingleFlight {
  private inflight = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const p = this.inflight.get(key) as Promise<T> | undefined;
    if (p) return p;
    const q = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, q);
    return q;
  }
}

/**
 * A token bucket: `perMinute` tokens refill continuously, up to `perMinute` held. take() is false
 * when the bucket is empty; `retryAfterSeconds()` says when the next token arrives.
 */
export class RateLimit {
  private tokens: number;
  private at: number;
  constructor(
    private perMinute: number,
    private now: () => number,
  ) {
    this.tokens = perMinute;
    this.at = now();
  }
  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.perMinute, this.tokens + ((t - this.at) * this.perMinute) / 60_000);
    this.at = t;
  }
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
  retryAfterSeconds(): number {
    this.refill();
    return Math.max(1, Math.ceil(((1 - this.tokens) * 60) / this.perMinute));
  }
}
