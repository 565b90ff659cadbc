/**
 * Small bounded structures for the chat's own limits: a token bucket per session (nick changes,
 * token issue, presence notices) and an LRU map (HTTP post limiters). Pure: the clock is injected.
 */

export type Clock = () => number;

/** One token bucket: `burst` at once, then one token every `intervalMs`. */
export class TokenBucket {
  private tokens: number;
  private at: number;
  constructor(
    private readonly burst: number,
    private readonly intervalMs: number,
    private readonly now: Clock,
  ) {
    this.tokens = burst;
    this.at = now();
  }

  private refill(): void {
    const t = this.now();
    if (t > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + (t - this.at) / this.intervalMs);
      this.at = t;
    }
  }

  /** Spend one token if there is one. */
  take(): boolean {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until `take()` would succeed. */
  retryAfterMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.intervalMs);
  }
}

/**
 * A Map with at most `max` entries that drops the least recently used one (Map order is kept as
 * recency order by re-inserting on every get/set). Clearing the whole table instead would hand a
 * fresh budget to whoever had just exhausted theirs.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(
    readonly max: number,
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`LruMap max must be >= 1, got ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      const oldest = this.map.entries().next();
      if (oldest.done) break;
      this.map.delete(oldest.value[0]);
      this.onEvict?.(oldest.value[0], oldest.value[1]);
    }
  }
}
