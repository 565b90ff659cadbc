import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, RateLimiter } from '../src/index.js';

function fakeClock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('token bucket rate limiter', () => {
  it('allows a burst of capacity, then refills at the configured rate', () => {
    const clock = fakeClock();
    const rl = new RateLimiter({ capacity: 5, refillPerSecond: 2, now: clock.now });
    for (let i = 0; i < 5; i++) expect(rl.take('a')).toBe(true);
    expect(rl.take('a')).toBe(false);
    expect(rl.retryAfterMs('a')).toBe(500);
    clock.advance(499);
    expect(rl.take('a')).toBe(false);
    clock.advance(1);
    expect(rl.take('a')).toBe(true);
    expect(rl.take('b')).toBe(true); // keys are independent
    clock.advance(60_000);
    expect(rl.remaining('a')).toBe(5); // never above capacity
  });

  it('property: never grants more than capacity + rate × elapsed, and a denial spends nothing', () => {
    const op = fc.record({
      dt: fc.integer({ min: 0, max: 2000 }),
      key: fc.constantFrom('a', 'b', 'c'),
      cost: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(op, { maxLength: 200 }),
        (capacity, rate, ops) => {
          const clock = fakeClock();
          const start = clock.now();
          const rl = new RateLimiter({ capacity, refillPerSecond: rate, now: clock.now });
          const granted = new Map<string, number>();
          for (const { dt, key, cost } of ops) {
            clock.advance(dt);
            const before = rl.remaining(key);
            const ok = rl.take(key, cost);
            if (ok) granted.set(key, (granted.get(key) ?? 0) + cost);
            else expect(rl.remaining(key)).toBeCloseTo(before, 9);
            expect(ok).toBe(before + 1e-9 >= cost);
            const bound = capacity + ((clock.now() - start) / 1000) * rate;
            expect(granted.get(key) ?? 0).toBeLessThanOrEqual(bound + 1e-9);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: retryAfterMs is exactly when the next take succeeds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 10 }),
        (capacity, rate, cost) => {
          fc.pre(cost <= capacity);
          const clock = fakeClock();
          const rl = new RateLimiter({ capacity, refillPerSecond: rate, now: clock.now });
          while (rl.take('k', cost)) {}
          const wait = rl.retryAfterMs('k', cost);
          expect(wait).toBeGreaterThan(0);
          clock.advance(wait - 1);
          expect(rl.take('k', cost)).toBe(false);
          clock.advance(1);
          expect(rl.take('k', cost)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('bounds memory: never more than maxKeys, idle (full) buckets go first', () => {
    const clock = fakeClock();
    const rl = new RateLimiter({ capacity: 2, refillPerSecond: 1, maxKeys: 100, now: clock.now });
    // An abuser drains its bucket, then a flood of one-shot keys arrives much later.
    rl.take('abuser', 2);
    for (let i = 0; i < 99; i++) rl.take(`idle-${i}`);
    clock.advance(10_000); // every idle key is full again; the abuser too, then drains again
    rl.take('abuser', 2);
    for (let i = 0; i < 10_000; i++) {
      rl.take(`flood-${i}`);
      expect(rl.size).toBeLessThanOrEqual(100);
    }
    expect(rl.size).toBeLessThanOrEqual(100);
  });

  it('evicts idle keys over time without any size pressure', () => {
    const clock = fakeClock();
    const rl = new RateLimiter({ capacity: 1, refillPerSecond: 1, maxKeys: 1_000_000, now: clock.now });
    for (let i = 0; i < 1000; i++) rl.take(`k${i}`);
    expect(rl.size).toBe(1000);
    clock.advance(5000);
    for (let i = 0; i < 20_000; i++) rl.take('busy');
    expect(rl.size).toBeLessThan(10);
  });

  it('keeps per-key memory bounded for huge keys', () => {
    const rl = new RateLimiter({ capacity: 1 });
    const huge = 'x'.repeat(100_000);
    expect(rl.take(huge)).toBe(true);
    expect(rl.take(huge)).toBe(false);
    expect(rl.take(`${huge}y`)).toBe(true);
  });

  it('cost above capacity is never granted; delete forgets a key', () => {
    const rl = new RateLimiter({ capacity: 3 });
    expect(rl.take('a', 4)).toBe(false);
    expect(rl.retryAfterMs('a', 4)).toBe(Number.POSITIVE_INFINITY);
    rl.take('a', 3);
    expect(rl.take('a')).toBe(false);
    rl.delete('a');
    expect(rl.take('a')).toBe(true);
  });

  it('rejects bad options and costs', () => {
    expect(() => new RateLimiter({ capacity: 0 })).toThrow(InvalidOptionError);
    expect(() => new RateLimiter({ refillPerSecond: -1 })).toThrow(InvalidOptionError);
    expect(() => new RateLimiter({ maxKeys: 1.5 })).toThrow(InvalidOptionError);
    expect(() => new RateLimiter().take('a', Number.NaN)).toThrow(InvalidOptionError);
    expect(() => new RateLimiter().take('a', 0)).toThrow(InvalidOptionError);
  });
});
