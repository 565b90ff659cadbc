import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ABANDONED, ANSWERED, RecentIds } from '../src/recent-ids.js';
import { EMPTY_SLOT, ReplyCache, RUNNING, SETTLED } from '../src/reply-cache.js';

describe('recent request ids', () => {
  it('remember exactly the last `limit` ids with their fate, like an insertion-ordered map', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        // Few distinct ids with colliding low bits, so hash chains get long.
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 400 })), {
          maxLength: 600,
        }),
        (limit, ops) => {
          const recent = new RecentIds(limit);
          const model = new Map<number, number>();
          for (const [high, low] of ops) {
            const id = ((high << 30) | low) >>> 0;
            if (model.has(id)) {
              expect(recent.get(id)).toBe(model.get(id));
              continue;
            }
            const fate = low % 2 === 0 ? ANSWERED : ABANDONED;
            recent.add(id, fate);
            model.set(id, fate);
            if (model.size > limit) model.delete(model.keys().next().value as number);
          }
          for (let high = 0; high < 4; high++) {
            for (let low = 0; low <= 400; low++) {
              const id = ((high << 30) | low) >>> 0;
              expect(recent.get(id)).toBe(model.get(id) ?? 0);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('reply cache', () => {
  it('finds entries by address, port and id, and evicts the oldest first, like an ordered map', () => {
    const addresses = ['127.0.0.1', '::1', '10.0.0.1'];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 150 }),
        fc.array(
          fc.record({
            address: fc.constantFrom(...addresses),
            port: fc.integer({ min: 1, max: 3 }),
            id: fc.integer({ min: 0, max: 60 }),
            remove: fc.boolean(),
          }),
          { maxLength: 500 },
        ),
        (limit, ops) => {
          const cache = new ReplyCache(limit);
          // key -> reply; insertion order is eviction order.
          const model = new Map<string, Buffer>();
          let n = 0;
          for (const { address, port, id, remove } of ops) {
            const key = `${address} ${port} ${id}`;
            const slot = cache.find(address, port, id);
            expect(slot !== -1).toBe(model.has(key));
            if (slot !== -1) {
              expect(cache.state(slot)).toBe(SETTLED);
              expect(cache.reply(slot)).toBe(model.get(key));
              if (!remove) continue;
              cache.remove(slot);
              expect(cache.state(slot)).toBe(EMPTY_SLOT);
              model.delete(key);
              continue;
            }
            const fresh = cache.insert(address, port, id);
            expect(cache.state(fresh)).toBe(RUNNING);
            const reply = Buffer.from(String(n++));
            cache.settle(fresh, cache.generation(fresh), reply, 1);
            cache.release(fresh, cache.generation(fresh)); // the handler settled
            model.set(key, reply);
            // Removed slots still take their turn in the ring, so the cache may hold fewer than
            // `limit` entries, never more; drop from the model whatever the cache forgot.
            for (const k of [...model.keys()]) {
              const [a, p, i] = k.split(' ');
              if (cache.find(a!, Number(p), Number(i)) === -1) model.delete(k);
            }
            expect(model.size).toBeLessThanOrEqual(limit);
            expect(model.has(key)).toBe(true);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps the newest `limit` entries when nothing is removed', () => {
    const cache = new ReplyCache(100);
    for (let id = 0; id < 1000; id++) {
      const slot = cache.insert('127.0.0.1', 5000, id);
      cache.settle(slot, cache.generation(slot), null, 1);
      cache.release(slot, cache.generation(slot));
    }
    for (let id = 0; id < 1000; id++) {
      expect(cache.find('127.0.0.1', 5000, id) !== -1).toBe(id >= 900);
    }
    expect(cache.find('127.0.0.2', 5000, 999)).toBe(-1);
    expect(cache.find('127.0.0.1', 5001, 999)).toBe(-1);
  });

  it('ignores the outcome of a handler whose entry was removed while it ran', () => {
    const cache = new ReplyCache(1);
    const first = cache.insert('127.0.0.1', 1, 1);
    const generation = cache.generation(first);
    expect(cache.insert('127.0.0.1', 1, 2)).toBe(-1); // a running entry is never evicted
    cache.remove(first);
    const second = cache.insert('127.0.0.1', 1, 2);
    expect(second).toBe(first);
    cache.settle(first, generation, Buffer.from('stale'), 1);
    expect(cache.state(second)).toBe(RUNNING);
    expect(cache.find('127.0.0.1', 1, 1)).toBe(-1);
  });
});
