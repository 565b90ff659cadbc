import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JoinBucket } from '../src/chat/join-bucket.js';

describe('JoinBucket (joins of new rooms per connection)', () => {
  it('allows a burst, then one join per refill interval, and says how long to wait', () => {
    const b = new JoinBucket(3, 1, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true]);
    expect(b.take(0)).toBe(1);
    expect(b.take(500)).toBe(0.5);
    expect(b.take(1000)).toBe(true);
    expect(b.take(1000)).toBe(1);
  });

  it('never grants more than burst + elapsed × rate joins, whatever the timing', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.double({ min: 0.1, max: 20, noNaN: true }),
        fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 300 }),
        (burst, rate, gaps) => {
          const b = new JoinBucket(burst, rate, 0);
          let now = 0;
          let granted = 0;
          for (const gap of gaps) {
            now += gap;
            const r = b.take(now);
            if (r === true) granted++;
            else expect(r).toBeGreaterThanOrEqual(0.1);
          }
          expect(granted).toBeLessThanOrEqual(burst + Math.floor((now / 1000) * rate + 1e-9));
        },
      ),
    );
  });
});
