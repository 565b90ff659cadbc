/**
 * Per-source token buckets for the responder: each source address may start `rate` requests per
 * second with bursts of `burst`, so a spoofed source (the victim of a reflection attack) cannot
 * draw more than that many replies per second, whatever the attacker sends.
 *
 * Memory is fixed: addresses are hashed onto `slots` buckets in typed arrays (no Map entry or
 * string kept per source, nothing allocated per datagram). Two sources that share a bucket share
 * its budget; that errs on the side of refusing, never of answering more.
 */

const DEFAULT_SLOTS = 4096;

export class SourceLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #mask: number;
  readonly #tokens: Float64Array;
  readonly #stamps: Float64Array;

  /** `slots` is rounded up to a power of two. */
  constructor(rate: number, burst: number, slots = DEFAULT_SLOTS) {
    let size = 16;
    while (size < slots) size *= 2;
    this.#perMs = rate / 1000;
    this.#burst = burst;
    this.#mask = size - 1;
    this.#tokens = new Float64Array(size);
    // A bucket never used is full.
    this.#stamps = new Float64Array(size).fill(Number.NEGATIVE_INFINITY);
  }

  /** Takes one token from `address`'s bucket at time `now` (ms); false when it is empty. */
  allow(address: string, now: number): boolean {
    const i = hashAddress(address) & this.#mask;
    const elapsed = now - this.#stamps[i]!;
    let tokens = this.#tokens[i]! + elapsed * this.#perMs;
    if (!(tokens <= this.#burst)) tokens = this.#burst; // also catches Infinity × 0 = NaN
    this.#stamps[i] = now;
    if (tokens < 1) {
      this.#tokens[i] = tokens;
      return false;
    }
    this.#tokens[i] = tokens - 1;
    return true;
  }
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped form: cannot arrive from another host. */
export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

function hashAddress(address: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
