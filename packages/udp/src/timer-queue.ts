/**
 * Many deadlines on one Node timer. Each request used to own a `setTimeout`, which cost a Timeout
 * object plus list bookkeeping per attempt (10–15 % of a loopback round trip). Here deadlines
 * live in a binary min-heap and a single timer is armed for the earliest one. Cancelled items are
 * not removed eagerly: they are skipped when they come due, and the heap is compacted whenever
 * stale entries outnumber live ones.
 */
export class TimerQueue<T> {
  readonly #fire: (item: T) => void;
  readonly #isLive: (item: T) => boolean;
  #dues: number[] = [];
  #items: T[] = [];
  #timer: NodeJS.Timeout | undefined;
  #armedFor = Number.POSITIVE_INFINITY;
  #live = 0;

  constructor(fire: (item: T) => void, isLive: (item: T) => boolean) {
    this.#fire = fire;
    this.#isLive = isLive;
  }

  /** Entries in the heap, stale ones included. */
  get size(): number {
    return this.#dues.length;
  }

  /** Calls `fire(item)` after `delay` ms (from `now`) unless `isLive(item)` is false by then. */
  schedule(item: T, delay: number, now: number = performance.now()): void {
    const due = now + delay;
    this.#push(due, item);
    this.#live++;
    if (this.#dues.length > 64 && this.#dues.length > 2 * this.#live) this.#compact();
    // Re-arming costs as much as the per-item timer we avoid, so only do it when it matters.
    if (due < this.#armedFor - 1) this.#arm(due);
  }

  /** Tells the queue one scheduled item is no longer live (for compaction accounting). */
  cancelled(): void {
    if (this.#live > 0) this.#live--;
  }

  /** Drops every entry and the timer. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    this.#dues = [];
    this.#items = [];
    this.#live = 0;
  }

  readonly #run = (): void => {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    try {
      // Timers fire up to a millisecond early or late; treat anything due within 1 ms as due.
      const now = performance.now() + 1;
      while (this.#dues.length > 0 && this.#dues[0]! <= now) {
        const item = this.#pop();
        if (this.#isLive(item)) {
          this.#live--;
          this.#fire(item);
        }
      }
    } finally {
      // fire() may have armed for a later deadline than the one now at the top (or thrown).
      if (this.#dues.length > 0 && this.#dues[0]! < this.#armedFor - 1) this.#arm(this.#dues[0]!);
    }
  };

  #arm(due: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = due;
    this.#timer = setTimeout(this.#run, Math.max(1, Math.ceil(due - performance.now())));
  }

  #compact(): void {
    const dues: number[] = [];
    const items: T[] = [];
    for (let i = 0; i < this.#items.length; i++) {
      const item = this.#items[i]!;
      if (this.#isLive(item)) {
        dues.push(this.#dues[i]!);
        items.push(item);
      }
    }
    this.#dues = [];
    this.#items = [];
    this.#live = 0;
    for (let i = 0; i < items.length; i++) {
      this.#push(dues[i]!, items[i]!);
      this.#live++;
    }
  }

  #push(due: number, item: T): void {
    const dues = this.#dues;
    const items = this.#items;
    let i = dues.length;
    dues.push(due);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (dues[parent]! <= due) break;
      dues[i] = dues[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    dues[i] = due;
    items[i] = item;
  }

  #pop(): T {
    const dues = this.#dues;
    const items = this.#items;
    const top = items[0]!;
    const lastDue = dues.pop()!;
    const lastItem = items.pop()!;
    const n = dues.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && dues[right]! < dues[left]! ? right : left;
        if (dues[child]! >= lastDue) break;
        dues[i] = dues[child]!;
        items[i] = items[child]!;
        i = child;
      }
      dues[i] = lastDue;
      items[i] = lastItem;
    }
    return top;
  }
}
