/**
 * The requester's memory of recently finished request ids and how they ended, so a reply that
 * arrives afterwards is counted as a duplicate or as late instead of unknown, and an id is not
 * reused while a straggling reply for it may still arrive.
 *
 * A `Map<number, string>` did this, but its entries (and the heap numbers of ids above 2^30) live
 * for `limit` requests, get promoted by the GC and make old-generation collections a visible part
 * of a loopback round trip. Here ids sit in a typed-array ring (the oldest is overwritten first)
 * with a chained hash index, so remembering an id allocates nothing.
 */

/** The request got its reply. */
export const ANSWERED = 1;
/** The request timed out, was aborted or failed. */
export const ABANDONED = 2;

const NONE = -1;

export class RecentIds {
  readonly #limit: number;
  #capacity = 0;
  #used = 0;
  #cursor = 0;
  #ids = new Uint32Array(0);
  #fates = new Uint8Array(0);
  #next = new Int32Array(0);
  #buckets = new Int32Array(0);
  #mask = 0;

  constructor(limit: number) {
    this.#limit = limit;
    this.#grow(Math.min(limit, 64));
  }

  /** ANSWERED, ABANDONED, or 0 if the id is not remembered. */
  get(id: number): number {
    let slot = this.#buckets[id & this.#mask]!;
    while (slot !== NONE) {
      if (this.#ids[slot] === id) return this.#fates[slot]!;
      slot = this.#next[slot]!;
    }
    return 0;
  }

  /** Remembers `id` (not already remembered), forgetting the oldest id when full. */
  add(id: number, fate: number): void {
    let slot: number;
    if (this.#used < this.#limit) {
      if (this.#used === this.#capacity) this.#grow(Math.min(this.#limit, this.#capacity * 2));
      slot = this.#used++;
    } else {
      slot = this.#cursor;
      this.#cursor = slot + 1 === this.#limit ? 0 : slot + 1;
      this.#unlink(slot);
    }
    this.#ids[slot] = id;
    this.#fates[slot] = fate;
    const bucket = id & this.#mask;
    this.#next[slot] = this.#buckets[bucket]!;
    this.#buckets[bucket] = slot;
  }

  #unlink(slot: number): void {
    const bucket = this.#ids[slot]! & this.#mask;
    let at = this.#buckets[bucket]!;
    if (at === slot) {
      this.#buckets[bucket] = this.#next[slot]!;
      return;
    }
    while (at !== NONE) {
      const following = this.#next[at]!;
      if (following === slot) {
        this.#next[at] = this.#next[slot]!;
        return;
      }
      at = following;
    }
  }

  #grow(capacity: number): void {
    const old = this.#capacity;
    const ids = new Uint32Array(capacity);
    const fates = new Uint8Array(capacity);
    ids.set(this.#ids.subarray(0, old));
    fates.set(this.#fates.subarray(0, old));
    this.#ids = ids;
    this.#fates = fates;
    this.#next = new Int32Array(capacity);
    let buckets = 16;
    while (buckets < capacity * 2) buckets *= 2;
    this.#buckets = new Int32Array(buckets).fill(NONE);
    this.#mask = buckets - 1;
    this.#capacity = capacity;
    // Re-link oldest first so each chain stays newest-first, as add() builds it.
    for (let slot = 0; slot < old; slot++) {
      const bucket = ids[slot]! & this.#mask;
      this.#next[slot] = this.#buckets[bucket]!;
      this.#buckets[bucket] = slot;
    }
  }
}
