import type { OverflowPolicy } from './options.js';

/**
 * A bounded FIFO that turns pushed items into an async iterator. UDP has no flow control, so a
 * slow consumer must not make memory grow: when full, one datagram is lost (newest or oldest,
 * by policy) and counted, exactly like a full kernel receive buffer would.
 */
export class BoundedQueue<T> implements AsyncIterableIterator<T> {
  /** Items lost because the queue was full. */
  dropped = 0;

  readonly #limit: number;
  readonly #dropOldest: boolean;
  readonly #ring: (T | undefined)[];
  #head = 0;
  #length = 0;
  #done = false;
  /** The consumer parked in next(): for-await never has more than one. */
  #waiter: ((result: IteratorResult<T>) => void) | undefined;
  /** Further concurrent next() calls, oldest first (rare). */
  #moreWaiters: ((result: IteratorResult<T>) => void)[] = [];
  readonly #onReturn: (() => void) | undefined;

  constructor(limit: number, overflow: OverflowPolicy, onReturn?: () => void) {
    this.#limit = limit;
    this.#dropOldest = overflow === 'drop-oldest';
    this.#ring = new Array<T | undefined>(limit);
    this.#onReturn = onReturn;
  }

  /** Items waiting to be consumed. */
  get size(): number {
    return this.#length;
  }

  /** Offers an item; returns false if it (or the oldest item) was dropped. */
  push(item: T): boolean {
    if (this.#done) return false;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = this.#moreWaiters.length === 0 ? undefined : this.#moreWaiters.shift();
      waiter({ value: item, done: false });
      return true;
    }
    if (this.#length < this.#limit) {
      this.#ring[(this.#head + this.#length) % this.#limit] = item;
      this.#length++;
      return true;
    }
    this.dropped++;
    if (this.#dropOldest) {
      this.#ring[this.#head] = item;
      this.#head = (this.#head + 1) % this.#limit;
    }
    return false;
  }

  /** Ends iteration once the buffered items are consumed. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
    for (const more of this.#moreWaiters) more({ value: undefined, done: true });
    this.#moreWaiters = [];
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#length > 0) {
      const value = this.#ring[this.#head] as T;
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#limit;
      this.#length--;
      return Promise.resolve({ value, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise(this.#park);
  }

  // One executor for every wait instead of a closure per next() call.
  readonly #park = (resolve: (result: IteratorResult<T>) => void): void => {
    if (this.#waiter === undefined) this.#waiter = resolve;
    else this.#moreWaiters.push(resolve);
  };

  return(): Promise<IteratorResult<T>> {
    this.#ring.fill(undefined);
    this.#length = 0;
    this.end();
    this.#onReturn?.();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
