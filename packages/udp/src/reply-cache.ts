/**
 * The responder's reply cache: recent (peer address, peer port, request id) → encoded reply, so a
 * retransmitted request is answered again without re-running the handler.
 *
 * Why not a `Map<string, object>`: at tens of thousands of requests per second, a string key and
 * an entry object per request that live for `cacheSize` requests survive scavenges and get
 * promoted, and the old-generation GC they cause cost more than the rest of the server's
 * per-request work. Here the entries are slots in typed arrays, filled in ring order (the oldest
 * slot is overwritten first, so memory is bounded by `size`; a slot whose handler has not settled
 * (running, or timed out and answered but still running) is never evicted, or a retransmission
 * would run the handler a second time), and found through a chained hash
 * index over (id, port); the address is compared on lookup. Only the reply buffer and the peer's
 * address string are kept per entry, and consecutive requests from one address share one string.
 */

/** Slot states. */
export const EMPTY_SLOT = 0;
/** The handler is still running: retransmissions are dropped, the reply follows. */
export const RUNNING = 1;
/** A reply (or the decision not to reply) is cached until it expires. */
export const SETTLED = 2;

const NONE = -1;

export class ReplyCache {
  readonly #limit: number;
  #capacity = 0;
  /** Slots handed out so far while growing towards #limit; then the ring cursor. */
  #used = 0;
  #cursor = 0;
  #ids = new Uint32Array(0);
  #ports = new Uint16Array(0);
  #states = new Uint8Array(0);
  #generations = new Uint32Array(0);
  #expires = new Float64Array(0);
  /** Times the slot's reply was sent again (saturates at 255). */
  #replays = new Uint8Array(0);
  /** 1 while the slot's handler has not settled (from insert() to release()): not evictable. */
  #busy = new Uint8Array(0);
  #next = new Int32Array(0);
  #buckets = new Int32Array(0);
  #mask = 0;
  #addresses: string[] = [];
  #replies: (Buffer | null)[] = [];
  #lastAddress = '';

  constructor(limit: number) {
    this.#limit = limit;
    this.#grow(Math.min(limit, 64));
  }

  /** The slot holding (address, port, id), or -1. */
  find(address: string, port: number, id: number): number {
    let slot = this.#buckets[hash(id, port) & this.#mask]!;
    while (slot !== NONE) {
      if (this.#ids[slot] === id && this.#ports[slot] === port && this.#addresses[slot] === address) {
        return slot;
      }
      slot = this.#next[slot]!;
    }
    return NONE;
  }

  state(slot: number): number {
    return this.#states[slot]!;
  }

  expires(slot: number): number {
    return this.#expires[slot]!;
  }

  reply(slot: number): Buffer | null {
    return this.#replies[slot] ?? null;
  }

  /** Changes whenever a slot is reused, so a late handler cannot overwrite a newer entry. */
  generation(slot: number): number {
    return this.#generations[slot]!;
  }

  /** Counts one more replay of the slot's reply and returns how many there have been. */
  replay(slot: number): number {
    const count = this.#replays[slot]!;
    if (count < 255) this.#replays[slot] = count + 1;
    return count + 1;
  }

  /**
   * Starts an entry in RUNNING state (and busy until `release`), evicting the oldest entry that is
   * not busy if the cache is full. Returns -1 when every slot is busy (the caller drops the request).
   */
  insert(address: string, port: number, id: number): number {
    let slot: number;
    if (this.#used < this.#limit) {
      if (this.#used === this.#capacity) this.#grow(Math.min(this.#limit, this.#capacity * 2));
      slot = this.#used++;
    } else {
      const limit = this.#limit;
      slot = this.#cursor;
      let tried = 0;
      const busy = this.#busy;
      while (busy[slot] === 1) {
        if (++tried === limit) return NONE;
        slot = slot + 1 === limit ? 0 : slot + 1;
      }
      this.#cursor = slot + 1 === limit ? 0 : slot + 1;
      if (this.#states[slot] !== EMPTY_SLOT) this.remove(slot);
    }
    // Keep one string per peer address alive instead of one per datagram.
    if (address === this.#lastAddress) address = this.#lastAddress;
    else this.#lastAddress = address;
    this.#ids[slot] = id;
    this.#ports[slot] = port;
    this.#addresses[slot] = address;
    this.#states[slot] = RUNNING;
    this.#expires[slot] = Number.POSITIVE_INFINITY;
    this.#replays[slot] = 0;
    this.#busy[slot] = 1;
    const bucket = hash(id, port) & this.#mask;
    this.#next[slot] = this.#buckets[bucket]!;
    this.#buckets[bucket] = slot;
    return slot;
  }

  /** Records the outcome for `slot` if it still holds the same entry (`generation`). */
  settle(slot: number, generation: number, reply: Buffer | null, expires: number): void {
    if (this.#generations[slot] !== generation || this.#states[slot] !== RUNNING) return;
    this.#states[slot] = SETTLED;
    this.#replies[slot] = reply;
    this.#expires[slot] = expires;
  }

  /** The slot's handler settled: the entry may be evicted from now on. */
  release(slot: number, generation: number): void {
    if (this.#generations[slot] === generation) this.#busy[slot] = 0;
  }

  /** Frees a slot (its place in the ring is reused in turn). */
  remove(slot: number): void {
    if (this.#states[slot] === EMPTY_SLOT) return;
    const bucket = hash(this.#ids[slot]!, this.#ports[slot]!) & this.#mask;
    let at = this.#buckets[bucket]!;
    if (at === slot) this.#buckets[bucket] = this.#next[slot]!;
    else {
      while (at !== NONE) {
        const following = this.#next[at]!;
        if (following === slot) {
          this.#next[at] = this.#next[slot]!;
          break;
        }
        at = following;
      }
    }
    this.#states[slot] = EMPTY_SLOT;
    this.#busy[slot] = 0;
    this.#generations[slot] = (this.#generations[slot]! + 1) >>> 0;
    this.#replies[slot] = null;
    this.#addresses[slot] = '';
  }

  /** Drops every entry and releases the memory. */
  clear(): void {
    this.#capacity = 0;
    this.#used = 0;
    this.#cursor = 0;
    this.#addresses = [];
    this.#replies = [];
    this.#lastAddress = '';
    const generations = this.#generations;
    this.#grow(Math.min(this.#limit, 64));
    // Entries still running keep their generation, so their late outcome is ignored.
    for (let i = 0; i < this.#generations.length && i < generations.length; i++) {
      this.#generations[i] = (generations[i]! + 1) >>> 0;
    }
  }

  #grow(capacity: number): void {
    const old = this.#capacity;
    const ids = new Uint32Array(capacity);
    const ports = new Uint16Array(capacity);
    const states = new Uint8Array(capacity);
    const generations = new Uint32Array(capacity);
    const expires = new Float64Array(capacity);
    const replays = new Uint8Array(capacity);
    replays.set(this.#replays.subarray(0, old));
    const busy = new Uint8Array(capacity);
    busy.set(this.#busy.subarray(0, old));
    this.#busy = busy;
    ids.set(this.#ids.subarray(0, old));
    ports.set(this.#ports.subarray(0, old));
    states.set(this.#states.subarray(0, old));
    generations.set(this.#generations.subarray(0, Math.min(old, capacity)));
    expires.set(this.#expires.subarray(0, old));
    this.#ids = ids;
    this.#ports = ports;
    this.#states = states;
    this.#generations = generations;
    this.#expires = expires;
    this.#replays = replays;
    this.#next = new Int32Array(capacity);
    let buckets = 16;
    while (buckets < capacity * 2) buckets *= 2;
    this.#buckets = new Int32Array(buckets).fill(NONE);
    this.#mask = buckets - 1;
    this.#capacity = capacity;
    for (let slot = 0; slot < old; slot++) {
      if (states[slot] === EMPTY_SLOT) continue;
      const bucket = hash(ids[slot]!, ports[slot]!) & this.#mask;
      this.#next[slot] = this.#buckets[bucket]!;
      this.#buckets[bucket] = slot;
    }
  }
}

function hash(id: number, port: number): number {
  // Ids are usually sequential per client; mixing in the port spreads several clients apart.
  return (id ^ Math.imul(port, 0x9e3779b1)) >>> 0;
}
