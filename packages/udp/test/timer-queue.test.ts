import fc from 'fast-check';
import { expect, it } from 'vitest';
import { TimerQueue } from '../src/timer-queue.js';

interface Item {
  id: number;
  due: number;
  live: boolean;
  firedAt?: number;
}

it('fires every live deadline once, never early, in due order, and skips cancelled ones', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ delay: fc.integer({ min: 1, max: 40 }), cancel: fc.boolean() }), {
        minLength: 1,
        maxLength: 150,
      }),
      async (plan) => {
        const fired: Item[] = [];
        const queue = new TimerQueue<Item>(
          (item) => {
            item.firedAt = performance.now();
            fired.push(item);
          },
          (item) => item.live,
        );
        const items = plan.map(({ delay }, id): Item => {
          const item: Item = { id, due: performance.now() + delay, live: true };
          queue.schedule(item, delay);
          return item;
        });
        plan.forEach(({ cancel }, i) => {
          if (cancel) {
            items[i]!.live = false;
            queue.cancelled();
          }
        });
        const live = items.filter((i) => i.live);
        const deadline = Date.now() + 5000;
        while (fired.length < live.length && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setTimeout(r, 10));
        expect(fired.map((i) => i.id).sort((a, b) => a - b)).toEqual(live.map((i) => i.id));
        for (const item of fired) expect(item.firedAt!).toBeGreaterThanOrEqual(item.due - 1.5);
        for (let i = 1; i < fired.length; i++)
          expect(fired[i]!.due).toBeGreaterThanOrEqual(fired[i - 1]!.due - 1.5);
        queue.clear();
        expect(queue.size).toBe(0);
      },
    ),
    { numRuns: 8 },
  );
});

it('compacts stale entries so cancelled work cannot pile up', () => {
  const queue = new TimerQueue<{ live: boolean }>(
    () => {},
    (item) => item.live,
  );
  for (let i = 0; i < 10_000; i++) {
    const item = { live: true };
    queue.schedule(item, 60_000);
    item.live = false;
    queue.cancelled();
  }
  expect(queue.size).toBeLessThan(200);
  queue.clear();
});

it('keeps earlier deadlines on time when a firing item schedules a later one', async () => {
  const started = performance.now();
  const firedAt = new Map<string, number>();
  const queue = new TimerQueue<string>(
    (name) => {
      firedAt.set(name, performance.now() - started);
      if (name === 'a') queue.schedule('c', 400);
    },
    () => true,
  );
  queue.schedule('a', 5);
  queue.schedule('b', 60);
  const deadline = Date.now() + 5000;
  while (!firedAt.has('c') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  // 'b' must not wait for the timer armed for 'c' (about 400 ms later).
  expect(firedAt.get('b')!).toBeLessThan(firedAt.get('c')! - 100);
  queue.clear();
});
