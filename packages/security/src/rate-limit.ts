import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { InvalidOptionError } from './errors.js';
import type { RateLimiterOptions } from './options.js';

interface Bucket {
  tokens: number;
  /** Clock reading (ms) at which `tokens` was last brought up to date. */
  at: number;
}

/** Keys longer than this are stored as their SHA-256, so memory per key stays bounded. */
const MAX_KEY_LENGTH = 256;
/** Absorbs floating-point error so that waiting exactly `retryAfterMs()` is always enough. */
const EPSILON = 1e-9;
/** Entries examined per amortised idle sweep. */
const SWEEP_BATCH = 32;
/** An idle sweep runs every this many `take()` calls. */
const SWEEP_EVERY = 256;

function positive(name: string, value: number, integer: boolean): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new InvalidOptionError(
      `${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Token bucket per key: each key may spend `capacity` at once and regains `refillPerSecond`.
 * Memory is bounded by `maxKeys`; a key idle long enough to be full again carries no state and is
 * dropped first. `take()` is O(1) and allocates only when a key is first seen.
 */
export class RateLimiter {
  readonly capacity: number;
  readonly refillPerSecond: number;
  readonly maxKeys: number;
  readonly #perMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  #ops = 0;
  #evicted = 0;

  constructor(options: RateLimiterOptions = {}) {
    this.capacity = positive('capacity', options.capacity ?? 20, false);
    this.refillPerSecond = positive('refillPerSecond', options.refillPerSecond ?? 10, false);
    this.maxKeys = positive('maxKeys', options.maxKeys ?? 10_000, true);
    this.#perMs = this.refillPerSecond / 1000;
    const now = options.now ?? (() => performance.now());
    if (typeof now !== 'function')
      throw new InvalidOptionError('now must be a function returning milliseconds');
    this.#now = now;
  }

  /** Keys currently tracked (never more than `maxKeys`). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Keys dropped while their bucket was not yet full (only under `maxKeys` pressure). */
  get evictedActive(): number {
    return this.#evicted;
  }

  #key(key: string): string {
    if (typeof key !== 'string') throw new InvalidOptionError('rate limiter key must be a string');
    return key.length > MAX_KEY_LENGTH ? createHash('sha256').update(key).digest('base64') : key;
  }

  #cost(cost: number): number {
    if (typeof cost !== 'number' || !(cost > 0) || !Number.isFinite(cost)) {
      throw new InvalidOptionError(`cost must be a positive finite number, got ${String(cost)}`);
    }
    return cost;
  }

  /** Brings a bucket up to date; returns its tokens. */
  #refill(b: Bucket, now: number): number {
    if (now > b.at) {
      b.tokens = Math.min(this.capacity, b.tokens + (now - b.at) * this.#perMs);
      b.at = now;
    }
    return b.tokens;
  }

  #isFull(b: Bucket, now: number): boolean {
    return b.tokens + Math.max(0, now - b.at) * this.#perMs >= this.capacity;
  }

  /** Drops full (idle) buckets from the least recently used end; then, if needed, the LRU one. */
  #makeRoom(now: number, force: boolean): void {
    let scanned = 0;
    for (const [k, b] of this.#buckets) {
      if (scanned++ >= SWEEP_BATCH) break;
      if (this.#isFull(b, now)) this.#buckets.delete(k);
    }
    if (force && this.#buckets.size >= this.maxKeys) {
      const oldest = this.#buckets.keys().next();
      if (!oldest.done) {
        this.#buckets.delete(oldest.value);
        this.#evicted++;
      }
    }
  }

  /**
   * Spends `cost` tokens of `key` if it has them. Returns false (spending nothing) otherwise.
   * @param cost default 1
   */
  take(key: string, cost = 1): boolean {
    const k = this.#key(key);
    const c = this.#cost(cost);
    const now = this.#now();
    if (++this.#ops >= SWEEP_EVERY) {
      this.#ops = 0;
      this.#makeRoom(now, false);
    }
    let b = this.#buckets.get(k);
    if (b === undefined) {
      if (this.#buckets.size >= this.maxKeys) this.#makeRoom(now, true);
      b = { tokens: this.capacity, at: now };
    } else {
      this.#refill(b, now);
      // Re-insert to keep Map order = least recently used first.
      this.#buckets.delete(k);
    }
    this.#buckets.set(k, b);
    if (b.tokens + EPSILON >= c) {
      b.tokens = Math.max(0, b.tokens - c);
      return true;
    }
    return false;
  }

  /** Milliseconds until `take(key, cost)` would succeed: 0 if now, Infinity if cost > capacity. */
  retryAfterMs(key: string, cost = 1): number {
    const c = this.#cost(cost);
    if (c > this.capacity) return Number.POSITIVE_INFINITY;
    const b = this.#buckets.get(this.#key(key));
    if (b === undefined) return 0;
    const tokens = this.#refill(b, this.#now());
    return tokens + EPSILON >= c ? 0 : Math.ceil((c - tokens - EPSILON) / this.#perMs);
  }

  /** Tokens `key` could spend right now. */
  remaining(key: string): number {
    const b = this.#buckets.get(this.#key(key));
    return b === undefined ? this.capacity : this.#refill(b, this.#now());
  }

  /** Forgets `key` (e.g. when its connection closes). */
  delete(key: string): boolean {
    return this.#buckets.delete(this.#key(key));
  }

  /** Forgets every key. */
  clear(): void {
    this.#buckets.clear();
  }
}
